"""Content negotiation per the GraphQL-over-HTTP spec.

``application/graphql-response+json`` carries real status codes (400 when the response has no
``data``: a request error); ``application/json`` is the legacy media type, 200 for every
well-formed request. No ``Accept`` (or ``*/*``) means ``application/json``, so old clients keep
working; an ``Accept`` that allows neither is answered with 406.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
SUPPORTED_MEDIA_TYPES = (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an ``Accept`` header, e.g. ``application/*;q=0.5``."""

    type: str
    subtype: str
    quality: float

    def specificity(self, media_type: str) -> int:
        """How precisely this range names ``media_type``: 2 exact, 1 ``type/*``, 0 ``*/*``.

        -1 when it does not match at all.
        """
        kind, _, sub = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return 0
        if self.type != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else -1


def parse_accept(header: str) -> list[MediaRange]:
    """Parse an ``Accept`` header leniently: entries that make no sense are skipped."""
    ranges: list[MediaRange] = []
    for entry in header.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            ranges.append(MediaRange(kind, sub, quality))
    return ranges


def _quality(ranges: list[MediaRange], media_type: str) -> tuple[float, int]:
    """(quality, specificity) of the most specific range matching ``media_type``."""
    best: MediaRange | None = None
    best_specificity = -1
    for media_range in ranges:
        specificity = media_range.specificity(media_type)
        if specificity > best_specificity:
            best, best_specificity = media_range, specificity
    return (best.quality, best_specificity) if best is not None else (0.0, -1)


def negotiate(accept: str | None) -> str | None:
    """The media type to answer a GraphQL request with, or None when none is acceptable (406)."""
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    ranges = parse_accept(accept)
    if not ranges:
        return APPLICATION_JSON
    new_quality, new_specificity = _quality(ranges, GRAPHQL_RESPONSE_JSON)
    legacy_quality, _ = _quality(ranges, APPLICATION_JSON)
    if new_quality <= 0 and legacy_quality <= 0:
        return None
    # The new media type only wins when the client named it: a wildcard alone means a client
    # that may not know the newer status-code rules.
    if new_quality > legacy_quality or (new_quality == legacy_quality and new_specificity == 2):
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


def accepts_html(accept: str | None) -> bool:
    """True when the client explicitly asks for ``text/html`` (a browser navigating)."""
    if not accept:
        return False
    return any(
        r.type == "text" and r.subtype == "html" and r.quality > 0 for r in parse_accept(accept)
    )


def status_for(media_type: str, result: Mapping[str, Any]) -> int:
    """HTTP status of a GraphQL response sent as ``media_type``."""
    if media_type == GRAPHQL_RESPONSE_JSON and "data" not in result:
        return 400
    return 200


def graphql_response(
    result: Mapping[str, Any], media_type: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Encode a GraphQL response with orjson, with the status its media type calls for."""
    return Response(
        orjson.dumps(result),
        status_code=status_for(media_type, result),
        media_type=media_type,
        headers=dict(headers or {}),
    )
