"""compose.yaml is checked without a Docker engine: the Compose schema, the real Compose parser,
and that every command and variable it uses exists in this code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pek.cli import build_parser
from pek.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: pip install -e '.[test]' installs it")
    return found


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    result = subprocess.run(
        [_tool("docker-compose"), "-f", str(ROOT / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_file_matches_the_compose_schema() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_real_compose_parser_accepts_it() -> None:
    result = subprocess.run(
        [_tool("docker-compose"), "-f", "compose.yaml", "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_topology_has_every_role(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    roles = {s["command"][1] for s in services.values() if (s.get("command") or [""])[0] == "pek"}
    assert roles == {"hub", "realm", "router"}
    assert {"postgres", "redis"} <= set(services)
    # One image for every role.
    images = {s.get("image") for s in services.values() if (s.get("command") or [""])[0] == "pek"}
    assert len(images) == 1


def test_every_pek_command_parses(compose_config: dict[str, Any]) -> None:
    parser = build_parser()
    for name, service in compose_config["services"].items():
        command = service.get("command") or []
        if command[:1] != ["pek"]:
            continue
        try:
            parser.parse_args(command[1:])
        except SystemExit:  # argparse reports an unknown flag or role this way
            pytest.fail(f"service {name}: `{' '.join(command)}` is not a valid pek command")


def test_every_pek_variable_is_a_setting(compose_config: dict[str, Any]) -> None:
    known = {env_name(f) for f in Settings.__dataclass_fields__}
    for name, service in compose_config["services"].items():
        for variable in service.get("environment") or {}:
            if variable.startswith("PEK_"):
                assert variable in known, f"service {name} sets unknown {variable}"


def test_subgraph_urls_point_at_services(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    router_env = services["router"]["environment"]
    for variable in ("PEK_HUB_URL", "PEK_REALM_URL"):
        host = re.match(r"https?://([^:/]+)", router_env[variable])
        assert host and host.group(1) in services, f"{variable} names no service"


def test_dockerfile_copies_only_what_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            for source in parts[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    for mount in re.findall(r"\./([\w/.-]+):", (ROOT / "compose.yaml").read_text()):
        assert (ROOT / mount).exists(), f"compose.yaml mounts missing {mount}"
