"""Global IDs: round trips, realm qualification, and forged IDs rejected with a clear error."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pek.schema.ids import GlobalId, InvalidGlobalId, decode, encode

realms = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
types = st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}", fullmatch=True)


@given(types, st.integers(min_value=1, max_value=2**62), st.one_of(st.none(), realms))
def test_round_trip(type_name: str, local_id: int, realm: str | None) -> None:
    assert decode(encode(type_name, local_id, realm)) == GlobalId(type_name, local_id, realm)


def test_ids_are_opaque_and_realm_qualified() -> None:
    a = encode("Group", 7, realm="kir")
    b = encode("Group", 7, realm="sch")
    assert a != b and "Group" not in a
    assert decode(a).realm == "kir"


def _raw(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 !",
        _raw("Group:kir"),
        _raw("Group:kir:0"),
        _raw("Group:kir:-3"),
        _raw("Group:KIR:3"),
        _raw("group:kir:3"),
        _raw("Group:kir:3:extra"),
        _raw("Group:kir:03"),
        _raw("Group:kir:3") + "==",
        "x" * 500,
    ],
)
def test_forged_ids_are_rejected(value: str) -> None:
    with pytest.raises(InvalidGlobalId):
        decode(value)


def test_type_is_checked_when_asked() -> None:
    with pytest.raises(InvalidGlobalId, match="expected an ID of a Group"):
        decode(encode("User", 1), expected_type="Group")
