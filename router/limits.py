"""Operation limits: what a client may ask of the router in one document.

The gateway measures every operation of a document once, right after parsing and before
validation (validation of a hostile document is itself expensive), and caches the verdict with
the parsed document, so a repeated query costs nothing here. The token limit is applied by the
parser itself (``parse(max_tokens=...)``): a document longer than that is never fully parsed.

Measures, fragments expanded (each spread counts as often as it is used; a fragment cycle counts
nothing, validation refuses it afterwards):

* depth: fields nested in fields; ``{ me { name } }`` is 2;
* aliases: fields written with an alias;
* root fields: fields at the top level of the operation (``__typename`` included).

A limit of 0 is off. A refused document is a request error with the code ``OPERATION_LIMIT``.
Field suggestions ("Did you mean 'user'?") in validation messages reveal the schema even when
introspection is off; :func:`strip_suggestions` removes them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

from pek.settings import Settings

JSON = dict[str, Any]

#: ``extensions.code`` of a refused operation.
OPERATION_LIMIT = "OPERATION_LIMIT"

#: The values of ``PEK_FIELD_SUGGESTIONS``.
FIELD_SUGGESTIONS_VALUES = ("auto", "true", "false")


class ConfigurationError(ValueError):
    """A setting the router cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class OperationLimits:
    """The limits one router applies; 0 switches a limit off."""

    max_depth: int = Settings.max_depth
    max_aliases: int = Settings.max_aliases
    max_root_fields: int = Settings.max_root_fields
    max_tokens: int = Settings.max_tokens

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_aliases", "max_root_fields", "max_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(
                    f"PEK_{name.upper()}={value!r}: use a whole number, 0 for no limit"
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> OperationLimits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_root_fields=settings.max_root_fields,
            max_tokens=settings.max_tokens,
        )

    @classmethod
    def off(cls) -> OperationLimits:
        return cls(0, 0, 0, 0)

    @property
    def parser_max_tokens(self) -> int | None:
        """What to hand ``graphql.parse(max_tokens=...)``."""
        return self.max_tokens or None

    def check(self, document: DocumentNode) -> list[JSON]:
        """The errors of every operation in ``document`` over a limit (empty when none is)."""
        if not (self.max_depth or self.max_aliases or self.max_root_fields):
            return []
        measure = _Measure(document)
        errors: list[JSON] = []
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            shape = measure.selection_set(definition.selection_set)
            name = f"Operation '{definition.name.value}'" if definition.name else "The operation"
            for limit, actual, setting, what in (
                (self.max_depth, shape.depth, "maxDepth", "is nested {actual} fields deep"),
                (self.max_aliases, shape.aliases, "maxAliases", "uses {actual} aliases"),
                (self.max_root_fields, shape.width, "maxRootFields", "has {actual} root fields"),
            ):
                if limit and actual > limit:
                    errors.append(
                        limit_error(
                            f"{name} {what.format(actual=actual)}; the limit is {limit}.",
                            setting,
                            limit,
                            actual,
                        )
                    )
        return errors

    def too_many_tokens(self) -> JSON:
        """The error of a document with more than ``max_tokens`` tokens."""
        return limit_error(
            f"The document has more than {self.max_tokens} tokens; the limit is "
            f"{self.max_tokens}.",
            "maxTokens",
            self.max_tokens,
        )


def limit_error(message: str, limit: str, maximum: int, actual: int | None = None) -> JSON:
    """A request error for an operation over ``limit`` (e.g. ``"maxDepth"``)."""
    extensions: JSON = {"code": OPERATION_LIMIT, "limit": limit, "maximum": maximum}
    if actual is not None:
        extensions["actual"] = actual
    return {"message": message, "extensions": extensions}


# graphql-core 3.3 counts tokens without comments as ``max_lexical_tokens`` (its ``max_tokens``
# counts comments too); 3.2 has only ``max_tokens``, which skips comments.
_LEXICAL_TOKENS = "max_lexical_tokens" in inspect.signature(parse).parameters


def parse_limited(
    source: str, max_tokens: int | None, *, no_location: bool = False
) -> DocumentNode:
    """``graphql.parse`` that stops after ``max_tokens`` tokens (None: no limit) and reports a
    document nested beyond the interpreter's recursion limit as a syntax error (graphql-core
    3.2 raises RecursionError there)."""
    try:
        if max_tokens is None:
            return parse(source, no_location=no_location)
        if _LEXICAL_TOKENS:
            options: dict[str, Any] = {"max_lexical_tokens": max_tokens}
        else:
            options = {"max_tokens": max_tokens}
        return parse(source, no_location=no_location, **options)
    except RecursionError:
        pass
    raise GraphQLError("Syntax Error: Document is nested too deeply. Parsing aborted.")


def is_token_limit_error(message: str) -> bool:
    """Whether graphql-core's parser stopped at its ``max_tokens``."""
    return message.startswith("Syntax Error: Document contains more than") and message.endswith(
        "tokens. Parsing aborted."
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    depth: int
    aliases: int
    width: int  # fields at the top level of the selection set, fragments expanded


_NOTHING = _Shape(0, 0, 0)


class _Measure:
    """Measures selection sets of one document; each fragment is measured once."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments: Mapping[str, FragmentDefinitionNode] = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.done: dict[str, _Shape] = {}
        self.visiting: set[str] = set()

    def fragment(self, name: str) -> _Shape:
        shape = self.done.get(name)
        if shape is not None:
            return shape
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return _NOTHING  # unknown or cyclic: validation reports it
        self.visiting.add(name)
        try:
            shape = self.selection_set(fragment.selection_set)
        finally:
            self.visiting.discard(name)
        self.done[name] = shape
        return shape

    def selection_set(self, selection_set: SelectionSetNode | None) -> _Shape:
        if selection_set is None:
            return _NOTHING
        depth = aliases = width = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                depth = max(depth, inner.depth + 1)
                aliases += inner.aliases + (selection.alias is not None)
                width += 1
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:
                continue
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            width += inner.width
        return _Shape(depth, aliases, width)


# -- field suggestions -------------------------------------------------------------------------

_SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$", re.DOTALL)


def strip_suggestions(message: str) -> str:
    """``"Cannot query field 'usr' on type 'Query'. Did you mean 'user'?"`` without the
    suggestion."""
    return _SUGGESTION.sub("", message)


def field_suggestions_enabled(settings: Settings) -> bool:
    """``PEK_FIELD_SUGGESTIONS``: true, false, or auto (shown when introspection is allowed,
    which reveals the same names anyway)."""
    value = settings.field_suggestions.strip().lower()
    if value == "auto":
        return settings.introspection
    if value in ("true", "on", "yes", "1"):
        return True
    if value in ("false", "off", "no", "0"):
        return False
    raise ConfigurationError(
        f"PEK_FIELD_SUGGESTIONS={settings.field_suggestions!r}: use auto, true or false"
    )
