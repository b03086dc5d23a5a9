"""The schema check: the SDL files in schema/ must equal what the code produces."""

from __future__ import annotations

from pek.cli import schema_files
from pek.settings import Settings


def test_checked_in_sdl_is_current() -> None:
    stale = [
        path.name
        for path, text in schema_files(Settings()).items()
        if not path.exists() or path.read_text("utf-8") != text
    ]
    assert not stale, f"schema/ is out of date ({', '.join(stale)}): run `pek schema export`"


def test_supergraph_names_both_subgraphs() -> None:
    files = {path.name: text for path, text in schema_files(Settings()).items()}
    supergraph = files["supergraph.graphql"]
    assert 'name: "hub"' in supergraph and 'name: "realm"' in supergraph
    assert "https://specs.apollo.dev/join/v0.5" in supergraph
