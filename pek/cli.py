"""The ``pek`` command: one subcommand per role, plus tools for the schema and query plans.

    pek dev                     all-in-one: hub + realm + router in one process, demo data, GraphiQL
    pek hub / pek realm         one subgraph over HTTP
    pek router                  the router in front of subgraphs over HTTP
    pek compose                 write the supergraph composed from the subgraphs (ours, running
                                ones, or --subgraph NAME=FILE_OR_URL)
    pek plan                    print the query plan of an operation
    pek schema export|check     keep the SDL files in schema/ current
    pek realms list|add|...     the realm registry (the one source of truth of realms)

Every setting is also an environment variable ``PEK_<NAME>`` (see ``pek.settings``); a flag
given here wins over the environment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pek.settings import DEFAULT_SECRET_KEY, Settings

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
DEFAULT_PORTS = {"dev": 8000, "router": 8000, "hub": 8001, "realm": 8002}


def _server_flags(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument("--host", help="address to bind (PEK_HOST, default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help=f"port to listen on (PEK_PORT, default {DEFAULT_PORTS[role]})"
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: dev sign-in, query plans on request (PEK_DEV)",
    )
    parser.add_argument("--log-level", help="debug, info, warning, error (PEK_LOG_LEVEL)")


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL: sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB "
        "(PEK_HUB_DATABASE_URL / PEK_REALM_DATABASE_URL)",
    )


def _subgraph_url_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub-url", help="hub subgraph GraphQL URL (PEK_HUB_URL)")
    parser.add_argument("--realm-url", help="realm subgraph GraphQL URL (PEK_REALM_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pek",
        description="pek-federation: one GraphQL endpoint over a hub subgraph and realm subgraphs.",
        epilog="Every setting is also an environment variable PEK_<NAME>; flags win.",
    )
    roles = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dev = roles.add_parser(
        "dev",
        help="all-in-one: hub, realm and router in one process (SQLite, demo data, GraphiQL)",
        description="Run hub, realm and router in one process with in-process calls, a SQLite "
        "file, demo data created on first start, GraphiQL at /graphql and the dev sign-in.",
    )
    _server_flags(dev, "dev")
    _database_flag(dev)
    dev.add_argument("--no-demo-data", action="store_true", help="do not create demo data")

    hub = roles.add_parser(
        "hub",
        help="the hub subgraph over HTTP (identity, profiles, realm registry)",
        description="Serve the hub subgraph: POST /graphql (Apollo Federation v2), GET /health.",
    )
    _server_flags(hub, "hub")
    _database_flag(hub)
    hub.add_argument("--demo-data", action="store_true", default=None, help="seed demo users")

    realm = roles.add_parser(
        "realm",
        help="the realm subgraph over HTTP (groups, memberships, evaluations of one realm)",
        description="Serve the realm subgraph for one realm: POST /graphql, GET /health.",
    )
    _server_flags(realm, "realm")
    _database_flag(realm)
    realm.add_argument("--realm-id", help="id of the realm served (PEK_REALM_ID)")
    realm.add_argument("--realm-name", help="display name of the realm (PEK_REALM_NAME)")
    realm.add_argument("--demo-data", action="store_true", default=None, help="seed demo groups")

    router = roles.add_parser(
        "router",
        help="the router (the public GraphQL endpoint) in front of subgraphs over HTTP",
        description="Serve the public GraphQL endpoint: POST/GET /graphql, GraphiQL, /health. "
        "The supergraph comes from --supergraph, or is composed at start-up from the "
        "subgraphs' _service { sdl } at --hub-url and --realm-url.",
    )
    _server_flags(router, "router")
    router.add_argument("--supergraph", help="supergraph SDL file (PEK_SUPERGRAPH)")
    _subgraph_url_flags(router)

    comp = roles.add_parser(
        "compose",
        help="compose the supergraph from the subgraphs and write it",
        description="Compose the supergraph SDL. By default from this code's own subgraphs; "
        "with --from-services, from the running subgraphs' _service { sdl }; with --subgraph "
        "(repeatable), from SDL files or URLs. Composition errors are printed one per line "
        "(exit code 2).",
    )
    comp.add_argument("-o", "--output", help="file to write (default: standard output)")
    comp.add_argument("--from-services", action="store_true", help="ask running subgraphs")
    comp.add_argument(
        "--subgraph",
        action="append",
        default=[],
        metavar="NAME=PATH_OR_URL",
        help="a subgraph to compose: a .graphql SDL file, or an http(s) URL asked for "
        "{ _service { sdl } } (repeatable; replaces this code's own subgraphs)",
    )
    comp.add_argument(
        "--routing-url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="the URL the router reaches a subgraph given as a file at (default: the URL it "
        "came from; for hub and realm files --hub-url/--realm-url or the local defaults)",
    )
    _subgraph_url_flags(comp)

    plan = roles.add_parser(
        "plan",
        help="print the query plan of an operation against a supergraph",
        description="Print the query plan of an operation (a file, or - for standard input).",
    )
    plan.add_argument("operation", help="file with the GraphQL operation, or -")
    plan.add_argument("--supergraph", help="supergraph SDL file (default: compose our own)")
    plan.add_argument("--operation-name", help="operation to plan when the document has several")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    schema = roles.add_parser(
        "schema",
        help="export or check the SDL files in schema/ (hub, realm, supergraph)",
        description="export: write schema/hub.graphql, schema/realm.graphql and "
        "schema/supergraph.graphql from the code. check: exit 1 if any is out of date.",
    )
    schema.add_argument("action", choices=["export", "check"])

    keys = roles.add_parser(
        "keys",
        help="manage the hub's token signing keys",
        description="rotate: create a new signing key; it is published in the JWKS at once and "
        "signs tokens after one JWKS-cache period, the old key stays published until every token "
        "it signed has expired (PEK_KEY_DIR).",
    )
    keys.add_argument("action", choices=["rotate"])

    from pek.hub.registry_cli import add_realms_parser

    add_realms_parser(roles)
    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    command = args.command
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "dev", "log_level", "supergraph", "hub_url", "realm_url",
                 "realm_id", "realm_name", "demo_data"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if command == "dev":
        overrides["dev"] = True
        overrides["demo_data"] = not args.no_demo_data
    settings = Settings.from_env()
    # Each role has its own default port unless PEK_PORT or --port says otherwise.
    if "port" not in overrides and command in DEFAULT_PORTS and settings.port == Settings.port:
        overrides["port"] = DEFAULT_PORTS[command]
    database_url = getattr(args, "database_url", None)
    if database_url:
        if command in ("hub", "dev"):
            overrides["hub_database_url"] = database_url
        if command in ("realm", "dev"):
            overrides["realm_database_url"] = database_url
    return settings.replace(**overrides)


def _tune_gc(threshold: int) -> None:
    """Fewer cyclic-GC passes for a server that builds and drops large JSON trees per request.

    Those trees are freed by reference counting; with CPython's default threshold (700) the
    collector still runs every few hundred allocations and walks the young objects each time,
    which cost the router about a quarter of its CPU under load. Objects alive at start-up
    (schema, supergraph, caches) are frozen out of the collector's view for good.
    """
    import gc

    gc.collect()
    gc.freeze()
    if threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(threshold, max(gen1, 50), max(gen2, 100))


def _serve(app: Any, settings: Settings) -> None:
    import importlib.util

    import uvicorn

    _tune_gc(settings.gc_threshold)

    # uvloop and httptools (C event loop and HTTP parser) when installed; the pure-Python
    # fallbacks still work where they are not.
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    has_httptools = importlib.util.find_spec("httptools") is not None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=10,
        loop="uvloop" if has_uvloop else "asyncio",
        http="httptools" if has_httptools else "h11",
        access_log=settings.access_log,
        # Many clients keep connections open between requests (the benchmark's 50 do).
        backlog=2048,
    )


def schema_files(settings: Settings) -> dict[Path, str]:
    """The SDL files of schema/ as the current code produces them."""
    from pek import roles

    hub_sdl = roles.hub_subgraph(settings).sdl()
    realm_sdl = roles.realm_subgraph(settings).sdl()
    return {
        SCHEMA_DIR / "hub.graphql": hub_sdl.rstrip() + "\n",
        SCHEMA_DIR / "realm.graphql": realm_sdl.rstrip() + "\n",
        SCHEMA_DIR / "supergraph.graphql": roles.local_supergraph(settings).rstrip() + "\n",
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_for(args)
    except ValueError as exc:
        print(f"pek: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level.lower() != "debug":
        # Alembic announces every plugin and step at INFO: only its warnings matter to operators.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return _run(args, settings)
    except _expected_errors() as exc:
        # a bad input file or setting: one line that says why, not a traceback
        print(f"pek: {_describe(exc)}", file=sys.stderr)
        return 2


def _expected_errors() -> tuple[type[BaseException], ...]:
    from pek.router.composition import CompositionError
    from pek.router.limits import ConfigurationError
    from pek.router.realms.routing import RoutingDeclarationError
    from pek.router.supergraph import SupergraphError

    return (SupergraphError, CompositionError, RoutingDeclarationError, ConfigurationError, OSError)


def _describe(exc: BaseException) -> str:
    """One line for an expected start-up error."""
    if isinstance(exc, OSError):
        # FileNotFoundError's str() repeats the errno; say what and where instead
        what = exc.strerror or str(exc) or type(exc).__name__
        return f"{exc.filename}: {what}" if exc.filename else what
    from pek.router.composition import CompositionError
    from pek.router.supergraph import SupergraphError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, SupergraphError):
        return f"invalid supergraph: {text}"
    if isinstance(exc, CompositionError):
        return f"composition failed: {text}"
    return text


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from pek import roles

    command = args.command
    if command in ("dev", "hub"):
        # The hub signs users in: a providers file it cannot use stops it here, with one
        # line that says why, not a server traceback.
        from pek.hub.auth.oidc import ProvidersFileError, providers_from_settings

        try:
            providers = providers_from_settings(settings)
        except ProvidersFileError as exc:
            print(f"pek: {exc}", file=sys.stderr)
            return 2
        if providers and not settings.dev and settings.secret_key == DEFAULT_SECRET_KEY:
            print("pek: PEK_SECRET_KEY is the public development default; set a long random "
                  "secret (openssl rand -hex 32) before signing users in", file=sys.stderr)
            return 2
    if command == "dev":
        _serve(roles.build_dev_app(settings), settings)
    elif command in ("hub", "realm"):
        _serve(roles.build_subgraph_app(command, settings), settings)
    elif command == "router":
        _serve(roles.build_router_app(settings), settings)
    elif command == "compose":
        import asyncio

        from pek.router.composition import CompositionError

        try:
            if args.subgraph:
                if args.from_services:
                    raise ComposeInputError("give either --subgraph or --from-services, not both")
                sdl = compose_sources(args.subgraph, args.routing_url, settings)
            elif args.routing_url:
                raise ComposeInputError("--routing-url only applies to --subgraph sources")
            elif args.from_services:
                sdl = asyncio.run(roles.compose_from_services(settings))
            else:
                sdl = roles.local_supergraph(settings)
        except ComposeInputError as exc:
            print(f"pek compose: {exc}", file=sys.stderr)
            return 2
        except CompositionError as exc:
            for error in exc.errors:  # one line per problem
                print(f"pek compose: {' '.join(error.split())}", file=sys.stderr)
            return 2
        if args.output:
            Path(args.output).write_text(sdl.rstrip() + "\n", encoding="utf-8")
        else:
            sys.stdout.write(sdl.rstrip() + "\n")
    elif command == "plan":
        return _plan(args, settings)
    elif command == "keys":
        from pek.schema.tokens import rotate_keys

        key = rotate_keys(settings)
        print(f"new signing key {key.kid}, signing from {key.use_from}")
    elif command == "realms":
        from pek.hub.registry_cli import run_realms_command

        return run_realms_command(args, settings)
    elif command == "schema":
        # The checked-in files do not depend on the environment: default settings.
        return _schema(args.action, Settings())
    return 0


class ComposeInputError(Exception):
    """A ``pek compose`` source that cannot be read; the message says which and why."""


def _pairs(values: Sequence[str], flag: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise ComposeInputError(f"{flag} {value!r}: expected NAME={what}")
        if name in pairs:
            raise ComposeInputError(f"{flag}: subgraph {name!r} is given twice")
        pairs[name] = target
    return pairs


def _fetch_service_sdl(name: str, url: str) -> str:
    import httpx

    try:
        response = httpx.post(url, json={"query": "{ _service { sdl } }"}, timeout=10.0)
    except httpx.HTTPError as exc:
        raise ComposeInputError(
            f"subgraph {name!r}: {url} did not answer ({type(exc).__name__}: {exc})"
        ) from None
    try:
        sdl = response.json()["data"]["_service"]["sdl"]
    except (ValueError, KeyError, TypeError):
        sdl = None
    if not isinstance(sdl, str):
        raise ComposeInputError(
            f"subgraph {name!r}: {url} gave no SDL for {{ _service {{ sdl }} }} "
            f"(HTTP {response.status_code}); is it a federation subgraph's GraphQL endpoint?"
        )
    return sdl


def compose_sources(
    subgraphs: Sequence[str], routing_urls: Sequence[str], settings: Settings
) -> str:
    """``pek compose --subgraph NAME=PATH_OR_URL ...``: the supergraph of those subgraphs.

    Raises :class:`ComposeInputError` for a source that cannot be read and
    :class:`~pek.router.composition.CompositionError` when the SDLs do not compose."""
    from pek.roles import DEFAULT_URLS, HUB, REALM
    from pek.router.composition import SubgraphDefinition, compose

    sources = _pairs(subgraphs, "--subgraph", "PATH_OR_URL")
    routing = _pairs(routing_urls, "--routing-url", "URL")
    unknown = sorted(set(routing) - set(sources))
    if unknown:
        raise ComposeInputError(
            f"--routing-url names {', '.join(map(repr, unknown))}, which no --subgraph gives"
        )
    configured = {HUB: settings.hub_url, REALM: settings.realm_url}
    definitions = []
    for name, source in sources.items():
        if source.startswith(("http://", "https://")):
            sdl = _fetch_service_sdl(name, source)
            url = routing.get(name, source)
        else:
            try:
                sdl = Path(source).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ComposeInputError(f"subgraph {name!r}: no such file: {source}") from None
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ComposeInputError(
                    f"subgraph {name!r}: cannot read {source} ({reason})"
                ) from None
            url = routing.get(name) or configured.get(name) or DEFAULT_URLS.get(name, "")
            if not url:
                raise ComposeInputError(
                    f"subgraph {name!r} comes from a file: give the URL the router reaches it "
                    f"at with --routing-url {name}=URL"
                )
        definitions.append(SubgraphDefinition(name, url, sdl))
    return compose(definitions)


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from pek import roles
    from pek.router.gateway import Gateway
    from pek.router.plan_format import format_plan
    from pek.router.transport import InProcessTransport

    text = sys.stdin.read() if args.operation == "-" else Path(args.operation).read_text("utf-8")
    if args.supergraph:
        supergraph = Path(args.supergraph).read_text("utf-8")
    else:
        supergraph = roles.local_supergraph(settings)
    gateway = Gateway(supergraph, InProcessTransport({}))
    try:
        plan = gateway.plan(text, args.operation_name)
    except Exception as exc:  # a request error: print it as the client would see it
        print(f"pek plan: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(format_plan(plan))
    return 0


def _schema(action: str, settings: Settings) -> int:
    files = schema_files(settings)
    stale = [p for p, text in files.items() if not p.exists() or p.read_text("utf-8") != text]
    if action == "export":
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
        print("wrote " + ", ".join(str(p.name) for p in files))
        return 0
    if stale:
        names = ", ".join(p.name for p in stale)
        print(f"schema/ is out of date ({names}): run `pek schema export`", file=sys.stderr)
        return 1
    print("schema/ is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
