"""Settings: environment, flags, and the README's table agree with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from pek.cli import build_parser, settings_for
from pek.settings import Settings, documented_fields

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_in_the_readme() -> None:
    for variable, default in documented_fields():
        assert f"| `{variable}` | `{default}` |" in README, f"README lacks {variable} = {default}"


def test_environment_is_read_and_typed() -> None:
    settings = Settings.from_env(
        {"PEK_PORT": "9001", "PEK_DEV": "yes", "PEK_SUBGRAPH_TIMEOUT": "2.5", "PEK_REALM_ID": "kir"}
    )
    assert (settings.port, settings.dev, settings.subgraph_timeout) == (9001, True, 2.5)
    assert settings.realm_id == "kir"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PEK_PORT", "eighty"), ("PEK_DEV", "maybe"), ("PEK_SUBGRAPH_TIMEOUT", "x")],
)
def test_bad_environment_values_are_clear_errors(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEK_PORT", "9100")
    monkeypatch.setenv("PEK_REALM_ID", "env-realm")
    args = build_parser().parse_args(["realm", "--port", "9200", "--realm-id", "flag-realm"])
    settings = settings_for(args)
    assert (settings.port, settings.realm_id) == (9200, "flag-realm")


def test_roles_have_their_own_default_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEK_PORT", raising=False)
    ports = {
        role: settings_for(build_parser().parse_args([role])).port
        for role in ("dev", "hub", "realm", "router")
    }
    assert ports == {"dev": 8000, "hub": 8001, "realm": 8002, "router": 8000}


def test_dev_turns_on_dev_mode_and_demo_data() -> None:
    settings = settings_for(build_parser().parse_args(["dev"]))
    assert settings.dev and settings.demo_data
    assert not settings_for(build_parser().parse_args(["dev", "--no-demo-data"])).demo_data


def test_database_flag_goes_to_the_role_that_has_one() -> None:
    hub = settings_for(build_parser().parse_args(["hub", "--database-url", "sqlite+aiosqlite:///h"]))
    assert hub.hub_database_url == "sqlite+aiosqlite:///h"
    assert hub.realm_database_url != "sqlite+aiosqlite:///h"


def test_help_explains_every_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for role in ("dev", "hub", "realm", "router", "compose", "plan", "schema"):
        assert role in text
