"""Supergraph composition: Federation v2 subgraph SDLs -> a supergraph SDL (join spec).

The router composes its supergraph itself, and the result has the format ``@apollo/composition``
2.14 produces (``link/v1.0``, ``join/v0.3``..``v0.5`` chosen by the subgraphs' federation
version, ``inaccessible/v0.2``, ``tag/v0.3``, composed directives with their ``@link``), so the
same router also loads supergraphs composed by Apollo's tools. The merge rules follow Apollo's:
object fields are unioned and must be ``@shareable`` (or key / external / overridden) where
several subgraphs resolve them, input types are intersected, enums are merged by how they are
used, types of a field pick the most general output type (most specific input type).

Public API: :class:`SubgraphDefinition`, :func:`compose`, :func:`api_schema_sdl`,
:class:`CompositionError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from graphql import (
    ArgumentNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    GraphQLError,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListTypeNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    SchemaDefinitionNode,
    StringValueNode,
    TypeNode,
    UnionTypeDefinitionNode,
    build_ast_schema,
    parse,
    print_ast,
    print_schema,
)

from pek.router.composition_print import (
    MergedEnumValue,
    MergedField,
    MergedInputValue,
    MergedType,
    print_supergraph,
)
from pek.router.composition_subgraph import (
    BUILTIN_DIRECTIVES,
    BUILTIN_SCALARS,
    Applied,
    Field,
    InputValue,
    Kind,
    Subgraph,
    SubgraphError,
    SubgraphType,
)

__all__ = ["CompositionError", "SubgraphDefinition", "api_schema_sdl", "compose"]

LINK_URL = "https://specs.apollo.dev/link/v1.0"
INACCESSIBLE_URL = "https://specs.apollo.dev/inaccessible/v0.2"
TAG_URL = "https://specs.apollo.dev/tag/v0.3"

INACCESSIBLE_DEFINITION = (
    "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | "
    "ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION"
)
TAG_DEFINITION = (
    "directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | "
    "ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA"  # noqa: E501
)
LINK_DEFINITION = (
    "directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) "
    "repeatable on SCHEMA"
)

Position = Literal["Input", "Output"]


@dataclass(frozen=True)
class SubgraphDefinition:
    """One subgraph to compose: its name (``join__Graph`` value is its sanitised upper case),
    the URL the router reaches it at, and its SDL (as ``_service { sdl }`` returns it)."""

    name: str
    url: str
    sdl: str


class CompositionError(Exception):
    """The subgraphs do not compose; ``errors`` holds one clear message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("composition failed:\n" + "\n".join(f"- {e}" for e in errors))
        self.errors = errors


def compose(subgraphs: Sequence[SubgraphDefinition]) -> str:
    """Compose Federation v2 subgraphs into a supergraph SDL in Apollo's join-spec format.

    Raises :class:`CompositionError` listing every problem found.
    """
    return _Merger(subgraphs).merge()


def sanitize_graph_name(name: str) -> str:
    """The ``join__Graph`` enum value of a subgraph name, as Apollo derives it."""
    import re

    result = re.sub(r"\W", "_", name, flags=re.ASCII)
    if result[:1].isdigit():
        result = "_" + result
    if re.search(r"_\d+$", result):
        result += "_"
    return result.upper()


def _print_value(node: object) -> str:
    return print_ast(node)  # type: ignore[arg-type]


def _print_applied(name: str, directive: Applied) -> str:
    args = directive.node.arguments or ()
    printed = ", ".join(f"{a.name.value}: {_print_value(a.value)}" for a in args)
    return f"@{name}({printed})" if printed else f"@{name}"


def _quote(text: str) -> str:
    return _print_value(StringValueNode(value=text))


def _join(name: str, args: Iterable[tuple[str, str | None]]) -> str:
    printed = ", ".join(f"{k}: {v}" for k, v in args if v is not None)
    return f"@{name}({printed})" if printed else f"@{name}"


# -- type references -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Ref:
    """A type reference, comparable and printable."""

    kind: Literal["named", "list", "non_null"]
    name: str = ""
    of: _Ref | None = None

    @staticmethod
    def of_node(node: TypeNode, rename: dict[str, str]) -> _Ref:
        if isinstance(node, NonNullTypeNode):
            return _Ref("non_null", of=_Ref.of_node(node.type, rename))
        if isinstance(node, ListTypeNode):
            return _Ref("list", of=_Ref.of_node(node.type, rename))
        assert isinstance(node, NamedTypeNode)
        return _Ref("named", name=rename.get(node.name.value, node.name.value))

    def __str__(self) -> str:
        if self.kind == "non_null":
            return f"{self.of}!"
        if self.kind == "list":
            return f"[{self.of}]"
        return self.name

    @property
    def base(self) -> str:
        return self.of.base if self.of else self.name


# -- the merge -----------------------------------------------------------------------------


@dataclass
class _FieldContext:
    """Per-field @override outcome, by subgraph index."""

    used_overridden: set[int] = field(default_factory=set)
    unused_overridden: set[int] = field(default_factory=set)
    unknown_target: set[int] = field(default_factory=set)
    labels: dict[int, str] = field(default_factory=dict)


class _Merger:
    def __init__(self, definitions: Sequence[SubgraphDefinition]) -> None:
        self.errors: list[str] = []
        if not definitions:
            raise CompositionError(["no subgraphs to compose"])
        names = [d.name for d in definitions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CompositionError([f'A subgraph named "{n}" is given twice' for n in duplicates])
        self.subgraphs: list[Subgraph] = []
        for definition in sorted(definitions, key=lambda d: d.name):
            try:
                subgraph = Subgraph(definition.name, definition.url, definition.sdl)
            except SubgraphError as error:
                self.errors.append(str(error))
                continue
            self.errors.extend(subgraph.errors)
            self.subgraphs.append(subgraph)
        if self.errors:
            raise CompositionError(self.errors)
        self.graph_names = self._graph_enum_names()
        version = max(s.federation_version for s in self.subgraphs)
        self.join_version = (0, 5) if version >= (2, 8) else (0, 4) if version >= (2, 7) else (0, 3)
        self.types: dict[str, MergedType] = {}
        self.enum_usage: dict[str, set[Position]] = {}
        self.uses_inaccessible = self._uses("inaccessible")
        self.uses_tag = self._uses("tag")
        self.composed: dict[str, tuple[str, str, DirectiveDefinitionNode | None]] = {}

    # -- set-up -------------------------------------------------------------------------

    def _graph_enum_names(self) -> dict[str, str]:
        by_sanitised: dict[str, list[str]] = {}
        for s in self.subgraphs:
            by_sanitised.setdefault(sanitize_graph_name(s.name), []).append(s.name)
        result: dict[str, str] = {}
        for sanitised, names in by_sanitised.items():
            for i, name in enumerate(names):
                result[name] = sanitised if len(names) == 1 else f"{sanitised}_{i + 1}"
        return result

    def graph(self, s: Subgraph) -> str:
        return self.graph_names[s.name]

    def _uses(self, federation_name: str) -> bool:
        for s in self.subgraphs:
            for t in s.types.values():
                elements: list[list[Applied]] = [t.directives]
                elements += [f.directives for f in t.fields.values()]
                elements += [a.directives for f in t.fields.values() for a in f.args.values()]
                elements += [v.directives for v in t.values.values()]
                if any(s.has(d, federation_name) for d in elements):
                    return True
        return False

    def _collect_composed_directives(self) -> None:
        for s in self.subgraphs:
            for applied in s.schema_directives:
                if s.federation_directive(applied.name) != "composeDirective":
                    continue
                value = applied.arg("name")
                name = value.value.lstrip("@") if isinstance(value, StringValueNode) else ""
                link = next((k for k in s.links if name in k.imports), None)
                if link is None:
                    self.errors.append(
                        f'[{s.name}] Directive "@{name}" in subgraph "{s.name}" cannot be '
                        f"composed because it is not a member of a core feature"
                    )
                    continue
                definition = s.directive_definitions.get(name)
                if definition is None:
                    self.errors.append(f'[{s.name}] Composed directive "@{name}" is not defined')
                    continue
                previous = self.composed.get(name)
                if previous and previous[0] != link.identity:
                    self.errors.append(
                        f'Composed directive "@{name}" comes from different specs: '
                        f"{previous[0]} and {link.identity}"
                    )
                    continue
                # The newest version of the spec wins, as in Apollo.
                if previous is None or previous[1] < link.url:
                    self.composed[name] = (link.identity, link.url, definition)

    def is_merged_directive(self, s: Subgraph, name: str) -> str | None:
        """The supergraph name of an applied directive that composition keeps, else None."""
        federation_name = s.federation_directive(name)
        if federation_name in ("inaccessible", "tag"):
            return federation_name
        if federation_name is not None:
            return None
        if name in self.composed and self._composes(s, name):
            return name
        if name in BUILTIN_DIRECTIVES:
            return name
        return None

    def _composes(self, s: Subgraph, name: str) -> bool:
        for applied in s.schema_directives:
            if s.federation_directive(applied.name) == "composeDirective":
                value = applied.arg("name")
                if isinstance(value, StringValueNode) and value.value.lstrip("@") == name:
                    return True
        # A subgraph that imports the same spec directive without composing still shares it.
        return any(name in k.imports for k in s.links if k.identity == self.composed[name][0])

    # -- validation of each subgraph ------------------------------------------------------

    def _validate_subgraph(self, s: Subgraph) -> None:
        known = set(s.types) | BUILTIN_SCALARS
        for t in s.types.values():
            for interface in t.interfaces:
                if interface not in known:
                    self.errors.append(
                        f'[{s.name}] Unknown type "{interface}" (implemented by "{t.name}")'
                    )
            for member in t.members:
                if member not in known:
                    self.errors.append(
                        f'[{s.name}] Unknown type "{member}" (member of union "{t.name}")'
                    )
            for f in t.fields.values():
                if s.named(f.type) not in known:
                    self.errors.append(
                        f'[{s.name}] Unknown type "{s.named(f.type)}" for field "{f.coordinate}"'
                    )
                for a in f.args.values():
                    if s.named(a.type) not in known:
                        self.errors.append(
                            f'[{s.name}] Unknown type "{s.named(a.type)}" for argument '
                            f'"{f.coordinate}({a.name}:)"'
                        )
            for key in s.keys(t):
                fields = s.field_set_arg(key)
                if fields is None:
                    self.errors.append(
                        f'[{s.name}] On type "{t.name}", @key has no "fields" argument'
                    )
                    continue
                for problem in s.missing_fields(t.name, fields):
                    self.errors.append(
                        f'[{s.name}] On type "{t.name}", for @key(fields: {_quote(fields)}): '
                        f"{problem} (the field should either be added to this subgraph or, if it "
                        f"should not be resolved by this subgraph, you need to add it to this "
                        f"subgraph with @external)."
                    )
            for f in t.fields.values():
                self._validate_field_sets(s, t, f)
                if s.is_external(f) and not s.is_used(f):
                    self.errors.append(
                        f'[{s.name}] Field "{f.coordinate}" is marked @external but is not used in '
                        f"any federation directive (@key, @provides, @requires) or to satisfy an "
                        f"interface; the field declaration has no use and should be removed (or "
                        f"the field should not be @external)."
                    )

    def _validate_field_sets(self, s: Subgraph, t: SubgraphType, f: Field) -> None:
        for directive_name, target_type in (("requires", t.name), ("provides", s.named(f.type))):
            for applied in s.applied(f.directives, directive_name):
                fields = s.field_set_arg(applied) or ""
                prefix = f'[{s.name}] On field "{f.coordinate}", for @{directive_name}(fields: {_quote(fields)}): '  # noqa: E501
                problems = s.missing_fields(target_type, fields)
                for problem in problems:
                    self.errors.append(prefix + problem)
                if problems:
                    continue
                for target in s.target_fields(target_type, fields):
                    if not s.is_external(target) and not (
                        directive_name == "provides" and s.types[target.parent].kind == "interface"
                    ):
                        self.errors.append(
                            prefix + f'field "{target.coordinate}" should not be part of a '
                            f"@{directive_name} since it is already provided by this subgraph "
                            f"(it is not marked @external)"
                        )

    # -- merge ------------------------------------------------------------------------------

    def merge(self) -> str:
        for s in self.subgraphs:
            self._validate_subgraph(s)
        self._collect_composed_directives()
        if self.errors:
            raise CompositionError(self.errors)
        self._add_types_shallow()
        if self.errors:
            raise CompositionError(self.errors)
        by_kind: dict[str, list[MergedType]] = {}
        for t in self.types.values():
            by_kind.setdefault(t.kind, []).append(t)
        for t in by_kind.get("object", []) + by_kind.get("interface", []):
            self._merge_implements(t)
        for t in by_kind.get("union", []):
            self._merge_type(t)
        for kind in ("scalar", "input", "interface", "object"):
            for t in by_kind.get(kind, []):
                self._merge_type(t)
        directive_definitions = self._merge_directive_definitions()
        for t in by_kind.get("enum", []):
            self._merge_type(t)
        self._add_missing_interface_object_fields()
        self._check_references()
        if self.errors:
            raise CompositionError(self.errors)
        roots = {
            kind: name
            for kind, name in (
                ("query", "Query"),
                ("mutation", "Mutation"),
                ("subscription", "Subscription"),
            )
            if name in self.types
        }
        if "query" not in roots:
            raise CompositionError(
                ["No queries found in any subgraph: a supergraph must have a query root type."]
            )
        types = dict(self.types)
        types.update(self._join_types())
        return print_supergraph(self._schema_links(), roots, directive_definitions, types)

    def sources(self, name: str) -> list[tuple[int, Subgraph, SubgraphType]]:
        return [(i, s, s.types[name]) for i, s in enumerate(self.subgraphs) if name in s.types]

    def _add_types_shallow(self) -> None:
        kinds: dict[str, dict[str, list[str]]] = {}
        for s in self.subgraphs:
            for t in s.types.values():
                kind = "interface" if s.is_interface_object(t) else t.kind
                kinds.setdefault(t.name, {}).setdefault(kind, []).append(s.name)
        for name, by_kind in kinds.items():
            if len(by_kind) > 1:
                described = "; ".join(
                    f"{kind} in {', '.join(repr(n) for n in subs)}"
                    for kind, subs in by_kind.items()
                )
                self.errors.append(
                    f'Type "{name}" has mismatched kind: it is defined as {described}'
                )
                continue
            merged_kind = cast(Kind, next(iter(by_kind)))
            self.types[name] = MergedType(name, merged_kind)
            if merged_kind == "interface" and all(
                s.is_interface_object(s.types[name]) for s in self.subgraphs if name in s.types
            ):
                self.errors.append(
                    f'Type "{name}" is declared with @interfaceObject in all the subgraphs in '
                    f"which it is defined but should be defined as an interface in at least one"
                )

    def _merge_implements(self, dest: MergedType) -> None:
        for _, s, t in self.sources(dest.name):
            for interface in t.interfaces:
                dest.directives.append(
                    _join(
                        "join__implements",
                        [("graph", self.graph(s)), ("interface", _quote(interface))],
                    )
                )
                if interface not in dest.interfaces:
                    dest.interfaces.append(interface)

    def _description(self, descriptions: list[str | None]) -> str | None:
        counts: dict[str, int] = {}
        for d in descriptions:
            if d is not None:
                counts[d] = counts.get(d, 0) + 1
        if not counts:
            return None
        non_empty = [d for d in counts if d != ""]
        if len(counts) == 1:
            return next(iter(counts))
        if len(non_empty) == 1:
            return non_empty[0]
        return max(non_empty, key=lambda d: counts[d])

    def _merge_directives(
        self, sources: list[tuple[Subgraph, list[Applied]]]
    ) -> tuple[list[str], list[str]]:
        """Merged directive applications: (``@inaccessible`` if any, the others)."""
        per_name: dict[str, list[list[str]]] = {}
        for s, directives in sources:
            printed: dict[str, list[str]] = {}
            for d in directives:
                name = self.is_merged_directive(s, d.name)
                if name is not None:
                    printed.setdefault(name, []).append(_print_applied(name, d))
            for name, applications in printed.items():
                per_name.setdefault(name, []).append(applications)
        inaccessible: list[str] = []
        others: list[str] = []
        for name, per_source in per_name.items():
            target = inaccessible if name == "inaccessible" else others
            if self._is_repeatable(name):
                for applications in per_source:
                    target.extend(a for a in applications if a not in target)
            else:
                counts: dict[str, int] = {}
                for applications in per_source:
                    counts[applications[0]] = counts.get(applications[0], 0) + 1
                target.append(max(counts, key=lambda a: counts[a]))
        return inaccessible, others

    def _is_repeatable(self, name: str) -> bool:
        if name == "tag":
            return True
        composed = self.composed.get(name)
        return bool(composed and composed[2] is not None and composed[2].repeatable)

    def _merge_type(self, dest: MergedType) -> None:
        sources = self.sources(dest.name)
        if dest.name not in ("Query", "Mutation", "Subscription") and not any(
            t.has_definition for _, _, t in sources
        ):
            for _, s, _ in sources:
                self.errors.append(
                    f'[{s.name}] Type "{dest.name}" is an extension type, but there is no type '
                    f'definition for "{dest.name}" in any subgraph.'
                )
        dest.description = self._description([t.description for _, _, t in sources])
        for _, s, t in sources:
            keys = s.keys(t)
            interface_object = "true" if s.is_interface_object(t) else None
            if not keys:
                dest.directives.append(
                    _join(
                        "join__type",
                        [("graph", self.graph(s)), ("isInterfaceObject", interface_object)],
                    )
                )
            for key in keys:
                extension = key.of_extension or s.has(t.directives, "extends")
                resolvable = key.arg("resolvable")
                dest.directives.append(
                    _join(
                        "join__type",
                        [
                            ("graph", self.graph(s)),
                            ("key", _print_value(key.arg("fields"))),
                            ("extension", "true" if extension else None),
                            ("resolvable", _print_value(resolvable) if resolvable else None),
                            ("isInterfaceObject", interface_object),
                        ],
                    )
                )
        inaccessible, others = self._merge_directives([(s, t.directives) for _, s, t in sources])
        dest.directives.extend(inaccessible)
        if dest.kind in ("object", "interface"):
            self._merge_fields(dest, sources)
        elif dest.kind == "union":
            for _, _, t in sources:
                for member in t.members:
                    if member not in dest.members:
                        dest.members.append(member)
            for member in dest.members:
                for _, s, t in sources:
                    if member in t.members:
                        dest.directives.append(
                            _join(
                                "join__unionMember",
                                [("graph", self.graph(s)), ("member", _quote(member))],
                            )
                        )
        elif dest.kind == "enum":
            self._merge_enum(dest, sources)
        elif dest.kind == "input":
            self._merge_input(dest, sources)
        dest.directives.extend(others)

    # -- fields -------------------------------------------------------------------------

    def _field_sources(
        self, sources: list[tuple[int, Subgraph, SubgraphType]]
    ) -> dict[str, dict[int, Field | None]]:
        having = {i: None for i, _, _ in sources}
        result: dict[str, dict[int, Field | None]] = {}
        for i, _, t in sources:
            for f in t.fields.values():
                result.setdefault(f.name, dict(having))[i] = f
        return result

    def _merge_fields(
        self, dest: MergedType, sources: list[tuple[int, Subgraph, SubgraphType]]
    ) -> None:
        is_object = dest.kind == "object"
        for name, field_sources in self._field_sources(sources).items():
            merged = MergedField(name)
            context = self._validate_override(dest, name, field_sources)
            if self._merge_field(dest, merged, field_sources, context):
                dest.fields[name] = merged
                if is_object:
                    self._validate_sharing(dest, name, field_sources, context)
        if not dest.fields:
            del self.types[dest.name]

    def _validate_override(
        self, dest: MergedType, name: str, sources: dict[int, Field | None]
    ) -> _FieldContext:
        context = _FieldContext()
        overriding = {
            i: s.applied(f.directives, "override")
            for i, f in sources.items()
            if f is not None and (s := self.subgraphs[i]).has(f.directives, "override")
        }
        names = [s.name for s in self.subgraphs]
        coordinate = f"{dest.name}.{name}"
        for i, applications in overriding.items():
            s = self.subgraphs[i]
            application = applications[-1]
            if dest.kind == "interface":
                self.errors.append(
                    f'@override cannot be used on field "{coordinate}" on subgraph "{s.name}": '
                    f"@override is not supported on interface type fields."
                )
                continue
            source = application.arg("from")
            source_name = source.value if isinstance(source, StringValueNode) else ""
            if source_name not in names:
                context.unknown_target.add(i)
                continue
            if source_name == s.name:
                self.errors.append(
                    f'Source and destination subgraphs "{s.name}" are the same for overridden '
                    f'field "{coordinate}"'
                )
                continue
            from_index = names.index(source_name)
            if from_index in overriding:
                self.errors.append(
                    f'Field "{coordinate}" on subgraph "{s.name}" is also marked with directive '
                    f'@override in subgraph "{source_name}". Only one @override directive is '
                    f"allowed per field."
                )
                continue
            from_field = sources.get(from_index)
            if from_field is None:
                continue
            from_subgraph = self.subgraphs[from_index]
            if from_subgraph.is_external(from_field):
                continue
            if from_subgraph.is_used(from_field):
                context.used_overridden.add(from_index)
            else:
                context.unused_overridden.add(from_index)
            label = application.arg("label")
            if isinstance(label, StringValueNode):
                context.labels[i] = context.labels[from_index] = label.value
        return context

    def _merge_field(
        self,
        dest: MergedType,
        merged: MergedField,
        sources: dict[int, Field | None],
        context: _FieldContext,
    ) -> bool:
        coordinate = f"{dest.name}.{merged.name}"
        defined = {i: f for i, f in sources.items() if f is not None}
        if all(self.subgraphs[i].is_external(f) for i, f in defined.items()):
            listed = ", ".join(f'"{self.subgraphs[i].name}"' for i in defined)
            self.errors.append(
                f'Field "{coordinate}" is marked @external on all the subgraphs in which it is '
                f"listed ({listed})."
            )
            return False
        resolving = {i: f for i, f in defined.items() if not self.subgraphs[i].is_external(f)}
        merged.description = self._description([f.description for f in resolving.values()])
        inaccessible, others = self._merge_directives(
            [(self.subgraphs[i], f.directives) for i, f in resolving.items()]
        )
        merged.args = self._merge_arguments(coordinate, resolving)
        merged_type, all_equal = self._merge_type_reference(
            coordinate,
            "field",
            {i: (self.subgraphs[i], f.type) for i, f in resolving.items()},
            False,
        )
        if merged_type is None:
            return False
        merged.type = str(merged_type)
        for i, f in defined.items():
            s = self.subgraphs[i]
            if not s.is_external(f):
                continue
            external_type = _Ref.of_node(f.type, s.rename)
            if not (
                external_type == merged_type
                or (not all_equal and self._is_subtype(external_type, merged_type))
            ):
                self.errors.append(
                    f'Type of field "{coordinate}" is incompatible across subgraphs (where marked '
                    f'@external): it has type "{merged_type}" in the subgraphs resolving it but '
                    f'type "{external_type}" in subgraph "{s.name}"'
                )
        merged.directives = inaccessible
        if self._needs_join_field(dest.name, sources, all_equal, context):
            for i, source in sources.items():
                if source is None or (i in context.unused_overridden and i not in context.labels):
                    continue
                s = self.subgraphs[i]
                f = source
                override = s.applied(f.directives, "override")
                requires = s.applied(f.directives, "requires")
                provides = s.applied(f.directives, "provides")
                args: list[tuple[str, str | None]] = [
                    ("graph", self.graph(s)),
                    ("requires", _print_value(requires[0].arg("fields")) if requires else None),
                    ("provides", _print_value(provides[0].arg("fields")) if provides else None),
                    ("type", None if all_equal else _quote(str(_Ref.of_node(f.type, s.rename)))),
                    ("external", "true" if s.is_external(f) else None),
                    ("override", _print_value(override[-1].arg("from")) if override else None),
                    ("usedOverridden", "true" if i in context.used_overridden else None),
                ]
                if self.join_version >= (0, 4):
                    label = context.labels.get(i)
                    args.append(("overrideLabel", _quote(label) if label else None))
                merged.directives.append(_join("join__field", args))
        merged.directives.extend(others)
        return True

    def _needs_join_field(
        self, parent: str, sources: dict[int, Field | None], all_equal: bool, context: _FieldContext
    ) -> bool:
        if not all_equal or context.used_overridden or context.labels:
            return True
        for i, f in sources.items():
            s = self.subgraphs[i]
            if f is not None and i not in context.unused_overridden:
                if (
                    s.is_external(f)
                    or s.has(f.directives, "provides")
                    or s.has(f.directives, "requires")
                ):
                    return True
            elif parent in s.types:
                return True
        return False

    def _validate_sharing(
        self, dest: MergedType, name: str, sources: dict[int, Field | None], context: _FieldContext
    ) -> None:
        shareable: list[str] = []
        non_shareable: list[str] = []
        resolving: list[str] = []
        for i, f in sources.items():
            if f is None or i in context.used_overridden or i in context.unused_overridden:
                continue
            s = self.subgraphs[i]
            if s.is_fully_external(f):
                continue
            resolving.append(f'"{s.name}"')
            (shareable if s.is_shareable(f) else non_shareable).append(f'"{s.name}"')
        if non_shareable and (shareable or len(non_shareable) > 1):
            which = ", ".join(non_shareable) if shareable else "all of them"
            self.errors.append(
                f'Non-shareable field "{dest.name}.{name}" is resolved from multiple subgraphs: '
                f"it is resolved from subgraphs {', '.join(resolving)} and defined as "
                f"non-shareable in {which}"
            )

    def _merge_arguments(self, coordinate: str, fields: dict[int, Field]) -> list[MergedInputValue]:
        names: list[str] = []
        for f in fields.values():
            names.extend(n for n in f.args if n not in names)
        merged: list[MergedInputValue] = []
        for name in names:
            arg_sources = {i: f.args.get(name) for i, f in fields.items()}
            present = {i: a for i, a in arg_sources.items() if a is not None}
            if len(present) < len(arg_sources):
                required = [self.subgraphs[i].name for i, a in present.items() if _is_required(a)]
                if required:
                    missing = [self.subgraphs[i].name for i, a in arg_sources.items() if a is None]
                    self.errors.append(
                        f'Argument "{coordinate}({name}:)" is required in some subgraphs but does '
                        f"not appear in all subgraphs: it is required in {_names(required)} but "
                        f"does not appear in {_names(missing)}"
                    )
                continue
            value = self._merge_input_value(f"{coordinate}({name}:)", "Argument", name, present)
            if value is not None:
                merged.append(value)
        return merged

    def _merge_input_value(
        self,
        coordinate: str,
        kind: str,
        name: str,
        sources: dict[int, InputValue] | dict[int, Field],
    ) -> MergedInputValue | None:
        merged_type, _ = self._merge_type_reference(
            coordinate,
            "argument" if kind == "Argument" else "field",
            {i: (self.subgraphs[i], v.type) for i, v in sources.items()},
            True,
        )
        if merged_type is None:
            return None
        inaccessible, others = self._merge_directives(
            [(self.subgraphs[i], v.directives) for i, v in sources.items()]
        )
        defaults = {
            i: (_print_value(v.default) if v.default is not None else None)
            for i, v in sources.items()
        }
        distinct = {d for d in defaults.values() if d is not None}
        default: str | None = None
        if len(distinct) > 1:
            listed = "; ".join(
                f"{'default value ' + d if d is not None else 'no default value'} in subgraph "
                f'"{self.subgraphs[i].name}"'
                for i, d in defaults.items()
            )
            self.errors.append(
                f'{kind} "{coordinate}" has incompatible default values across subgraphs: it has {listed}'  # noqa: E501
            )
        elif distinct and all(d is not None for d in defaults.values()):
            default = next(iter(distinct))
        return MergedInputValue(
            name,
            str(merged_type),
            self._description([v.description for v in sources.values()]),
            default,
            inaccessible + others,
        )

    def _merge_type_reference(
        self,
        coordinate: str,
        element: str,
        sources: dict[int, tuple[Subgraph, TypeNode]],
        input_position: bool,
    ) -> tuple[_Ref | None, bool]:
        dest: _Ref | None = None
        has_subtypes = incompatible = False
        refs = {i: _Ref.of_node(node, s.rename) for i, (s, node) in sources.items()}
        for ref in refs.values():
            if dest is None or dest == ref:
                dest = ref
            elif self._is_subtype(dest, ref):
                has_subtypes = True
                if input_position:
                    dest = ref
            elif self._is_subtype(ref, dest):
                has_subtypes = True
                if not input_position:
                    dest = ref
            else:
                incompatible = True
        if dest is None:
            return None, False
        if dest.base in self.types and self.types[dest.base].kind == "enum":
            self.enum_usage.setdefault(dest.base, set()).add(
                "Input" if input_position else "Output"
            )
        if incompatible:
            listed = " and ".join(
                f'type "{ref}" in subgraph "{self.subgraphs[i].name}"' for i, ref in refs.items()
            )
            self.errors.append(
                f'Type of {element} "{coordinate}" is incompatible across subgraphs: it has {listed}'  # noqa: E501
            )
            return None, False
        return dest, not has_subtypes

    def _is_subtype(self, super_type: _Ref, maybe_sub: _Ref) -> bool:
        """Apollo's default subtyping rules (direct, nonNullable downgrade/propagation, list
        propagation), strict: equal types are not subtypes."""
        if maybe_sub.kind == "list":
            return super_type.kind == "list" and self._is_subtype_or_same(
                super_type.of, maybe_sub.of
            )
        if maybe_sub.kind == "non_null":
            if super_type.kind == "non_null":
                return self._is_subtype_or_same(super_type.of, maybe_sub.of)
            return self._is_subtype_or_same(super_type, maybe_sub.of)
        if super_type.kind != "named":
            return False
        parent = self.types.get(super_type.name)
        child = self.types.get(maybe_sub.name)
        if parent is None or child is None:
            return False
        if parent.kind == "interface":
            return super_type.name in child.interfaces
        if parent.kind == "union":
            return maybe_sub.name in parent.members
        return False

    def _is_subtype_or_same(self, a: _Ref | None, b: _Ref | None) -> bool:
        assert a is not None and b is not None
        return a == b or self._is_subtype(a, b)

    # -- enums and inputs ------------------------------------------------------------------

    def _merge_enum(
        self, dest: MergedType, sources: list[tuple[int, Subgraph, SubgraphType]]
    ) -> None:
        usage = self.enum_usage.get(dest.name, {"Output"})
        names: list[str] = []
        for _, _, t in sources:
            names.extend(v for v in t.values if v not in names)
        for name in names:
            having = [(s, t.values[name]) for _, s, t in sources if name in t.values]
            value = MergedEnumValue(name, self._description([v.description for _, v in having]))
            inaccessible, others = self._merge_directives([(s, v.directives) for s, v in having])
            value.directives = (
                inaccessible
                + [_join("join__enumValue", [("graph", self.graph(s))]) for s, _ in having]
                + others
            )
            if not inaccessible and "Input" in usage and len(having) < len(sources):
                if "Output" in usage:
                    missing = [s.name for _, s, t in sources if name not in t.values]
                    self.errors.append(
                        f'Enum type "{dest.name}" is used as both input type and output type, but '
                        f'value "{name}" is not defined in all the subgraphs defining '
                        f'"{dest.name}": it is not defined in {_names(missing)}'
                    )
                continue
            dest.values[name] = value
        if not dest.values:
            self.errors.append(
                f'None of the values of enum type "{dest.name}" are defined consistently in all '
                f"the subgraphs defining that type."
            )

    def _merge_input(
        self, dest: MergedType, sources: list[tuple[int, Subgraph, SubgraphType]]
    ) -> None:
        for name, field_sources in self._field_sources(sources).items():
            present = {i: f for i, f in field_sources.items() if f is not None}
            coordinate = f"{dest.name}.{name}"
            if len(present) < len(field_sources):
                required = [self.subgraphs[i].name for i, f in present.items() if _is_required(f)]
                inaccessible = any(
                    self.subgraphs[i].has(f.directives, "inaccessible") for i, f in present.items()
                )
                if required:
                    missing = [
                        self.subgraphs[i].name for i, f in field_sources.items() if f is None
                    ]
                    self.errors.append(
                        f'Input object field "{coordinate}" is required in some subgraphs but does '
                        f"not appear in all subgraphs: it is required in {_names(required)} but "
                        f"does not appear in {_names(missing)}"
                    )
                if not inaccessible or required:
                    continue
            value = self._merge_input_value(coordinate, "Input field", name, present)
            if value is None:
                continue
            all_equal = (
                len(
                    {
                        str(_Ref.of_node(f.type, self.subgraphs[i].rename))
                        for i, f in present.items()
                    }
                )
                == 1
            )
            merged = MergedField(name, value.type, value.description, default=value.default)
            inaccessible_d = [d for d in value.directives if d == "@inaccessible"]
            others = [d for d in value.directives if d != "@inaccessible"]
            merged.directives = inaccessible_d
            if not all_equal or len(present) < len(field_sources):
                for i, f in present.items():
                    s = self.subgraphs[i]
                    merged.directives.append(
                        _join(
                            "join__field",
                            [
                                ("graph", self.graph(s)),
                                (
                                    "type",
                                    None
                                    if all_equal
                                    else _quote(str(_Ref.of_node(f.type, s.rename))),
                                ),
                            ],
                        )
                    )
            merged.directives.extend(others)
            dest.fields[name] = merged
        if not dest.fields:
            self.errors.append(
                f'None of the fields of input object type "{dest.name}" are consistently defined '
                f"in all the subgraphs defining that type."
            )

    # -- interface objects, directives, references -----------------------------------------

    def _add_missing_interface_object_fields(self) -> None:
        for t in list(self.types.values()):
            if t.kind != "object":
                continue
            for interface_name in t.interfaces:
                interface = self.types.get(interface_name)
                for name, f in interface.fields.items() if interface else ():
                    if name in t.fields or not self._provided_by_interface_object(
                        interface_name, name
                    ):
                        continue
                    copy = MergedField(
                        name,
                        f.type,
                        f.description,
                        list(f.args),
                        [d for d in f.directives if not d.startswith("@join__")] + ["@join__field"],
                    )
                    t.fields[name] = copy

    def _provided_by_interface_object(self, interface: str, field_name: str) -> bool:
        for s in self.subgraphs:
            t = s.types.get(interface)
            if t is not None and s.is_interface_object(t):
                f = t.fields.get(field_name)
                if f is not None and not s.is_external(f):
                    return True
        return False

    def _merge_directive_definitions(self) -> dict[str, str]:
        definitions: dict[str, str] = {}
        for name, (_, _, node) in self.composed.items():
            if node is not None:
                definitions[name] = print_ast(node)
        # Executable directives (usable in operations) are kept when every subgraph has them.
        executable = {
            "QUERY",
            "MUTATION",
            "SUBSCRIPTION",
            "FIELD",
            "FRAGMENT_DEFINITION",
            "FRAGMENT_SPREAD",
            "INLINE_FRAGMENT",
            "VARIABLE_DEFINITION",
        }
        names: list[str] = []
        for s in self.subgraphs:
            names.extend(n for n in s.directive_definitions if n not in names)
        for name in names:
            if name in definitions or name in BUILTIN_DIRECTIVES:
                continue
            nodes = [s.directive_definitions.get(name) for s in self.subgraphs]
            if any(n is None for n in nodes):
                continue
            present = [n for n in nodes if n is not None]
            locations = [
                loc.value
                for loc in present[0].locations
                if loc.value in executable
                and all(loc.value in {x.value for x in n.locations} for n in present)
            ]
            if not locations:
                continue
            repeatable = all(n.repeatable for n in present)
            definitions[name] = print_ast(
                DirectiveDefinitionNode(
                    name=NameNode(value=name),
                    arguments=present[0].arguments,
                    repeatable=repeatable,
                    locations=tuple(NameNode(value=loc) for loc in locations),
                )
            )
        definitions["link"] = LINK_DEFINITION
        definitions.update(self._join_directive_definitions())
        if self.uses_inaccessible:
            definitions["inaccessible"] = INACCESSIBLE_DEFINITION
        if self.uses_tag:
            definitions["tag"] = TAG_DEFINITION
        return definitions

    def _join_directive_definitions(self) -> dict[str, str]:
        v4 = self.join_version >= (0, 4)
        v5 = self.join_version >= (0, 5)
        field_args = (
            "graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, "
            "external: Boolean, override: String, usedOverridden: Boolean"
            + (", overrideLabel: String" if v4 else "")
            + (", contextArguments: [join__ContextArgument!]" if v5 else "")
        )
        definitions = {
            "join__enumValue": "directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE",  # noqa: E501
            "join__field": f"directive @join__field({field_args}) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION",  # noqa: E501
            "join__graph": "directive @join__graph(name: String!, url: String!) on ENUM_VALUE",
            "join__implements": "directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE",  # noqa: E501
            "join__type": (
                "directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, "  # noqa: E501
                "resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | "  # noqa: E501
                "INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR"
            ),
            "join__unionMember": "directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION",  # noqa: E501
        }
        if v4:
            definitions["join__directive"] = (
                "directive @join__directive(graphs: [join__Graph!], name: String!, args: "
                "join__DirectiveArguments) repeatable on SCHEMA | OBJECT | INTERFACE | FIELD_DEFINITION"  # noqa: E501
            )
        return definitions

    def _join_types(self) -> dict[str, MergedType]:
        types = {
            "join__FieldSet": MergedType("join__FieldSet", "scalar"),
            "link__Import": MergedType("link__Import", "scalar"),
        }
        graph = MergedType("join__Graph", "enum")
        for s in self.subgraphs:
            graph.values[self.graph(s)] = MergedEnumValue(
                self.graph(s),
                directives=[
                    _join("join__graph", [("name", _quote(s.name)), ("url", _quote(s.url))])
                ],
            )
        types["join__Graph"] = graph
        if self.join_version >= (0, 4):
            types["join__DirectiveArguments"] = MergedType("join__DirectiveArguments", "scalar")
        if self.join_version >= (0, 5):
            types["join__FieldValue"] = MergedType("join__FieldValue", "scalar")
            context = MergedType("join__ContextArgument", "input")
            for name, type_ in (
                ("name", "String!"),
                ("type", "String!"),
                ("context", "String!"),
                ("selection", "join__FieldValue!"),
            ):
                context.fields[name] = MergedField(name, type_)
            types["join__ContextArgument"] = context
        purpose = MergedType("link__Purpose", "enum")
        for value, text in (
            (
                "SECURITY",
                "`SECURITY` features provide metadata necessary to securely resolve fields.",
            ),
            (
                "EXECUTION",
                "`EXECUTION` features provide metadata necessary for operation execution.",
            ),
        ):
            purpose.values[value] = MergedEnumValue(value, text)
        types["link__Purpose"] = purpose
        return types

    def _schema_links(self) -> list[str]:
        join = "https://specs.apollo.dev/join/v{}.{}".format(*self.join_version)
        links = [f"@link(url: {_quote(LINK_URL)})", f"@link(url: {_quote(join)}, for: EXECUTION)"]
        if self.uses_tag:
            links.append(f"@link(url: {_quote(TAG_URL)})")
        if self.uses_inaccessible:
            links.append(f"@link(url: {_quote(INACCESSIBLE_URL)}, for: SECURITY)")
        by_url: dict[str, list[str]] = {}
        for name, (_, url, _) in self.composed.items():
            by_url.setdefault(url, []).append(name)
        for url, names in by_url.items():
            imports = ", ".join(_quote("@" + n) for n in names)
            links.append(f"@link(url: {_quote(url)}, import: [{imports}])")
        return links

    def _check_references(self) -> None:
        known = set(self.types) | BUILTIN_SCALARS
        for t in self.types.values():
            for f in t.fields.values():
                base = _base_name(f.type)
                if base not in known:
                    self.errors.append(f'Field "{t.name}.{f.name}" has unknown type "{base}"')


def _base_name(type_str: str) -> str:
    return type_str.strip("[]!")


def _is_required(value: InputValue | Field) -> bool:
    return isinstance(value.type, NonNullTypeNode) and value.default is None


def _names(names: list[str]) -> str:
    quoted = [f'"{n}"' for n in names]
    return ("subgraph " if len(quoted) == 1 else "subgraphs ") + ", ".join(quoted)


# -- API schema -----------------------------------------------------------------------------

_API_DIRECTIVES = frozenset({"deprecated", "specifiedBy", "oneOf"})


def api_schema_sdl(supergraph_sdl: str) -> str:
    """The API schema of a supergraph, printed by graphql-core's ``print_schema``.

    Join/link/inaccessible/tag and composed-directive machinery is removed, every element marked
    ``@inaccessible`` is dropped, root types keep their standard names.
    """
    try:
        document = parse(supergraph_sdl)
    except GraphQLError as error:
        raise CompositionError([f"invalid supergraph SDL: {error.message}"]) from None
    feature_directives = _feature_directive_names(document)
    inaccessible_types = {
        d.name.value
        for d in document.definitions
        if hasattr(d, "name")
        and not isinstance(d, DirectiveDefinitionNode)
        and _inaccessible(getattr(d, "directives", None))
    }
    hidden_types = inaccessible_types | {
        d.name.value
        for d in document.definitions
        if hasattr(d, "name")
        and (d.name.value.startswith("join__") or d.name.value.startswith("link__"))
    }

    def keep_directives(nodes: Sequence[DirectiveNode] | None) -> tuple[DirectiveNode, ...]:
        return tuple(n for n in nodes or () if n.name.value in _API_DIRECTIVES)

    def visible_args(args: Sequence[object] | None) -> tuple[object, ...]:
        return tuple(
            a.__class__(**{**_node_fields(a), "directives": keep_directives(a.directives)})  # type: ignore[attr-defined]
            for a in args or ()
            if not _inaccessible(a.directives)  # type: ignore[attr-defined]
        )

    definitions: list[object] = []
    for d in document.definitions:
        if isinstance(d, SchemaDefinitionNode):
            definitions.append(
                SchemaDefinitionNode(operation_types=d.operation_types, directives=())
            )
            continue
        if isinstance(d, DirectiveDefinitionNode):
            if d.name.value not in feature_directives:
                definitions.append(d)
            continue
        name = getattr(d, "name", None)
        if name is None or name.value in hidden_types:
            continue
        values = _node_fields(d)
        values["directives"] = keep_directives(getattr(d, "directives", None))
        if isinstance(d, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            values["interfaces"] = tuple(
                i for i in d.interfaces or () if i.name.value not in hidden_types
            )
            values["fields"] = tuple(
                f.__class__(
                    **{
                        **_node_fields(f),
                        "directives": keep_directives(f.directives),
                        "arguments": visible_args(f.arguments),
                    }
                )
                for f in d.fields or ()
                if not _inaccessible(f.directives)
            )
        elif isinstance(d, InputObjectTypeDefinitionNode):
            values["fields"] = visible_args(d.fields)
        elif isinstance(d, UnionTypeDefinitionNode):
            values["types"] = tuple(t for t in d.types or () if t.name.value not in hidden_types)
        elif isinstance(d, EnumTypeDefinitionNode):
            values["values"] = tuple(
                v.__class__(**{**_node_fields(v), "directives": keep_directives(v.directives)})
                for v in d.values or ()
                if not _inaccessible(v.directives)
            )
        definitions.append(d.__class__(**values))
    try:
        schema = build_ast_schema(DocumentNode(definitions=tuple(definitions)))  # type: ignore[arg-type]
    except (GraphQLError, TypeError) as error:
        raise CompositionError([f"the supergraph has no valid API schema: {error}"]) from None
    return print_schema(schema)


def _node_fields(node: object) -> dict[str, Any]:
    return {k: getattr(node, k) for k in node.keys if k != "loc"}  # type: ignore[attr-defined]


def _inaccessible(directives: Sequence[DirectiveNode] | None) -> bool:
    return any(d.name.value == "inaccessible" for d in directives or ())


def _feature_directive_names(document: DocumentNode) -> set[str]:
    """Directives that belong to linked specs (``link``, ``join``, ``inaccessible``, composed)."""
    names = {"link", "inaccessible", "tag"}
    for d in document.definitions:
        if isinstance(d, DirectiveDefinitionNode) and d.name.value.startswith("join__"):
            names.add(d.name.value)
        if isinstance(d, SchemaDefinitionNode):
            for directive in d.directives or ():
                if directive.name.value != "link":
                    continue
                for argument in directive.arguments or ():
                    if argument.name.value == "import":
                        names.update(_imported_names(argument))
    return names


def _imported_names(argument: ArgumentNode) -> set[str]:
    from graphql import ListValueNode, ObjectValueNode

    names: set[str] = set()
    value = argument.value
    for item in value.values if isinstance(value, ListValueNode) else ():
        if isinstance(item, StringValueNode):
            names.add(item.value.lstrip("@"))
        elif isinstance(item, ObjectValueNode):
            for f in item.fields:
                if f.name.value == "as" and isinstance(f.value, StringValueNode):
                    names.add(f.value.value.lstrip("@"))
    return names
