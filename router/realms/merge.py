"""Merging the answers of several realm instances into one (pure functions, no I/O).

* Lists of a ``@realmFanout`` field: a k-way merge of each realm's list in the declared order,
  ties by realm id, then ``id``. Each realm's own order is kept as it is (a realm's collation may
  differ from Python's), so every item appears exactly once whatever the values are.
* Relay connections: the same merge over edges, cut at ``first``; the merged cursor is a
  *composite cursor*, ``base64url(JSON {realm id: that realm's own cursor})``, the position of
  every realm after an edge. ``after`` gives each realm its own cursor back.
* Entities of a hub type extended by realms (``User.memberships``): list fields concatenated in
  realm order, other fields from the first realm that has them.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pek.schema.ids import REALM_ID_RE

JSON = dict[str, Any]
#: Longest composite cursor accepted (it names at most every realm once).
MAX_CURSOR_LENGTH = 16_384
_MAX_REALM_CURSOR_LENGTH = 512


class InvalidCursor(ValueError):
    """A client-supplied cursor is not one this router issued."""

    def __init__(self) -> None:
        super().__init__("Invalid cursor")


def encode_cursor(positions: Mapping[str, str]) -> str:
    """The composite cursor of per-realm positions (canonical: keys sorted, compact JSON)."""
    raw = orjson.dumps(dict(positions), option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None) -> dict[str, str]:
    """Per-realm positions of a composite cursor (empty for None); :class:`InvalidCursor` if
    it is not one :func:`encode_cursor` made."""
    if cursor is None:
        return {}
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        positions = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if not isinstance(positions, dict) or not all(
        isinstance(k, str)
        and REALM_ID_RE.match(k)
        and isinstance(v, str)
        and 0 < len(v) <= _MAX_REALM_CURSOR_LENGTH
        for k, v in positions.items()
    ):
        raise InvalidCursor()
    if encode_cursor(positions) != cursor:  # one position, one spelling
        raise InvalidCursor()
    return positions


def _value_key(value: Any) -> tuple[int, Any]:
    """A total order over JSON scalars: null first, then numbers, strings, anything else."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def order_key(values: Sequence[Any], realm: str, item_id: Any) -> tuple[Any, ...]:
    """The merge key of one item: its order values, then its realm id, then its id."""
    return (*(_value_key(v) for v in values), realm, _value_key(item_id))


@dataclass(frozen=True, slots=True)
class Sorted:
    """One realm's answer to a fan-out list: items with their merge keys, in the realm's order."""

    realm: str
    keys: Sequence[tuple[Any, ...]]


def merge_order(sources: Iterable[Sorted], limit: int | None = None) -> list[tuple[str, int]]:
    """(realm, index in that realm's list) of the merged list, at most ``limit`` long.

    A k-way merge: each realm's relative order is kept and every item is taken exactly once."""
    streams = [_stream(source) for source in sources]
    out: list[tuple[str, int]] = []
    if limit is not None and limit <= 0:
        return out
    for _, realm, index in heapq.merge(*streams, key=lambda entry: entry[0]):
        out.append((realm, index))
        if limit is not None and len(out) >= limit:
            break
    return out


def _stream(source: Sorted) -> Iterable[tuple[tuple[Any, ...], str, int]]:
    realm = source.realm
    return ((key, realm, i) for i, key in enumerate(source.keys))


@dataclass(slots=True)
class ConnectionPage:
    """What the merge of one connection field decided."""

    #: (realm, index of the edge in that realm's answer, composite cursor after that edge)
    edges: list[tuple[str, int, str]]
    has_next_page: bool
    has_previous_page: bool


@dataclass(frozen=True, slots=True)
class RealmConnection:
    """One realm's page of a connection: merge keys and own cursors of its edges, in order."""

    realm: str
    keys: Sequence[tuple[Any, ...]]
    cursors: Sequence[str]
    has_next_page: bool


def merge_connection(
    pages: Sequence[RealmConnection], after: Mapping[str, str], first: int | None
) -> ConnectionPage:
    """Merge per-realm pages that each started at that realm's position in ``after``.

    Each realm was asked for ``first`` edges after its own cursor, so the first ``first`` edges
    of the merge are exactly the next ``first`` edges of the merged list."""
    order = merge_order((Sorted(p.realm, p.keys) for p in pages), first)
    by_realm = {p.realm: p for p in pages}
    positions = dict(after)
    consumed = dict.fromkeys(by_realm, 0)
    edges: list[tuple[str, int, str]] = []
    for realm, index in order:
        positions[realm] = by_realm[realm].cursors[index]
        consumed[realm] = index + 1
        edges.append((realm, index, encode_cursor(positions)))
    has_next = any(p.has_next_page or consumed[p.realm] < len(p.keys) for p in pages)
    return ConnectionPage(edges, has_next, bool(after))


def merge_entity(parts: Sequence[JSON | None]) -> JSON | None:
    """One entity from the answers of several realms (in realm order): list fields concatenated,
    every other field from the first realm that answered it non-null."""
    merged: JSON | None = None
    for part in parts:
        if not isinstance(part, dict):
            continue
        if merged is None:
            merged = {k: list(v) if isinstance(v, list) else v for k, v in part.items()}
            continue
        for key, value in part.items():
            current = merged.get(key)
            if isinstance(current, list) and isinstance(value, list):
                current.extend(value)
            elif key not in merged or (current is None and value is not None):
                merged[key] = list(value) if isinstance(value, list) else value
    return merged


def strip_internal(value: Any, prefix: str) -> Any:
    """``value`` without the keys starting with ``prefix`` at its top level (lists walked)."""
    if isinstance(value, list):
        return [strip_internal(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not k.startswith(prefix)}
    return value
