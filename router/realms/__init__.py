"""Realm routing: many realm instances behind one ``realm`` subgraph (see ``layer.py``)."""

from pek.router.realms.index import FederationIndex, HttpIndexSource, InProcessIndexSource
from pek.router.realms.instances import RealmInstances
from pek.router.realms.layer import RealmRoutingTransport
from pek.router.realms.registry import (
    HttpRegistrySource,
    InProcessRegistrySource,
    RealmInfo,
    RealmRegistry,
)

__all__ = [
    "FederationIndex",
    "HttpIndexSource",
    "HttpRegistrySource",
    "InProcessIndexSource",
    "InProcessRegistrySource",
    "RealmInfo",
    "RealmInstances",
    "RealmRegistry",
    "RealmRoutingTransport",
]
