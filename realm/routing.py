"""Realm routing, declared in the realm subgraph's own schema (composed directives).

The router reads these from the supergraph (``@composeDirective`` keeps them there); it never
hard-codes a field. Both live in the spec ``https://pek.sch.bme.hu/realmRouting/v0.1``:

``@realmOwner(argument: "id", hubIds: false)``
    The field goes to the ONE realm that owns its argument ``argument``: a realm-qualified
    global ID, or, for an argument named ``realm``, a realm id. An ID that names no realm (a
    hub-owned object such as a ``User``) is refused without asking any realm, unless
    ``hubIds: true``: then any one realm answers it (``node(id:)`` returns the hub entity's
    reference, which the router completes from the hub).
``@realmFanout(orderBy: ["name"])``
    The field goes to every realm the viewer may see; the lists (for a connection: the
    edges' ``node``) are merged ascending by the given fields of the items, ties broken by
    realm id. Every realm already returns its list in that order (code-point order for
    strings, see :class:`pek.schema.database.codepoint_order`).
"""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location

ROUTING_SPEC = "https://pek.sch.bme.hu/realmRouting/v0.1"


@strawberry.federation.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="realmOwner",
    compose=True,
    import_url=ROUTING_SPEC,
    description="Route the field to the one realm that owns the value of `argument`.",
)
class RealmOwner:
    argument: str
    hub_ids: bool = False


@strawberry.federation.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="realmFanout",
    compose=True,
    import_url=ROUTING_SPEC,
    description="Ask every realm and merge the lists ascending by `orderBy` (then realm id).",
)
class RealmFanout:
    order_by: list[str]


def owner(argument: str, *, hub_ids: bool = False) -> RealmOwner:
    return RealmOwner(argument=argument, hub_ids=hub_ids)


def fanout(*order_by: str) -> RealmFanout:
    return RealmFanout(order_by=list(order_by))
