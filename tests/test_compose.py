"""compose.yaml is checked without a Docker engine: the Compose schema, the real Compose parser,
and that every command and variable it uses exists in this code."""

from __future__ import annotations

import json
import re
import shlex
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


def pek_commands(service: dict[str, Any]) -> list[list[str]]:
    """The ``pek`` commands a service runs: its command, or each ``pek ...`` of a
    ``sh -c "a && b"`` script."""
    command = service.get("command") or []
    if command[:1] == ["pek"]:
        return [list(command)]
    if command[:2] == ["sh", "-c"] and len(command) == 3:
        steps = [shlex.split(step) for step in command[2].split("&&")]
        assert all(step[:1] == ["pek"] for step in steps), f"not only pek commands: {command}"
        return steps
    return []


def test_topology_has_every_role(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    roles = {s["command"][1] for s in services.values() if (s.get("command") or [""])[0] == "pek"}
    assert roles == {"hub", "realm", "router"}
    assert {"postgres", "redis"} <= set(services)
    # One image for every pek service, the one-shot registry job included.
    images = {s.get("image") for s in services.values() if pek_commands(s)}
    assert len(images) == 1


def test_every_pek_command_parses(compose_config: dict[str, Any]) -> None:
    parser = build_parser()
    for name, service in compose_config["services"].items():
        for command in pek_commands(service):
            try:
                parser.parse_args(command[1:])
            except SystemExit:  # argparse reports an unknown flag or role this way
                pytest.fail(f"service {name}: `{' '.join(command)}` is not a valid pek command")


def _realm_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if (s.get("command") or [])[:2] == ["pek", "realm"]}


def test_realms_have_their_own_databases_and_the_init_script_creates_them(
    compose_config: dict[str, Any],
) -> None:
    realms = _realm_services(compose_config["services"])
    assert len(realms) >= 2, "two worker realms"
    databases = {s["environment"]["PEK_REALM_DATABASE_URL"].rsplit("/", 1)[1]
                 for s in realms.values()}
    assert len(databases) == len(realms), "each realm process has its own database"
    created = set(re.findall(r"CREATE DATABASE (\w+);",
                             (ROOT / "deploy" / "postgres-init.sql").read_text()))
    hub_db = compose_config["services"]["hub"]["environment"]["PEK_HUB_DATABASE_URL"]
    assert databases | {hub_db.rsplit("/", 1)[1]} <= created


def test_hub_and_realms_share_the_index_secret(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    secrets = {services["hub"]["environment"].get("PEK_INDEX_SECRET")}
    for service in _realm_services(services).values():
        secrets.add(service["environment"].get("PEK_INDEX_SECRET"))
        hub_url = re.match(r"https?://([^:/]+)", service["environment"]["PEK_HUB_URL"])
        assert hub_url and hub_url.group(1) == "hub"
    assert len(secrets) == 1 and None not in secrets and "" not in secrets
    text = (ROOT / "compose.yaml").read_text()
    assert "${PEK_INDEX_SECRET:-" in text, "the secret comes from the environment"


def test_the_registry_job_registers_every_realm_service(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    job = services["realms-init"]
    assert job["depends_on"]["hub"]["condition"] == "service_healthy"
    assert job.get("restart") == "no"
    assert services["router"]["depends_on"]["realms-init"]["condition"] == (
        "service_completed_successfully")
    assert "PEK_HUB_DATABASE_URL" in job["environment"]
    parser = build_parser()
    registered: dict[str, str] = {}
    for command in pek_commands(job):
        args = parser.parse_args(command[1:])
        if args.command == "realms" and args.realms_action == "add":
            registered[args.realm_id] = args.url
    expected = {}
    for name, service in _realm_services(services).items():
        env = service["environment"]
        port = service["command"][service["command"].index("--port") + 1]
        for realm in (env.get("PEK_REALM_IDS") or env["PEK_REALM_ID"]).split(","):
            expected[realm] = f"http://{name}:{port}/realms/{realm}/graphql"
    assert registered == expected
    # the hub's demo knows the same realms (so it registers no realm without a URL)
    assert set(services["hub"]["environment"]["PEK_REALM_IDS"].split(",")) == set(expected)


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
    assert router_env["PEK_REDIS_URL"].startswith("redis://redis:")


def test_dockerfile_copies_only_what_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            for source in parts[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    for mount in re.findall(r"\./([\w/.-]+):", (ROOT / "compose.yaml").read_text()):
        assert (ROOT / mount).exists(), f"compose.yaml mounts missing {mount}"
