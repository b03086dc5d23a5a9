"""Unit tests: composite cursors, the k-way merge, connection pages, per-entity merging."""

from __future__ import annotations

import base64

import pytest

from pek.router.realms.merge import (
    InvalidCursor,
    RealmConnection,
    Sorted,
    decode_cursor,
    encode_cursor,
    merge_connection,
    merge_entity,
    merge_order,
    order_key,
)


def test_cursor_round_trip_is_canonical() -> None:
    positions = {"sem": "b2Zmc2V0OjE", "kir": "b2Zmc2V0OjA"}
    cursor = encode_cursor(positions)
    assert decode_cursor(cursor) == positions
    assert "=" not in cursor
    assert encode_cursor(dict(reversed(positions.items()))) == cursor
    assert decode_cursor(None) == {}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 !",
        base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"Bad Realm":"x"}').decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"kir":1}').decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"kir":""}').decode().rstrip("="),
        # same positions, spelled differently (spaces): not one this router issued
        base64.urlsafe_b64encode(b'{"kir": "x"}').decode().rstrip("="),
        "eyJraXIiOiJ4In0=",  # padded
        "x" * 20_000,
    ],
)
def test_forged_cursors_are_rejected(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_merge_order_sorts_by_values_then_realm_then_id() -> None:
    a = Sorted("aa", [order_key(["x"], "aa", "2"), order_key(["y"], "aa", "1")])
    b = Sorted("bb", [order_key(["x"], "bb", "1"), order_key([None], "bb", "9")])
    # bb's own order puts None last: a realm's order is kept even when it disagrees with ours
    assert merge_order([b, a]) == [("aa", 0), ("bb", 0), ("bb", 1), ("aa", 1)]
    assert merge_order([a, b], limit=2) == [("aa", 0), ("bb", 0)]
    assert merge_order([a, b], limit=0) == []


def test_mixed_value_types_have_a_total_order() -> None:
    keys = sorted(
        [order_key([v], "r", "1") for v in ["b", 2, None, True, "a", 1.5, [1]]]
    )
    assert [k[0] for k in keys][:2] == [(0, 0), (1, 1)]


def test_merge_connection_positions_and_next_page() -> None:
    kir = RealmConnection("kir", [order_key(["a"], "kir", "1"), order_key(["c"], "kir", "2")],
                          ["k0", "k1"], has_next_page=True)
    sem = RealmConnection("sem", [order_key(["b"], "sem", "1")], ["s0"], has_next_page=False)
    page = merge_connection([kir, sem], {"old": "o5"}, first=2)
    assert [(r, i) for r, i, _ in page.edges] == [("kir", 0), ("sem", 0)]
    assert decode_cursor(page.edges[0][2]) == {"old": "o5", "kir": "k0"}
    assert decode_cursor(page.edges[1][2]) == {"old": "o5", "kir": "k0", "sem": "s0"}
    assert page.has_next_page  # kir's second edge was not taken, and kir has more
    assert page.has_previous_page
    last = merge_connection([sem], {}, first=5)
    assert not last.has_next_page and not last.has_previous_page


def test_merge_entity_concatenates_lists_in_realm_order() -> None:
    merged = merge_entity(
        [
            {"__typename": "User", "memberships": [{"id": "a1"}], "nick": None},
            None,
            {"__typename": "User", "memberships": [{"id": "b1"}, {"id": "b2"}], "nick": "x"},
        ]
    )
    assert merged == {
        "__typename": "User",
        "memberships": [{"id": "a1"}, {"id": "b1"}, {"id": "b2"}],
        "nick": "x",
    }
    assert merge_entity([None, None]) is None
