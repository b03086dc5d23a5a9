"""Readable text form of a query plan, in the style of Apollo's ``QueryPlan { ... }``."""

from __future__ import annotations

from graphql import GraphQLError, parse, print_ast

from pek.router.planner import (
    BatchFetchNode,
    FetchNode,
    FlattenNode,
    ParallelNode,
    PField,
    PlanNode,
    PSelection,
    QueryPlan,
    SequenceNode,
    batch_alias,
)

_INDENT = "  "


def format_plan(plan: QueryPlan) -> str:
    """``QueryPlan { Sequence { Fetch(service: "a") { ... } Flatten(path: "x.@") { ... } } }``."""
    if plan.node is None:
        return "QueryPlan {}"
    lines = ["QueryPlan {"]
    _node(plan.node, 1, lines)
    lines.append("}")
    return "\n".join(lines)


def _node(node: PlanNode, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    if isinstance(node, (SequenceNode, ParallelNode)):
        lines.append(f"{pad}{'Sequence' if isinstance(node, SequenceNode) else 'Parallel'} {{")
        for child in node.nodes:
            _node(child, depth + 1, lines)
        lines.append(f"{pad}}},")
    elif isinstance(node, FlattenNode):
        lines.append(f'{pad}Flatten(path: "{".".join(node.path)}") {{')
        _node(node.node, depth + 1, lines)
        lines.append(f"{pad}}},")
    elif isinstance(node, BatchFetchNode):
        _batch(node, depth, lines)
    else:
        _fetch(node, depth, lines)


def _fetch(node: FetchNode, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    lines.append(f'{pad}Fetch(service: "{node.subgraph}") {{')
    _requires(node, depth + 1, lines)
    _operation(node.operation, depth + 1, lines)
    lines.append(f"{pad}}},")


def _batch(node: BatchFetchNode, depth: int, lines: list[str]) -> None:
    """``BatchFetch(service: "a") { Flatten(path: "x") { {requires} => _e0 } ... <operation> }``."""
    pad = _INDENT * depth
    lines.append(f'{pad}BatchFetch(service: "{node.subgraph}") {{')
    for alias, part in zip(node.aliases, node.parts, strict=True):
        lines.append(f'{pad}{_INDENT}Flatten(path: "{".".join(part.path)}") {{')
        _requires(part.node, depth + 2, lines)
        lines.append(f"{pad}{_INDENT * 2}{batch_alias(alias)}")
        lines.append(f"{pad}{_INDENT}}},")
    _operation(node.operation, depth + 1, lines)
    lines.append(f"{pad}}},")


def _requires(node: FetchNode, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    if not node.requires:
        return
    lines.append(f"{pad}{{")
    for fragment in node.requires:
        lines.append(f"{pad}{_INDENT}... on {fragment.type_condition} {{")
        _selections(fragment.selections, depth + 2, lines)
        lines.append(f"{pad}{_INDENT}}}")
    lines.append(f"{pad}}} =>")


def _operation(operation: str, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    try:
        text = print_ast(parse(operation, no_location=True))
    except GraphQLError:
        text = operation
    for line in text.splitlines():
        lines.append(f"{pad}{line}")


def _selections(selections: list[PSelection], depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    for sel in selections:
        if isinstance(sel, PField):
            if sel.selections is None:
                lines.append(f"{pad}{sel.name}")
            else:
                lines.append(f"{pad}{sel.name} {{")
                _selections(sel.selections, depth + 1, lines)
                lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}... on {sel.type_condition} {{")
            _selections(sel.selections, depth + 1, lines)
            lines.append(f"{pad}}}")
