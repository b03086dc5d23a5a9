"""``pek realms list|add|remove|update``: change the realm registry in the hub's database.

Talks to the hub database directly (``PEK_HUB_DATABASE_URL`` / ``--database-url``), running
the hub's migrations first; routers see a change at their next poll of
``GET /internal/realms`` (its ``version`` changes). The lead wires it into ``pek.cli``::

    from pek.hub.registry_cli import add_realms_parser, run_realms_command
    add_realms_parser(roles)                      # in build_parser()
    if args.command == "realms": return run_realms_command(args, settings)   # in main()
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from pek.hub.registry import RealmRecord, RegistryError, UnknownRealm
from pek.hub.service import HubSubgraph
from pek.settings import Settings


def add_realms_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``realms`` command to ``pek``'s subcommands (``add_subparsers()`` result)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "realms",
        help="list or change the realm registry (in the hub's database)",
        description="List or change the realm registry, the one source of truth of the "
        "realms routers route to. Works on the hub database directly.",
    )
    parser.add_argument("--database-url", help="the hub's database (PEK_HUB_DATABASE_URL)")
    actions = parser.add_subparsers(dest="realms_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the registry")
    listing.add_argument("--json", action="store_true", help="as JSON, with the version")

    add = actions.add_parser("add", help="add a realm (or replace its name, description, url)")
    add.add_argument("realm_id", help="realm id: lower-case letters, digits, dashes")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--description")
    add.add_argument("--url", help="GraphQL endpoint: http(s)://.../realms/<id>/graphql or "
                     "in-process://<id>")
    _common_flags(add)

    update = actions.add_parser("update", help="change some attributes of a realm")
    update.add_argument("realm_id")
    update.add_argument("--name")
    update.add_argument("--description")
    update.add_argument("--url")
    _common_flags(update)

    remove = actions.add_parser("remove", help="remove a realm")
    remove.add_argument("realm_id")
    return parser


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout-ms", type=int, help="how long routers wait for the realm")
    parser.add_argument("--position", type=int, help="display order")
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_true", default=None)
    state.add_argument("--disable", dest="enabled", action="store_false")


def run_realms_command(
    args: argparse.Namespace, settings: Settings, out: TextIO | None = None
) -> int:
    """Run ``pek realms ...``; returns the exit status (1 with a message on bad input)."""
    if getattr(args, "database_url", None):
        settings = settings.replace(hub_database_url=args.database_url)
    settings = settings.replace(demo_data=False)
    try:
        return asyncio.run(_run(args, settings, out or sys.stdout))
    except (RegistryError, UnknownRealm) as exc:
        print(f"pek realms: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    hub = HubSubgraph(settings)
    await hub.start()
    try:
        action = args.realms_action
        if action == "list":
            if args.json:
                print(json.dumps(await hub.registry_snapshot(), indent=2), file=out)
            else:
                _print_table(await hub.list_realms(), out)
            return 0
        if action == "add":
            record = await hub.register_realm(
                args.realm_id, args.name, args.description, args.url,
                timeout_ms=args.timeout_ms, enabled=args.enabled, position=args.position,
            )
            print(f"added {record.id}", file=out)
            return 0
        if action == "update":
            changes: dict[str, Any] = {
                key: getattr(args, key)
                for key in ("name", "description", "url", "timeout_ms", "enabled", "position")
                if getattr(args, key) is not None
            }
            record = await hub.update_realm(args.realm_id, **changes)
            print(f"updated {record.id}", file=out)
            return 0
        if action == "remove":
            if not await hub.remove_realm(args.realm_id):
                raise UnknownRealm(args.realm_id)
            print(f"removed {args.realm_id}", file=out)
            return 0
        raise AssertionError(f"unknown action {action}")
    finally:
        await hub.aclose()


def _print_table(records: list[RealmRecord], out: TextIO) -> None:
    header = ("ID", "NAME", "ENABLED", "POSITION", "TIMEOUT_MS", "URL")
    rows = [
        (r.id, r.name, "yes" if r.enabled else "no", str(r.position), str(r.timeout_ms),
         r.url or "-")
        for r in records
    ]
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip(), file=out)
