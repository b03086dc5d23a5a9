"""Dev sign-in: act as any demo user, in dev mode only.

``GET /dev/sign-in`` lists the users (through the gateway, like any client, as the signed-in dev
user or, while nobody is, as the first user: names are for signed-in users) with a search box;
``POST /dev/sign-in`` (form or JSON ``{"user": "<User id>"}``) asks the hub for a token for that
user (``POST /auth/dev/token``, which checks the user exists), sets the ``pek_dev_user`` cookie
and redirects to GraphiQL; ``POST /dev/sign-out`` clears it. For every request the edge turns
the cookie into a real hub token (minted by the hub, cached until shortly before it expires:
:mod:`pek.router.edge.auth`), so dev requests are verified by the router and every subgraph
exactly as signed-in ones; no header naming a user ever reaches a subgraph.

The cookie is signed with HMAC-SHA256 over ``settings.secret_key``: a tampered or foreign cookie
is ignored, as is every cookie outside dev mode, where these routes answer 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pek.router.edge.auth import EdgeAuth
from pek.router.edge.errors import EdgeError, error_response
from pek.router.edge.executor import GraphQLExecutor
from pek.router.edge.forwarding import forwarded_headers
from pek.router.edge.request_parsing import read_body
from pek.schema.ids import InvalidGlobalId, decode, encode
from pek.settings import Settings

log = logging.getLogger(__name__)

COOKIE_NAME = "pek_dev_user"
COOKIE_MAX_AGE = 7 * 24 * 3600
SIGN_IN_PATH = "/dev/sign-in"
SIGN_OUT_PATH = "/dev/sign-out"
#: Who lists the users while nobody is signed in (dev mode only): the first user.
LISTER = encode("User", 1)
USERS_QUERY = "query PekDevSignInUsers { users(first: 50) { edges { node { id name nickname } } } }"
# Distinguishes this MAC from any other use of the same secret.
_MAC_LABEL = b"pek_dev_user\x00"
_MAX_FORM_BYTES = 4096


def sign_user(user_id: str, secret_key: str) -> str:
    """Cookie value naming ``user_id``: ``<base64url(user id)>.<hex HMAC-SHA256>``."""
    raw = user_id.encode()
    mac = hmac.new(secret_key.encode(), _MAC_LABEL + raw, hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac


def verify_cookie(value: str, secret_key: str) -> str | None:
    """The user id a cookie value names, or None when it is malformed or its MAC is wrong."""
    encoded, dot, mac = value.partition(".")
    if not dot or not encoded or len(value) > 512:
        return None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        user_id = raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    expected = hmac.new(secret_key.encode(), _MAC_LABEL + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        return None
    return user_id


def dev_user(request: Request, settings: Settings) -> str | None:
    """The user the browser signed in as with dev sign-in; always None outside dev mode."""
    if not settings.dev:
        return None
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    return verify_cookie(value, settings.secret_key)


def _not_in_dev_mode() -> Response:
    return error_response(
        404, "Dev sign-in is only available in development mode (PEK_DEV=true)"
    )


def _same_origin(request: Request) -> bool:
    """A cross-site page must not sign a browser in as someone (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return request.headers.get("sec-fetch-site", "same-origin") in {
            "same-origin",
            "none",
        }
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme == request.url.scheme


async def _submitted_user(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, _MAX_FORM_BYTES)
    user: Any
    if media_type == "application/json":
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise EdgeError(400, "The request body is not valid JSON") from None
        user = payload.get("user") if isinstance(payload, dict) else None
    elif media_type == "application/x-www-form-urlencoded":
        try:
            values = parse_qs(body.decode(), strict_parsing=False).get("user", [])
        except UnicodeDecodeError:
            raise EdgeError(400, "The form is not valid UTF-8") from None
        user = values[0] if len(values) == 1 else None
    else:
        raise EdgeError(415, "Send the user as a form field or as JSON {\"user\": \"<User id>\"}")
    if not isinstance(user, str) or not user.strip():
        raise EdgeError(400, "Missing 'user': the id of the User to act as")
    try:
        decode(user.strip(), "User")
    except InvalidGlobalId as exc:
        raise EdgeError(400, f"'user' is not a User id: {exc}") from None
    return user.strip()


def _users_of(result: dict[str, Any]) -> list[dict[str, str]]:
    users: list[dict[str, str]] = []
    data = result.get("data") or {}
    connection = data.get("users") if isinstance(data, dict) else None
    edges = connection.get("edges") if isinstance(connection, dict) else None
    for edge in edges or []:
        node = edge.get("node") if isinstance(edge, dict) else None
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            users.append(
                {
                    "id": node["id"],
                    "name": str(node.get("name") or ""),
                    "nickname": str(node.get("nickname") or ""),
                }
            )
    return users


def _page(
    users: list[dict[str, str]], errors: list[str], search: str, current: str | None
) -> str:
    esc = html.escape
    needle = search.strip().lower()
    shown = [
        u
        for u in users
        if not needle or needle in u["name"].lower() or needle in u["nickname"].lower()
    ]
    rows = "\n".join(
        f'<li><form method="post" action="{SIGN_IN_PATH}">'
        f'<input type="hidden" name="user" value="{esc(u["id"])}">'
        f'<button type="submit">{esc(u["name"] or u["id"])}</button>'
        f'{" <small>(" + esc(u["nickname"]) + ")</small>" if u["nickname"] else ""}'
        f"{' <strong>signed in</strong>' if u['id'] == current else ''}"
        "</form></li>"
        for u in shown
    )
    if not shown:
        rows = "<li>No user matches.</li>" if users else "<li>No users found.</li>"
    problems = "".join(f'<p class="error">{esc(e)}</p>' for e in errors)
    sign_out = (
        f'<form method="post" action="{SIGN_OUT_PATH}"><button type="submit">Sign out</button>'
        "</form>"
        if current
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PÉK dev sign-in</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }}
ul {{ list-style: none; padding: 0; }} li {{ margin: .3rem 0; }}
.error {{ color: #b00020; }}
</style></head>
<body>
<h1>Dev sign-in</h1>
<p>Development mode only: act as any user. <a href="/graphql">Back to GraphiQL</a></p>
{sign_out}
<form method="get" action="{SIGN_IN_PATH}" role="search">
<input type="search" name="q" value="{esc(search)}" placeholder="Search by name or nickname">
<button type="submit">Search</button></form>
{problems}
<ul id="users">
{rows}
</ul>
</body></html>
"""


def dev_auth_routes(
    gateway: GraphQLExecutor, settings: Settings, auth: EdgeAuth | None = None
) -> list[Route]:
    """The dev sign-in routes; they answer 404 unless ``settings.dev``. ``auth`` mints the
    tokens (default: :meth:`EdgeAuth.from_settings`)."""
    edge_auth = auth or EdgeAuth.from_settings(settings)

    async def sign_in_page(request: Request) -> Response:
        if not settings.dev:
            return _not_in_dev_mode()
        current = dev_user(request, settings)
        errors: list[str] = []
        users: list[dict[str, str]] = []
        try:
            # People's names are for signed-in users, and in dev mode anyone may act as anyone:
            # with nobody signed in yet, the page lists them as the first user.
            token = await edge_auth.dev_token(current or LISTER)
            result = await gateway.execute(
                USERS_QUERY, headers=forwarded_headers(request.headers, settings, token)
            )
        except EdgeError as exc:
            errors.append(exc.message)
        except Exception:
            log.exception("dev sign-in: listing users failed")
            errors.append("Listing users failed (see the router's log).")
        else:
            users = _users_of(result)
            errors.extend(
                str(e.get("message", e)) for e in result.get("errors") or [] if isinstance(e, dict)
            )
        search = request.query_params.get("q", "")
        return HTMLResponse(_page(users, errors, search, current))

    async def sign_in(request: Request) -> Response:
        if not settings.dev:
            return _not_in_dev_mode()
        if not _same_origin(request):
            return error_response(403, "Cross-site sign-in refused")
        try:
            user = await _submitted_user(request)
            # The hub mints (and so vouches for) the token; an unknown user fails here.
            await edge_auth.dev_token(user)
        except EdgeError as exc:
            return error_response(exc.status, exc.message, headers=exc.headers)
        response = RedirectResponse("/graphql", status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            sign_user(user, settings.secret_key),
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
        )
        return response

    async def sign_out(request: Request) -> Response:
        if not settings.dev:
            return _not_in_dev_mode()
        if not _same_origin(request):
            return error_response(403, "Cross-site sign-out refused")
        response = RedirectResponse(SIGN_IN_PATH, status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
        return response

    return [
        Route(SIGN_IN_PATH, sign_in_page, methods=["GET"]),
        Route(SIGN_IN_PATH, sign_in, methods=["POST"]),
        Route(SIGN_OUT_PATH, sign_out, methods=["POST"]),
    ]
