"""CSRF prevention, as Apollo Router does it.

A browser sends a cross-site GET (or a form POST) without a CORS preflight only when every
header is "simple". Requiring one non-simple header on GET means a cross-site page cannot make
a victim's browser run a query with its cookies; POST is covered by refusing every content type
but ``application/json`` (see :mod:`pek.router.edge.request_parsing`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pek.router.edge.errors import EdgeError

#: Content types a browser may send cross-site without a preflight (Fetch spec "CORS-safelisted").
SIMPLE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
#: Any of these headers, non-empty, proves the request was preflighted (or not from a browser).
PREFLIGHT_HEADERS = ("x-apollo-operation-name", "apollo-require-preflight", "graphql-preflight")


def is_preflighted(headers: Mapping[str, str]) -> bool:
    """True when a browser would have had to send a CORS preflight for these headers."""
    content_type = headers.get("content-type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in SIMPLE_CONTENT_TYPES:
            return True
    return any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS)


def prevent_csrf(headers: Mapping[str, str]) -> None:
    """Refuse (400) a request a cross-site page could have sent without a preflight."""
    if not is_preflighted(headers):
        raise EdgeError(
            400,
            "This request was blocked as a possible cross-site request forgery (CSRF). "
            "Send a 'Content-Type: application/json' header, or a non-empty "
            "'apollo-require-preflight', 'graphql-preflight' or 'x-apollo-operation-name' header.",
        )
