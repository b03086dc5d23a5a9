"""Printing a composed supergraph the way ``@apollo/composition`` prints it.

Kept apart from the merge so that the merge deals in schema elements and this module alone
knows the layout (sorted definitions, one directive per line on types, block descriptions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

INDENT = "  "


@dataclass
class MergedInputValue:
    """A supergraph argument or input field."""

    name: str
    type: str
    description: str | None = None
    default: str | None = None
    directives: list[str] = field(default_factory=list)


@dataclass
class MergedField:
    name: str
    type: str = ""
    description: str | None = None
    args: list[MergedInputValue] = field(default_factory=list)
    directives: list[str] = field(default_factory=list)
    default: str | None = None  # input fields only


@dataclass
class MergedEnumValue:
    name: str
    description: str | None = None
    directives: list[str] = field(default_factory=list)


@dataclass
class MergedType:
    """A supergraph type with its ``@join__*`` and merged directives as printed strings."""

    name: str
    kind: str
    description: str | None = None
    directives: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    fields: dict[str, MergedField] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    values: dict[str, MergedEnumValue] = field(default_factory=dict)


def sort_key(name: str) -> tuple[str, str]:
    """Approximates JavaScript's ``localeCompare`` on GraphQL names (case-insensitive first)."""
    return (name.replace("_", "\x00").lower(), name.swapcase())


def block_string(value: str, indentation: str = "", prefer_multiple_lines: bool = False) -> str:
    is_single_line = "\n" not in value
    has_leading_space = value[:1] in (" ", "\t")
    multiple = (
        not is_single_line or value.endswith('"') or value.endswith("\\") or prefer_multiple_lines
    )
    result = ""
    if multiple and not (is_single_line and has_leading_space):
        result += "\n" + indentation
    result += value.replace("\n", "\n" + indentation) if indentation else value
    if multiple:
        result += "\n"
    return '"""' + result.replace('"""', '\\"""') + '"""'


def description(text: str | None, indentation: str = "", first_in_block: bool = True) -> str:
    if text is None:
        return ""
    printed = block_string(text, "", len(text) > 70)
    prefix = "\n" + indentation if indentation and not first_in_block else indentation
    return prefix + printed.replace("\n", "\n" + indentation) + "\n"


def _directives(
    directives: list[str], on_new_lines: bool = False, end_new_line: bool = False
) -> str:
    if not directives:
        return ""
    if on_new_lines:
        return "\n" + INDENT + ("\n" + INDENT).join(directives) + ("\n" if end_new_line else "")
    return " " + " ".join(directives)


def _args(args: list[MergedInputValue], indentation: str = "") -> str:
    if not args:
        return ""
    if all(not a.description for a in args):
        return "(" + ", ".join(_input_value(a) for a in args) + ")"
    lines = [
        description(a.description, INDENT + indentation, i == 0)
        + INDENT
        + indentation
        + _input_value(a)
        for i, a in enumerate(args)
    ]
    return "(\n" + "\n".join(lines) + "\n" + indentation + ")"


def _input_value(value: MergedInputValue) -> str:
    default = f" = {value.default}" if value.default is not None else ""
    return f"{value.name}: {value.type}{default}{_directives(value.directives)}"


def _block(items: list[str]) -> str:
    return "{\n" + "\n".join(items) + "\n}" if items else ""


def print_type(t: MergedType) -> str:
    head = description(t.description)
    if t.kind == "scalar":
        return f"{head}scalar {t.name}{_directives(t.directives, True, False)}"
    if t.kind == "union":
        members = " = " + " | ".join(t.members) if t.members else ""
        return f"{head}union {t.name}{_directives(t.directives, True, bool(t.members))}{members}"
    if t.kind == "enum":
        values = [
            description(v.description, INDENT, i == 0) + INDENT + v.name + _directives(v.directives)
            for i, v in enumerate(t.values.values())
        ]
        gap = " " if not t.directives and values else ""
        return f"{head}enum {t.name}{_directives(t.directives, True, bool(values))}{gap}{_block(values)}"  # noqa: E501
    keyword = {"object": "type", "interface": "interface", "input": "input"}[t.kind]
    implements = " implements " + " & ".join(t.interfaces) if t.interfaces else ""
    fields = []
    for i, f in enumerate(t.fields.values()):
        default = f" = {f.default}" if f.default is not None else ""
        fields.append(
            description(f.description, INDENT, i == 0)
            + INDENT
            + f.name
            + _args(f.args, INDENT)
            + f": {f.type}{default}"
            + _directives(f.directives)
        )
    gap = " " if not t.directives and fields else ""
    return (
        f"{head}{keyword} {t.name}{implements}{_directives(t.directives, True, bool(fields))}"
        f"{gap}{_block(fields)}"
    )


def print_supergraph(
    schema_directives: list[str],
    roots: dict[str, str],
    directive_definitions: dict[str, str],
    types: dict[str, MergedType],
) -> str:
    """The supergraph SDL: schema, directive definitions, then types, each sorted by name."""
    root_lines = [f"{INDENT}{kind}: {name}" for kind, name in roots.items()]
    schema = "schema" + _directives(schema_directives, True, True) + _block(root_lines)
    parts = [schema]
    parts += [directive_definitions[n] for n in sorted(directive_definitions, key=sort_key)]
    parts += [print_type(types[n]) for n in sorted(types, key=sort_key)]
    return "\n\n".join(parts) + "\n"
