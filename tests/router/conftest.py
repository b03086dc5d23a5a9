"""Fixtures: the test subgraphs in-process behind InProcessTransport, and a Gateway over them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from subgraphs import SCHEMAS, RecordingSubgraph, supergraph_sdl

from pek.router.gateway import Gateway
from pek.router.transport import InProcessTransport


@pytest.fixture(scope="session")
def supergraph() -> str:
    return supergraph_sdl()


@pytest.fixture
def subgraphs() -> dict[str, RecordingSubgraph]:
    return {name: RecordingSubgraph(schema) for name, schema in SCHEMAS.items()}


@pytest.fixture
def gateway(supergraph: str, subgraphs: dict[str, RecordingSubgraph]) -> Gateway:
    return Gateway(supergraph, InProcessTransport(subgraphs))
