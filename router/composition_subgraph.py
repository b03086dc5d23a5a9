"""Reading one Federation v2 subgraph SDL into the shape composition works on.

A subgraph SDL is not a valid schema on its own (it uses ``@key`` without defining it, its
federation names depend on its ``@link``), so composition reads the AST directly: this module
resolves the subgraph's ``@link`` imports, strips the federation machinery (``_Service``,
``_Entity``, ``_Any``, ``_service``, ``_entities``, ``FieldSet``, link/federation definitions),
normalises root type names and answers the federation questions the merge needs (is this field
external, shareable, used by a key/requires/provides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from graphql import (
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    FieldNode,
    GraphQLSyntaxError,
    InlineFragmentNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    SelectionSetNode,
    StringValueNode,
    TypeNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    ValueNode,
    parse,
)

FEDERATION_IDENTITY = "https://specs.apollo.dev/federation"
LINK_IDENTITY = "https://specs.apollo.dev/link"
BUILTIN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})
#: Directives every GraphQL schema has; their applications are merged like composed ones.
BUILTIN_DIRECTIVES = frozenset({"deprecated", "specifiedBy", "include", "skip", "oneOf"})
ROOT_KINDS: tuple[str, ...] = ("query", "mutation", "subscription")
DEFAULT_ROOT_NAMES = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}
FEDERATION_DIRECTIVES = frozenset(
    {
        "key",
        "external",
        "requires",
        "provides",
        "extends",
        "shareable",
        "inaccessible",
        "tag",
        "override",
        "composeDirective",
        "interfaceObject",
        "authenticated",
        "requiresScopes",
        "policy",
        "context",
        "fromContext",
        "cost",
        "listSize",
        "cacheTag",
    }
)
#: Types a subgraph carries only for the federation protocol; never merged.
FEDERATION_TYPES = frozenset(
    {
        "_Service",
        "_Entity",
        "_Any",
        "_FieldSet",
        "FieldSet",
        "link__Import",
        "link__Purpose",
        "link__FieldSet",
        "federation__FieldSet",
        "federation__Scope",
        "federation__Policy",
        "federation__ContextFieldValue",
        "Scope",
        "Policy",
        "ContextFieldValue",
    }
)

Kind = Literal["object", "interface", "union", "enum", "input", "scalar"]

_TYPE_NODES: dict[type, tuple[Kind, bool]] = {
    ObjectTypeDefinitionNode: ("object", False),
    ObjectTypeExtensionNode: ("object", True),
    InterfaceTypeDefinitionNode: ("interface", False),
    InterfaceTypeExtensionNode: ("interface", True),
    UnionTypeDefinitionNode: ("union", False),
    UnionTypeExtensionNode: ("union", True),
    EnumTypeDefinitionNode: ("enum", False),
    EnumTypeExtensionNode: ("enum", True),
    InputObjectTypeDefinitionNode: ("input", False),
    InputObjectTypeExtensionNode: ("input", True),
    ScalarTypeDefinitionNode: ("scalar", False),
    ScalarTypeExtensionNode: ("scalar", True),
}


class SubgraphError(Exception):
    """A subgraph SDL that cannot be composed; the message names the subgraph."""


@dataclass
class Applied:
    """One directive application, with whether it sits on a type extension."""

    node: DirectiveNode
    of_extension: bool = False

    @property
    def name(self) -> str:
        return self.node.name.value

    def arg(self, name: str) -> ValueNode | None:
        for argument in self.node.arguments or ():
            if argument.name.value == name:
                return argument.value
        return None


@dataclass
class InputValue:
    """An argument or an input field."""

    name: str
    description: str | None
    type: TypeNode
    default: ValueNode | None
    directives: list[Applied]
    parent: str  # coordinate of the owner, for messages

    @property
    def coordinate(self) -> str:
        return (
            f"{self.parent}({self.name}:)" if "." in self.parent else f"{self.parent}.{self.name}"
        )


@dataclass
class Field:
    """A field of an object or interface type (or an input field, with ``args`` empty)."""

    name: str
    parent: str
    description: str | None
    type: TypeNode
    args: dict[str, InputValue]
    directives: list[Applied]
    of_extension: bool
    default: ValueNode | None = None  # input fields only

    @property
    def coordinate(self) -> str:
        return f"{self.parent}.{self.name}"


@dataclass
class EnumValue:
    name: str
    description: str | None
    directives: list[Applied]


@dataclass
class SubgraphType:
    """Everything one subgraph says about one named type (definition and extensions)."""

    name: str
    kind: Kind
    description: str | None = None
    directives: list[Applied] = field(default_factory=list)
    fields: dict[str, Field] = field(default_factory=dict)
    interfaces: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    values: dict[str, EnumValue] = field(default_factory=dict)
    has_definition: bool = False
    has_extension: bool = False


@dataclass
class Link:
    """A ``@link`` on the subgraph's schema: which spec, under which local names."""

    url: str
    identity: str
    name: str
    version: tuple[int, int]
    prefix: str
    imports: dict[str, str]  # local name (no @) -> name in the spec


def parse_link_url(url: str) -> tuple[str, str, tuple[int, int]]:
    """Split ``https://host/path/name/vX.Y`` into identity, name and version."""
    stripped = url.rstrip("/")
    head, _, last = stripped.rpartition("/")
    version = (0, 0)
    if last.startswith("v") and "." in last:
        major, _, minor = last[1:].partition(".")
        if major.isdigit() and minor.isdigit():
            version = (int(major), int(minor))
            stripped = head
    return stripped, stripped.rpartition("/")[2], version


def type_name_of(node: TypeNode) -> str:
    while isinstance(node, ListTypeNode | NonNullTypeNode):
        node = node.type
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def type_to_str(node: TypeNode, rename: dict[str, str] | None = None) -> str:
    if isinstance(node, NonNullTypeNode):
        return type_to_str(node.type, rename) + "!"
    if isinstance(node, ListTypeNode):
        return "[" + type_to_str(node.type, rename) + "]"
    assert isinstance(node, NamedTypeNode)
    name = node.name.value
    return rename.get(name, name) if rename else name


def _string(value: ValueNode | None) -> str | None:
    return value.value if isinstance(value, StringValueNode) else None


def parse_field_set(text: str) -> SelectionSetNode:
    """Parse a federation FieldSet (``"id organization { id }"``) into a selection set."""
    document = parse("{" + text + "}", no_location=True)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.selection_set


class Subgraph:
    """One subgraph, read from its SDL, with federation questions answered."""

    def __init__(self, name: str, url: str, sdl: str) -> None:
        self.name = name
        self.url = url
        self.errors: list[str] = []
        try:
            document = parse(sdl)
        except GraphQLSyntaxError as error:
            raise SubgraphError(f"[{name}] invalid SDL: {error.message}") from None
        self.links: list[Link] = []
        self.schema_directives: list[Applied] = []
        self.roots: dict[str, str] = {}
        self.directive_definitions: dict[str, DirectiveDefinitionNode] = {}
        self.types: dict[str, SubgraphType] = {}
        self._read_schema(document)
        self.federation = next((k for k in self.links if k.identity == FEDERATION_IDENTITY), None)
        self._federation_names = self._federation_name_map()
        self._read_types(document)
        self._normalise_roots()
        self._strip_federation_machinery()
        self._external = self._collect_external()
        self._used = self._collect_used_fields()
        self._shareable = self._collect_shareable()

    # -- reading ----------------------------------------------------------------------

    def _read_schema(self, document: DocumentNode) -> None:
        for definition in document.definitions:
            if isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
                for operation in definition.operation_types or ():
                    self.roots[operation.operation.value] = operation.type.name.value
                for directive in definition.directives or ():
                    self.schema_directives.append(Applied(directive))
                    if directive.name.value == "link":
                        self._read_link(Applied(directive))
            elif isinstance(definition, DirectiveDefinitionNode):
                self.directive_definitions[definition.name.value] = definition

    def _read_link(self, link: Applied) -> None:
        url = _string(link.arg("url"))
        if url is None:
            self.errors.append(f"[{self.name}] @link without a url")
            return
        identity, spec_name, version = parse_link_url(url)
        prefix = _string(link.arg("as")) or spec_name
        imports: dict[str, str] = {}
        listed = link.arg("import")
        for item in listed.values if isinstance(listed, ListValueNode) else ():
            if isinstance(item, StringValueNode):
                imports[item.value.lstrip("@")] = item.value.lstrip("@")
            elif isinstance(item, ObjectValueNode):
                fields = {f.name.value: _string(f.value) for f in item.fields}
                original, alias = fields.get("name"), fields.get("as") or fields.get("name")
                if original and alias:
                    imports[alias.lstrip("@")] = original.lstrip("@")
        self.links.append(Link(url, identity, spec_name, version, prefix, imports))

    def _federation_name_map(self) -> dict[str, str]:
        """Local directive name -> federation directive name."""
        if self.federation is None:
            # No @link: read the names as they are (Federation 1 style), which is all we need.
            return {name: name for name in FEDERATION_DIRECTIVES}
        names = {f"{self.federation.prefix}__{name}": name for name in FEDERATION_DIRECTIVES}
        for local, original in self.federation.imports.items():
            if original in FEDERATION_DIRECTIVES:
                names[local] = original
        return names

    @property
    def federation_version(self) -> tuple[int, int]:
        return self.federation.version if self.federation else (2, 0)

    def federation_directive(self, local_name: str) -> str | None:
        """The federation name of a directive used under ``local_name`` here, if it is one."""
        return self._federation_names.get(local_name)

    def is_link_directive(self, local_name: str) -> bool:
        link = next((k for k in self.links if k.identity == LINK_IDENTITY), None)
        prefix = link.prefix if link else "link"
        return local_name == "link" or local_name.startswith(prefix + "__")

    def _read_types(self, document: DocumentNode) -> None:
        for definition in document.definitions:
            kind_info = _TYPE_NODES.get(type(definition))
            if kind_info is None:
                continue
            kind, is_extension = kind_info
            name = definition.name.value  # type: ignore[attr-defined]
            existing = self.types.get(name)
            if existing is None:
                existing = self.types[name] = SubgraphType(name, kind)
            elif existing.kind != kind:
                self.errors.append(
                    f'[{self.name}] Type "{name}" is defined both as {existing.kind} and {kind}'
                )
                continue
            if is_extension:
                existing.has_extension = True
            else:
                existing.has_definition = True
                description = getattr(definition, "description", None)
                if description is not None:
                    existing.description = description.value
            existing.directives.extend(
                Applied(d, is_extension)
                for d in definition.directives or ()  # type: ignore[attr-defined]
            )
            for interface in getattr(definition, "interfaces", None) or ():
                if interface.name.value not in existing.interfaces:
                    existing.interfaces.append(interface.name.value)
            if kind == "union":
                for member in getattr(definition, "types", None) or ():
                    if member.name.value not in existing.members:
                        existing.members.append(member.name.value)
            if kind == "enum":
                for value in getattr(definition, "values", None) or ():
                    existing.values[value.name.value] = EnumValue(
                        value.name.value,
                        value.description.value if value.description else None,
                        [Applied(d) for d in value.directives or ()],
                    )
            for field_node in getattr(definition, "fields", None) or ():
                if isinstance(field_node, InputValueDefinitionNode):
                    existing.fields[field_node.name.value] = Field(
                        field_node.name.value,
                        name,
                        field_node.description.value if field_node.description else None,
                        field_node.type,
                        {},
                        [Applied(d) for d in field_node.directives or ()],
                        is_extension,
                        field_node.default_value,
                    )
                    continue
                coordinate = f"{name}.{field_node.name.value}"
                args = {
                    a.name.value: InputValue(
                        a.name.value,
                        a.description.value if a.description else None,
                        a.type,
                        a.default_value,
                        [Applied(d) for d in a.directives or ()],
                        coordinate,
                    )
                    for a in field_node.arguments or ()
                }
                existing.fields[field_node.name.value] = Field(
                    field_node.name.value,
                    name,
                    field_node.description.value if field_node.description else None,
                    field_node.type,
                    args,
                    [Applied(d) for d in field_node.directives or ()],
                    is_extension,
                )

    def _normalise_roots(self) -> None:
        """Root types take their standard names (``schema { query: RootQuery }`` -> Query)."""
        for kind in ROOT_KINDS:
            if kind not in self.roots and DEFAULT_ROOT_NAMES[kind] in self.types:
                self.roots[kind] = DEFAULT_ROOT_NAMES[kind]
        self.rename: dict[str, str] = {}
        for kind, name in self.roots.items():
            standard = DEFAULT_ROOT_NAMES[kind]
            if name != standard:
                if standard in self.types:
                    self.errors.append(
                        f'[{self.name}] The schema root "{kind}" is "{name}" but the subgraph '
                        f'also defines a type named "{standard}"'
                    )
                    continue
                self.rename[name] = standard
        for old, new in self.rename.items():
            if old in self.types:
                t = self.types.pop(old)
                t.name = new
                for f in t.fields.values():
                    f.parent = new
                self.types[new] = t
        # Every subgraph has a query root for the federation protocol (``_service``).
        self.types.setdefault("Query", SubgraphType("Query", "object", has_definition=True))
        self.roots["query"] = "Query"

    def _strip_federation_machinery(self) -> None:
        for name in list(self.types):
            if name in FEDERATION_TYPES or name in BUILTIN_SCALARS or name.startswith("__"):
                del self.types[name]
        query = self.types["Query"]
        for name in ("_service", "_entities"):
            query.fields.pop(name, None)
        for name in list(self.directive_definitions):
            if self.federation_directive(name) or self.is_link_directive(name):
                del self.directive_definitions[name]
        for t in self.types.values():
            t.directives = [d for d in t.directives if not self.is_link_directive(d.name)]

    def type_str(self, node: TypeNode) -> str:
        return type_to_str(node, self.rename)

    def named(self, node: TypeNode) -> str:
        name = type_name_of(node)
        return self.rename.get(name, name)

    # -- federation directives ----------------------------------------------------------

    def applied(self, directives: list[Applied], federation_name: str) -> list[Applied]:
        return [d for d in directives if self.federation_directive(d.name) == federation_name]

    def has(self, directives: list[Applied], federation_name: str) -> bool:
        return bool(self.applied(directives, federation_name))

    def keys(self, t: SubgraphType) -> list[Applied]:
        return self.applied(t.directives, "key")

    def is_interface_object(self, t: SubgraphType) -> bool:
        return t.kind == "object" and self.has(t.directives, "interfaceObject")

    def field_set_arg(self, directive: Applied) -> str | None:
        return _string(directive.arg("fields"))

    def target_fields(self, type_name: str, field_set: str) -> list[Field]:
        """The fields a FieldSet selects, starting at ``type_name`` (unknown ones skipped)."""
        try:
            selection = parse_field_set(field_set)
        except GraphQLSyntaxError:
            return []
        found: list[Field] = []
        self._walk(type_name, selection, found, None)
        return found

    def _walk(
        self,
        type_name: str,
        selection: SelectionSetNode,
        found: list[Field],
        missing: list[str] | None,
    ) -> None:
        t = self.types.get(type_name)
        for node in selection.selections:
            if isinstance(node, InlineFragmentNode):
                target = node.type_condition.name.value if node.type_condition else type_name
                self._walk(target, node.selection_set, found, missing)
                continue
            if not isinstance(node, FieldNode):
                continue
            if node.name.value == "__typename":
                continue
            f = t.fields.get(node.name.value) if t else None
            if f is None:
                if missing is not None:
                    missing.append(f'Cannot query field "{node.name.value}" on type "{type_name}"')
                continue
            found.append(f)
            if node.selection_set is not None:
                self._walk(self.named(f.type), node.selection_set, found, missing)

    def missing_fields(self, type_name: str, field_set: str) -> list[str]:
        """Problems with a FieldSet: syntax errors and fields that do not exist."""
        try:
            selection = parse_field_set(field_set)
        except GraphQLSyntaxError as error:
            return [f"invalid field set: {error.message}"]
        missing: list[str] = []
        self._walk(type_name, selection, [], missing)
        return missing

    def _collect_external(self) -> set[str]:
        fake: set[str] = set()
        for t in self.types.values():
            extends = self.has(t.directives, "extends")
            for key in self.keys(t):
                if not (key.of_extension or extends):
                    continue
                fields_arg = self.field_set_arg(key)
                for f in self.target_fields(t.name, fields_arg or ""):
                    if self.has(f.directives, "external"):
                        fake.add(f.coordinate)
        external: set[str] = set()
        for t in self.types.values():
            if t.kind != "object":
                continue
            on_type = self.has(t.directives, "external")
            for f in t.fields.values():
                if (on_type or self.has(f.directives, "external")) and f.coordinate not in fake:
                    external.add(f.coordinate)
        self.provided: set[str] = set()
        for t in self.types.values():
            for f in t.fields.values():
                for provides in self.applied(f.directives, "provides"):
                    target = self.named(f.type)
                    for provided in self.target_fields(target, self.field_set_arg(provides) or ""):
                        self.provided.add(provided.coordinate)
        return external

    def _collect_used_fields(self) -> set[str]:
        used: set[str] = set()
        for t in self.types.values():
            for key in self.keys(t):
                used.update(
                    f.coordinate for f in self.target_fields(t.name, self.field_set_arg(key) or "")
                )
            for f in t.fields.values():
                for requires in self.applied(f.directives, "requires"):
                    used.update(
                        g.coordinate
                        for g in self.target_fields(t.name, self.field_set_arg(requires) or "")
                    )
                for provides in self.applied(f.directives, "provides"):
                    used.update(
                        g.coordinate
                        for g in self.target_fields(
                            self.named(f.type), self.field_set_arg(provides) or ""
                        )
                    )
            # A field that implements an interface field is used by that interface.
            for interface in t.interfaces:
                itf = self.types.get(interface)
                for name in itf.fields if itf else ():
                    if name in t.fields:
                        used.add(f"{t.name}.{name}")
        return used

    def _collect_shareable(self) -> set[str]:
        shareable: set[str] = set()
        for t in self.types.values():
            if t.kind not in ("object", "interface"):
                continue
            for key in self.keys(t):
                shareable.update(
                    f.coordinate for f in self.target_fields(t.name, self.field_set_arg(key) or "")
                )
            if t.kind != "object":
                continue
            on_type = self.applied(t.directives, "shareable")
            for f in t.fields.values():
                if self.has(f.directives, "shareable") or any(
                    d.of_extension == f.of_extension for d in on_type
                ):
                    shareable.add(f.coordinate)
        for coordinate in self.provided:
            if coordinate in self._external:
                shareable.add(coordinate)
        return shareable

    def is_external(self, f: Field) -> bool:
        return f.coordinate in self._external

    def is_fully_external(self, f: Field) -> bool:
        return self.is_external(f) and f.coordinate not in self.provided

    def is_shareable(self, f: Field) -> bool:
        return f.coordinate in self._shareable

    def is_used(self, f: Field) -> bool:
        return f.coordinate in self._used
