"""`pek compose --subgraph NAME=PATH_OR_URL`, run as a real subprocess: from the checked-in SDL
files, from a running `pek realm` over HTTP, and every input mistake as one line and exit 2."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .processes import PEK, PekProcess, _env, free_port

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schema"
HUB_SDL = SCHEMA / "hub.graphql"
REALM_SDL = SCHEMA / "realm.graphql"
SUPERGRAPH = SCHEMA / "supergraph.graphql"

BROKEN = """extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type User @key(fields: "nope") { id: ID! }
type Query { me: Userx }
"""


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PEK, "compose", *args], env=_env({"PEK_LOG_LEVEL": "warning"}),
        capture_output=True, text=True, timeout=120, check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> list[str]:
    """Exit code 2, nothing on standard output, one `pek compose:` line per problem."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("pek compose: ") for line in lines), lines
    for text in expected:
        assert any(text in line for line in lines), (text, lines)
    return lines


def test_the_checked_in_sdl_files_compose_to_the_checked_in_supergraph(tmp_path: Path) -> None:
    result = compose("--subgraph", f"hub={HUB_SDL}", "--subgraph", f"realm={REALM_SDL}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == SUPERGRAPH.read_text("utf-8")
    output = tmp_path / "supergraph.graphql"
    written = compose(
        "--subgraph", f"realm={REALM_SDL}", "--subgraph", f"hub={HUB_SDL}", "-o", str(output)
    )
    assert written.returncode == 0, written.stderr
    assert output.read_text("utf-8") == SUPERGRAPH.read_text("utf-8")


def test_routing_urls_of_file_subgraphs(tmp_path: Path) -> None:
    result = compose(
        "--subgraph", f"hub={HUB_SDL}", "--subgraph", f"realm={REALM_SDL}",
        "--routing-url", "realm=https://realm.example.org/graphql",
        "--hub-url", "https://hub.example.org/graphql",
    )
    assert result.returncode == 0, result.stderr
    assert 'HUB @join__graph(name: "hub", url: "https://hub.example.org/graphql")' in result.stdout
    assert (
        'REALM @join__graph(name: "realm", url: "https://realm.example.org/graphql")'
        in result.stdout
    )
    other = tmp_path / "accounts.graphql"
    other.write_text(HUB_SDL.read_text("utf-8"), "utf-8")
    assert_refused(
        compose("--subgraph", f"accounts={other}"), "--routing-url accounts=URL"
    )


def test_composition_errors_are_one_line_each_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text(BROKEN, "utf-8")
    lines = assert_refused(
        compose("--subgraph", f"hub={broken}", "--subgraph", f"realm={REALM_SDL}"),
        '[hub] Unknown type "Userx" for field "Query.me"',
        'Cannot query field "nope" on type "User"',
    )
    assert len(lines) == 2
    syntax = tmp_path / "syntax.graphql"
    syntax.write_text("type Query { me: String\n", "utf-8")
    assert_refused(compose("--subgraph", f"hub={syntax}"), "[hub] invalid SDL: Syntax Error")


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.graphql"
    assert_refused(
        compose("--subgraph", f"hub={missing}", "--subgraph", f"realm={REALM_SDL}"),
        f"subgraph 'hub': no such file: {missing}",
    )


def test_an_unreachable_url_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/graphql"  # nothing listens there
    assert_refused(
        compose("--subgraph", f"hub={HUB_SDL}", "--subgraph", f"realm={url}"),
        f"subgraph 'realm': {url} did not answer",
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--subgraph", "hub"], "--subgraph 'hub': expected NAME=PATH_OR_URL"),
        (["--subgraph", "=x.graphql"], "expected NAME=PATH_OR_URL"),
        (["--subgraph", f"hub={HUB_SDL}", "--subgraph", f"hub={REALM_SDL}"], "given twice"),
        (["--subgraph", f"hub={HUB_SDL}", "--from-services"], "not both"),
        (["--subgraph", f"hub={HUB_SDL}", "--routing-url", "realm=http://x/graphql"],
         "no --subgraph gives"),
        (["--routing-url", "realm=http://x/graphql"], "only applies to --subgraph"),
    ],
)
def test_input_mistakes_are_one_line(args: list[str], expected: str) -> None:
    assert_refused(compose(*args), expected)


@pytest.fixture
def realm_process(tmp_path: Path) -> Iterator[str]:
    """A real `pek realm` (SQLite) on loopback; yields its GraphQL URL."""
    port = free_port()
    process = PekProcess(
        ["realm", "--port", str(port)],
        {
            "PEK_REALM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'realm.sqlite3'}",
            "PEK_KEY_DIR": str(tmp_path / "keys"),
            "PEK_LOG_LEVEL": "warning",
        },
        tmp_path / "realm.log",
    )
    try:
        process.wait_healthy(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        process.stop()


def test_a_running_subgraph_is_asked_for_its_sdl(realm_process: str) -> None:
    result = compose(
        "--subgraph", f"hub={HUB_SDL}", "--subgraph", f"realm={realm_process}",
        "--routing-url", "realm=http://127.0.0.1:8002/graphql",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == SUPERGRAPH.read_text("utf-8")
    # without --routing-url the router is sent where the SDL came from
    direct = compose("--subgraph", f"hub={HUB_SDL}", "--subgraph", f"realm={realm_process}")
    assert f'REALM @join__graph(name: "realm", url: "{realm_process}")' in direct.stdout
    # a URL that answers, but not as a subgraph
    health = realm_process.replace("/graphql", "/health")
    assert_refused(
        compose("--subgraph", f"hub={HUB_SDL}", "--subgraph", f"realm={health}"),
        f"subgraph 'realm': {health} gave no SDL",
    )
