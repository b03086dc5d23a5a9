"""The developer commands: `pek plan` prints query plans, `pek compose` writes the supergraph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pek.cli import main
from pek.router.supergraph import Supergraph

QUERY = "{ groups(first: 2) { edges { node { name memberships { user { name } } } } } }"


def test_plan_prints_the_fetches_and_the_hop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operation = tmp_path / "op.graphql"
    operation.write_text(QUERY)
    assert main(["plan", str(operation)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("QueryPlan {")
    assert 'Fetch(service: "realm")' in text and 'Fetch(service: "hub")' in text
    assert 'Flatten(path: "groups.edges.@.node.memberships.@.user")' in text


def test_plan_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    operation = tmp_path / "op.graphql"
    operation.write_text(QUERY)
    assert main(["plan", str(operation), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["kind"] == "QueryPlan"
    assert plan["node"]["kind"] == "Sequence"


def test_plan_of_an_invalid_operation_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operation = tmp_path / "op.graphql"
    operation.write_text("{ nope }")
    assert main(["plan", str(operation)]) == 1
    assert "nope" in capsys.readouterr().err


def test_compose_writes_a_loadable_supergraph(tmp_path: Path) -> None:
    output = tmp_path / "supergraph.graphql"
    assert main(["compose", "-o", str(output)]) == 0
    supergraph = Supergraph(output.read_text())
    assert set(supergraph.subgraph_urls()) == {"hub", "realm"}
    assert supergraph.api_schema.query_type is not None
    assert "groups" in supergraph.api_schema.query_type.fields
