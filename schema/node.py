"""The Relay ``Node`` interface, defined identically by the hub and the realm subgraph.

Every type with a global ID implements it; ``Query.node(id:)`` of each subgraph resolves the
IDs that subgraph owns (the router sends a realm-qualified ID to its realm, any other to the
hub).
"""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID
