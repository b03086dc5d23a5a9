"""Readable text form of a query plan, in the style of Apollo's ``QueryPlan { ... }``."""

from __future__ import annotations

from graphql import GraphQLError, parse, print_ast

from pek.router.planner import (
    FetchNode,
    FlattenNode,
    ParallelNode,
    PField,
    PlanNode,
    PSelection,
    QueryPlan,
    SequenceNode,
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
    else:
        _fetch(node, depth, lines)


def _fetch(node: FetchNode, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    lines.append(f'{pad}Fetch(service: "{node.subgraph}") {{')
    if node.requires:
        lines.append(f"{pad}{_INDENT}{{")
        for fragment in node.requires:
            lines.append(f"{pad}{_INDENT * 2}... on {fragment.type_condition} {{")
            _selections(fragment.selections, depth + 3, lines)
            lines.append(f"{pad}{_INDENT * 2}}}")
        lines.append(f"{pad}{_INDENT}}} =>")
    try:
        text = print_ast(parse(node.operation, no_location=True))
    except GraphQLError:
        text = node.operation
    for line in text.splitlines():
        lines.append(f"{pad}{_INDENT}{line}")
    lines.append(f"{pad}}},")


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
