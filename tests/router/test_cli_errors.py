"""`pek` refuses input files and settings it cannot use with one line and exit code 2.

Each case runs the real `pek` command in a subprocess: what an operator sees is stderr and the
exit code, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import free_port

PEK = str(Path(sys.executable).parent / "pek")
SUPERGRAPH = Path(__file__).parents[2] / "schema" / "supergraph.graphql"


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PEK_KEY_DIR": str(tmp_path / "keys"), "PEK_LOG_LEVEL": "warning",
                **env}
    full_env.pop("PEK_SUPERGRAPH", None)
    # a case that did not fail would start a server: the timeout turns that into a failure
    return subprocess.run(
        [PEK, *args], env=full_env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _router(path: Path | str) -> list[str]:
    return ["router", "--supergraph", str(path), "--port", str(free_port())]


def test_router_with_a_file_that_is_not_a_supergraph(tmp_path: Path) -> None:
    bad = tmp_path / "bad.graphql"
    bad.write_text("type Query { x: Int }\n")
    line = _one_line(_run(_router(bad), tmp_path))
    assert line == "pek: invalid supergraph: not a supergraph: no @link to the join spec"


def test_router_with_a_supergraph_that_does_not_parse(tmp_path: Path) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text("type Query {")
    line = _one_line(_run(_router(broken), tmp_path))
    assert line.startswith("pek: invalid supergraph: supergraph SDL does not parse: Syntax Error")


@pytest.mark.parametrize("command", ["router", "plan"])
def test_a_missing_input_file(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "missing.graphql"
    args = _router(missing) if command == "router" else ["plan", str(missing)]
    line = _one_line(_run(args, tmp_path))
    assert line == f"pek: {missing}: No such file or directory"


def test_plan_with_a_missing_supergraph(tmp_path: Path) -> None:
    operation = tmp_path / "op.graphql"
    operation.write_text("{ me { name } }")
    missing = tmp_path / "nope.graphql"
    line = _one_line(_run(["plan", str(operation), "--supergraph", str(missing)], tmp_path))
    assert line == f"pek: {missing}: No such file or directory"


def test_compose_into_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "supergraph.graphql"
    line = _one_line(_run(["compose", "-o", str(target)], tmp_path))
    assert line == f"pek: {target}: No such file or directory"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PEK_MAX_DEPTH", "-1", "pek: PEK_MAX_DEPTH=-1: use a whole number, 0 for no limit"),
        ("PEK_MAX_TOKENS", "many", "pek: PEK_MAX_TOKENS='many' is not an integer"),
        ("PEK_FIELD_SUGGESTIONS", "maybe",
         "pek: PEK_FIELD_SUGGESTIONS='maybe': use auto, true or false"),
    ],
)
def test_router_with_a_limit_setting_it_cannot_use(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    line = _one_line(_run(_router(SUPERGRAPH), tmp_path, **{variable: value}))
    assert line == message
