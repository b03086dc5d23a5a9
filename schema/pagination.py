"""Relay cursor connections shared by both subgraphs.

``PageInfo`` is defined identically by the hub and every realm, so it is ``@shareable``.
Cursors are opaque to clients; inside they are an offset into a stable ordering, which the
router may wrap when it merges one connection per realm.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import strawberry

from pek.schema.context import ClientError

#: Largest ``first`` a client may ask for.
MAX_PAGE_SIZE = 100
_CURSOR_PREFIX = "offset:"

NodeT = TypeVar("NodeT")


@strawberry.federation.type(shareable=True, description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="An edge of a Relay connection.")
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A Relay cursor connection.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count_total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items in the whole list, over all pages.")
    async def total_count(self) -> int:
        return await self.count_total()


@dataclass(frozen=True, slots=True)
class PageWindow:
    """The slice of an ordered list one page covers."""

    offset: int
    limit: int


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    """Offset of the item a cursor names; a cursor this server did not issue is bad input."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise ClientError("Invalid cursor") from None
    if not raw.startswith(_CURSOR_PREFIX) or not raw[len(_CURSOR_PREFIX):].isdigit():
        raise ClientError("Invalid cursor")
    offset = int(raw[len(_CURSOR_PREFIX):])
    if encode_cursor(offset) != cursor:
        raise ClientError("Invalid cursor")
    return offset


def page_window(first: int | None, after: str | None) -> PageWindow:
    """Check ``first``/``after`` and return the window to fetch."""
    if first is None:
        first = 20
    if first < 0:
        raise ClientError("`first` must not be negative")
    if first > MAX_PAGE_SIZE:
        raise ClientError(f"`first` must be at most {MAX_PAGE_SIZE}", maxPageSize=MAX_PAGE_SIZE)
    start = 0 if after is None else decode_cursor(after) + 1
    return PageWindow(offset=start, limit=first)


def build_connection(
    items: Sequence[NodeT],
    window: PageWindow,
    count_total: Callable[[], Awaitable[int]],
) -> Connection[NodeT]:
    """Make a connection from ``items``, fetched with ``limit + 1`` rows to detect a next page."""
    has_next = len(items) > window.limit
    page = list(items[: window.limit])
    edges = [Edge(cursor=encode_cursor(window.offset + i), node=n) for i, n in enumerate(page)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=window.offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count_total=count_total,
    )
