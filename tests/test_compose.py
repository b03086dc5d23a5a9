"""compose.yaml is checked without a Docker engine: the Compose schema, the real Compose parser,
and that every command and variable it uses exists in this code; the Dockerfile and
.dockerignore with it, for what an operator relies on (a non-root image with its writable state
in one place, the hub's signing keys on a volume, sign-in configurable, no secret with a
default, nothing local in the image)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pek.cli import build_parser
from pek.hub.auth.oidc import providers_from_settings, read_providers_file
from pek.schema.tokens import JWKS_PATH, jwks_url_for
from pek.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The public, local-only values the README's `docker compose --env-file deploy/demo.env up`
#: uses; compose.yaml itself has no default for any secret.
DEMO_ENV = ROOT / "deploy" / "demo.env"
#: What compose refuses to start without.
REQUIRED_SECRETS = ("PEK_SECRET_KEY", "PEK_INDEX_SECRET", "PEK_POSTGRES_PASSWORD")


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: pip install -e '.[test]' installs it")
    return found


def _compose_config(
    env_file: Path = DEMO_ENV, **variables: str
) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` as JSON, with only ``env_file`` and ``variables`` set (none of
    the caller's own PEK_* variables, no `.env` a developer may have)."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PEK_", "COMPOSE_", "POSTGRES_"))}
    environment.update(variables)
    return subprocess.run(
        [_tool("docker-compose"), "--env-file", str(env_file), "-f", str(ROOT / "compose.yaml"),
         "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=60,
    )


def _config(env_file: Path = DEMO_ENV, **variables: str) -> dict[str, Any]:
    result = _compose_config(env_file, **variables)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    return _config()


def service_settings(service: dict[str, Any]) -> Settings:
    """The settings a pek process of ``service`` starts with (its environment over the
    image's ENV), read by the code's own Settings."""
    environment = {**dockerfile_env(), **{k: v for k, v in (service.get("environment") or {})
                                          .items() if v is not None}}
    return Settings.from_env(environment)


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
    result = _compose_config()
    assert result.returncode == 0, result.stderr
    quiet = subprocess.run(
        [_tool("docker-compose"), "--env-file", str(DEMO_ENV), "-f", "compose.yaml", "config",
         "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert quiet.returncode == 0, quiet.stderr


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
    assert "${PEK_INDEX_SECRET:?" in text, "the secret comes from the environment, required"


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


# -- the image: who it runs as, where it writes ------------------------------------------------


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stage: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stage = []
        stage.append((instruction.upper(), arguments.strip()))
    return stage


def dockerfile_env() -> dict[str, str]:
    """The ENV of the final image (``ENV A=1 B=2`` form)."""
    environment: dict[str, str] = {}
    for instruction, arguments in dockerfile_final_stage():
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                environment[name] = value
    return environment


def _image_user() -> str:
    users = [arguments for instruction, arguments in dockerfile_final_stage()
             if instruction == "USER"]
    assert users, "the image sets no USER: it would run as root"
    return users[-1].split(":")[0]


def _run_steps() -> list[list[str]]:
    """Every shell command of the final stage's RUN instructions, split into words."""
    steps = []
    for instruction, arguments in dockerfile_final_stage():
        if instruction == "RUN":
            steps += [shlex.split(step) for step in arguments.split("&&")]
    return steps


def _pek_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in config["services"].items() if pek_commands(s)}


def test_every_pek_service_runs_as_the_images_unprivileged_user(
    compose_config: dict[str, Any],
) -> None:
    user = _image_user()
    assert user not in ("root", "0"), "the image runs as root"
    created = [step for step in _run_steps() if step[:1] == ["useradd"]]
    assert created and created[-1][-1] == user, f"the image never creates its user {user}"
    uid = created[-1][created[-1].index("--uid") + 1] if "--uid" in created[-1] else ""
    assert uid.isdigit() and int(uid) >= 1000, "a fixed, unprivileged uid operators can chown to"
    # The USER comes after the last RUN: nothing the server runs as is root.
    instructions = [instruction for instruction, _ in dockerfile_final_stage()]
    assert instructions.index("USER") > max(i for i, name in enumerate(instructions)
                                            if name == "RUN")
    services = _pek_services(compose_config)
    assert len(services) >= 5
    for name, service in services.items():
        assert service.get("build"), f"{name} is not built from the Dockerfile"
        assert str(service.get("user", user)).split(":")[0] not in ("root", "0"), name
        assert not service.get("privileged"), name
    for name, service in compose_config["services"].items():
        # the official postgres and redis images drop root themselves; nobody asks for it back
        assert str(service.get("user", "")).split(":")[0] not in ("root", "0"), name
        assert not service.get("privileged"), name


def _covers(directory: str, path: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def test_the_hubs_key_dir_is_writable_by_the_image_user_and_on_a_named_volume(
    compose_config: dict[str, Any],
) -> None:
    user = _image_user()
    image_key_dir = dockerfile_env().get("PEK_KEY_DIR", "")
    assert image_key_dir.startswith("/app/var/"), (
        "the image's key dir is below its one writable directory, not the root-owned code "
        f"(PEK_KEY_DIR={image_key_dir!r}; the settings default is {Settings().key_dir!r})")
    steps = _run_steps()
    assert any(step[:1] == ["mkdir"] and image_key_dir in step for step in steps), (
        "the image creates the key dir (a new volume takes its owner and mode from it)")
    owned = [step for step in steps if step[:1] == ["chown"]
             and step[-2].split(":")[0] == user and _covers(step[-1], image_key_dir)]
    assert owned, f"the key dir is not owned by {user}"

    hub = compose_config["services"]["hub"]
    key_dir = service_settings(hub).key_dir
    assert key_dir == image_key_dir
    volumes = [v for v in hub.get("volumes") or [] if v.get("target") == key_dir]
    assert volumes, "the hub's signing keys are on no volume: every re-create mints a new key"
    assert volumes[0]["type"] == "volume" and not volumes[0].get("read_only")
    assert volumes[0]["source"] in compose_config["volumes"], "a named volume"


def test_realms_and_the_router_verify_tokens_from_the_hubs_jwks(
    compose_config: dict[str, Any],
) -> None:
    """Only the hub signs: the others need the hub's URL, not its keys."""
    services = compose_config["services"]
    verifiers = {**_realm_services(services), "router": services["router"]}
    for name, service in verifiers.items():
        url = jwks_url_for(service_settings(service))
        assert url == f"http://hub:8001{JWKS_PATH}", f"{name} verifies tokens from {url!r}"
        mounted = {v.get("source") for v in service.get("volumes") or []}
        assert not mounted & set(compose_config["volumes"]), f"{name} mounts a volume it needs not"


# -- configuration an operator gives ------------------------------------------------------------


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _compose_config(empty)
    assert result.returncode != 0, "compose starts with secrets nobody chose"
    for variable in REQUIRED_SECRETS:
        assert f"required variable {variable} is missing a value" in result.stderr, variable
    # with them, and nothing else, it starts
    assert _compose_config(empty, **{v: "s3cret" for v in REQUIRED_SECRETS}).returncode == 0


def test_no_secret_has_a_default_in_compose(compose_config: dict[str, Any]) -> None:
    text = (ROOT / "compose.yaml").read_text()
    for variable, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", text):
        if re.search(r"SECRET|PASSWORD|TOKEN", variable):
            assert default == "", f"${{{variable}}} defaults to {default!r}"
    for variable in REQUIRED_SECRETS:
        assert re.search(r"\$\{" + variable + r":\?", text), f"{variable} is not required"
    # The hub seals sign-in transactions with PEK_SECRET_KEY, the router its dev cookie: neither
    # falls back on the settings' default.
    for name in ("hub", "router"):
        secret = service_settings(compose_config["services"][name]).secret_key
        assert secret and secret != Settings().secret_key, name
    # deploy/demo.env says what it is
    demo = DEMO_ENV.read_text()
    for variable in REQUIRED_SECRETS:
        value = re.search(rf"^{variable}=(.*)$", demo, re.MULTILINE)
        assert value and "local" in value.group(1), f"{variable} in demo.env is not labelled"


def test_identity_provider_variables_pass_through_to_the_hub() -> None:
    given = {
        "PEK_OIDC_CLIENT_ID": "pek-client",
        "PEK_OIDC_CLIENT_SECRET": "client-s3cret",
        "PEK_OIDC_DISCOVERY_URL": "https://sso.example.org/.well-known/openid-configuration",
        "PEK_OIDC_SCOPES": "openid email",
        "PEK_PUBLIC_URL": "https://pek.example.org",
        "PEK_OIDC_PROVIDERS_FILE": "/app/config/oidc/providers.example.json",
    }
    hub = _config(**given)["services"]["hub"]
    for variable, value in given.items():
        assert hub["environment"].get(variable) == value, f"{variable} does not reach the hub"
    settings = service_settings(hub)
    # The providers file named is the one mounted from deploy/oidc/.
    mounts = [v for v in hub.get("volumes") or [] if v["type"] == "bind"
              and _covers(v["target"], settings.oidc_providers_file)]
    assert mounts and mounts[0].get("read_only"), "the providers file is not mounted read-only"
    host_file = Path(mounts[0]["source"]) / Path(settings.oidc_providers_file).relative_to(
        mounts[0]["target"])
    assert host_file.is_file()
    # The code's own parser reads the settings and the example file as the hub would.
    example = read_providers_file(host_file)
    providers = providers_from_settings(settings.replace(oidc_providers_file=str(host_file)))
    assert providers["oidc"].client_id == "pek-client"
    assert providers["oidc"].client_secret == "client-s3cret"
    assert set(providers) == {"oidc", *example}
    # AuthSCH, the default provider, is reached with its base URL
    authsch = _config(PEK_OIDC_CLIENT_ID="c", PEK_AUTHSCH_URL="https://auth.example.org")
    hub = authsch["services"]["hub"]
    assert set(providers_from_settings(service_settings(hub))) == {"authsch"}
    assert service_settings(hub).authsch_url == "https://auth.example.org"


def test_provider_defaults_agree_with_the_settings(compose_config: dict[str, Any]) -> None:
    """Unset, the pass-throughs change nothing: no provider, the code's own defaults."""
    settings = service_settings(compose_config["services"]["hub"])
    defaults = Settings()
    for field in ("oidc_client_id", "oidc_client_secret", "oidc_discovery_url", "authsch_url",
                  "oidc_scopes", "oidc_providers_file", "public_url"):
        assert getattr(settings, field) == getattr(defaults, field), field
        assert env_name(field) in compose_config["services"]["hub"]["environment"], field
    assert providers_from_settings(settings) == {}


def test_demo_data_is_a_switch(tmp_path: Path) -> None:
    only_secrets = tmp_path / "secrets.env"
    only_secrets.write_text("".join(f"{v}=x\n" for v in REQUIRED_SECRETS))
    subgraphs = ("hub", "realm-main", "realm-worker")
    on = _config(only_secrets)["services"]
    assert all(service_settings(on[name]).demo_data for name in subgraphs), "the demo default"
    off = _config(only_secrets, PEK_DEMO_DATA="false")["services"]
    assert not any(service_settings(off[name]).demo_data for name in subgraphs)


def test_dev_mode_is_off_unless_asked_and_then_on_for_hub_and_router(
    compose_config: dict[str, Any],
) -> None:
    services = _pek_services(compose_config)
    assert not any(service_settings(s).dev for s in services.values())
    dev = _config(PEK_DEV="true")["services"]
    # the router's dev sign-in asks the hub for a token: both must be in dev mode
    assert service_settings(dev["router"]).dev and service_settings(dev["hub"]).dev


# -- .dockerignore ------------------------------------------------------------------------------


def _dockerignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regular expression."""
    out = ""
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out (it or a parent directory matches)."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            exception = line.startswith("!")
            rules.append((_dockerignore_pattern(line.lstrip("!")), exception))
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern, exception in rules:
        if any(pattern.match(candidate) for candidate in candidates):
            ignored = not exception
    return ignored


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    local = [
        f"{Settings().key_dir.removeprefix('./')}/abc.json",  # a developer's signing key
        "pek-dev.sqlite3", "var/pek.sqlite3", "tests/x/pek.sqlite3-journal",
        ".venv/bin/python", "router/static/node_modules/graphiql/x.js",
        "tests/auth/node/node_modules/oidc-provider/index.js", ".git/HEAD",
        "hub/__pycache__/service.cpython-311.pyc", "pek_federation.egg-info/PKG-INFO",
        ".env", "deploy/oidc/providers.json", "deploy/demo.env", "pek.log",
        ".mypy_cache/x", ".pytest_cache/x",
    ]
    for path in local:
        assert dockerignored(path), f".dockerignore lets {path} into the image"
    copied = [source for instruction, arguments in dockerfile_final_stage()
              if instruction == "COPY" and "--from" not in arguments
              for source in arguments.split()[:-1]]
    needed = ["pyproject.toml", "pek/__init__.py", "pek/settings.py", "hub/service.py",
              "realm/__init__.py", "router/static/package.json", "schema/tokens.py",
              "README.md", *copied]
    for path in needed:
        if path != ".":
            assert (ROOT / path).exists(), path
            assert not dockerignored(path), f".dockerignore leaves out {path}"
