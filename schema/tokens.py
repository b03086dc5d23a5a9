"""The hub's access tokens: key files, signing, and the one verification every role uses.

The hub signs short-lived JWTs (EdDSA over Ed25519) with the *active* key of its key
directory and publishes every non-retired public key as a JWKS. The router verifies the token
at the edge and forwards the very same token; every subgraph verifies it again with
:class:`TokenVerifier` (signature by ``kid`` from the hub's JWKS, ``alg`` pinned to EdDSA,
issuer, audience, expiry, not-before, required claims). Nothing else names a viewer.

Where the public keys come from is a :class:`KeySource`:

* :class:`DirectoryKeySource` reads the key directory itself (all-in-one: the hub, the realm
  and the router share one process and one directory);
* :class:`HttpJwksSource` fetches ``/.well-known/jwks.json`` from the hub and caches it.

Key rotation publishes a new key *before* it signs anything (``use_from`` lies one JWKS cache
period ahead), so verifiers have it cached when the first token signed with it arrives; a
retired key stays published until every token it signed has expired.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pek.schema import ids
from pek.settings import Settings

log = logging.getLogger("pek.tokens")

#: The only algorithm accepted: pinning it defeats "alg: none" and HS/RS confusion.
ALGORITHM = "EdDSA"
#: Claims a token must carry to be considered at all.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat")
#: Clock skew tolerated between the hub and a verifier, in seconds.
LEEWAY_SECONDS = 30
#: An unknown ``kid`` triggers at most one JWKS fetch per this many seconds (a flood of
#: forged kids must not become a flood of requests to the hub).
MIN_REFRESH_INTERVAL = 10.0
#: Path of the JWKS on the hub (and, passed through, on the router).
JWKS_PATH = "/.well-known/jwks.json"
#: A key directory is re-read at least this often, whatever its modification time says.
_RESCAN_SECONDS = 5.0
#: The browser cookie that carries the access token.
ACCESS_COOKIE = "pek_access"


class InvalidToken(Exception):
    """The token is not one the hub issued for us, or no longer valid.

    The message is for the client and says why in plain words; ``detail`` is for the server's
    log (the decoder's own words, the offending header value) and never leaves it.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


#: Client-facing messages of the decoder's refusals (anything else: :data:`_INVALID`).
_MALFORMED = "The access token is malformed"
_INVALID = "The access token is not valid"
_JWT_MESSAGES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The access token has expired"),
    (jwt.ImmatureSignatureError, "The access token is not valid yet"),
    (jwt.InvalidAudienceError, "The access token was issued for another audience"),
    (jwt.InvalidIssuerError, "The access token was issued by another issuer"),
    (jwt.MissingRequiredClaimError, "The access token lacks a required claim"),
    (jwt.InvalidSignatureError, "The access token's signature is not valid"),
    (jwt.DecodeError, _MALFORMED),
)


def _refusal(exc: jwt.PyJWTError) -> InvalidToken:
    detail = str(exc) or type(exc).__name__
    for kind, message in _JWT_MESSAGES:
        if isinstance(exc, kind):
            return InvalidToken(message, detail)
    return InvalidToken(_INVALID, detail)


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of an access token."""

    subject: str
    user_id: int
    issuer: str
    audience: str
    expires_at: int
    token_id: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)


# -- keys ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """The JWK (RFC 8037 OKP) of an Ed25519 public key."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": kid, "alg": ALGORITHM,
            "use": "sig"}


@dataclass(frozen=True)
class KeyFile:
    """One signing key of the key directory (``<kid>.json``, readable by the hub only).

    ``use_from`` is when it starts signing (published before that); the key is retired when a
    newer key's ``use_from`` has passed.
    """

    kid: str
    created_at: float
    use_from: float
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, use_from: float | None = None) -> KeyFile:
        now = time.time()
        kid = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(4)
        return cls(kid, now, now if use_from is None else use_from, Ed25519PrivateKey.generate())

    def to_json(self) -> dict[str, Any]:
        jwk = public_jwk(self.kid, self.private_key.public_key())
        jwk["d"] = _b64(self.private_key.private_bytes_raw())
        return {"kid": self.kid, "created_at": self.created_at, "use_from": self.use_from,
                "jwk": jwk}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyFile:
        jwk = data["jwk"]
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("not an Ed25519 key")
        private = Ed25519PrivateKey.from_private_bytes(_unb64(jwk["d"]))
        return cls(str(data["kid"]), float(data["created_at"]), float(data["use_from"]), private)

    def public(self) -> dict[str, str]:
        return public_jwk(self.kid, self.private_key.public_key())


class KeyDirectory:
    """The hub's signing keys, one JSON file per key in ``path``.

    Several hub replicas may share the directory (a mounted secret or volume); it is re-read
    when its modification time changes, so a rotation by ``pek keys rotate`` reaches every
    process without a restart.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._read_at = 0.0
        self._keys: list[KeyFile] = []

    def keys(self) -> list[KeyFile]:
        """Every key on disk, oldest ``use_from`` first (re-read only when the directory
        changed)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_ino)
        now = time.monotonic()
        with self._lock:
            # The modification time may not change between two writes in one clock tick:
            # re-read at least every few seconds anyway.
            if stamp != self._stamp or now - self._read_at > _RESCAN_SECONDS:
                self._keys = self._read()
                self._stamp = stamp
                self._read_at = now
            return list(self._keys)

    def _read(self) -> list[KeyFile]:
        keys = []
        for file in sorted(self.path.glob("*.json")):
            try:
                keys.append(KeyFile.from_json(json.loads(file.read_text("utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable key file %s: %s", file, exc)
        return sorted(keys, key=lambda k: (k.use_from, k.created_at))

    def write(self, key: KeyFile) -> None:
        """Store ``key`` (mode 0600, written atomically)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path / f"{key.kid}.json"
        temporary = self.path / f".{key.kid}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(key.to_json(), handle)
        os.replace(temporary, target)
        with self._lock:
            self._stamp = None

    def active(self, now: float | None = None) -> KeyFile | None:
        """The key that signs now: the newest whose ``use_from`` has passed."""
        moment = time.time() if now is None else now
        usable = [k for k in self.keys() if k.use_from <= moment]
        return usable[-1] if usable else None

    def ensure_active(self) -> KeyFile:
        """The active key, creating the first one when the directory has none."""
        key = self.active()
        if key is None:
            key = KeyFile.generate()
            self.write(key)
            log.info("created signing key %s in %s", key.kid, self.path)
        return key

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: every key still on disk, including one not yet signing."""
        return {"keys": [k.public() for k in self.keys()]}

    def rotate(self, publish_ahead: float, retain_after_retired: float) -> KeyFile:
        """Add a key that starts signing in ``publish_ahead`` seconds; delete keys retired
        more than ``retain_after_retired`` seconds ago (their tokens have all expired)."""
        now = time.time()
        key = KeyFile.generate(use_from=now + publish_ahead)
        self.write(key)
        keys = self.keys()
        for older, newer in zip(keys, keys[1:], strict=False):
            # ``older`` stopped signing when ``newer`` started.
            if newer.use_from + retain_after_retired < now:
                (self.path / f"{older.kid}.json").unlink(missing_ok=True)
                with self._lock:
                    self._stamp = None
                log.info("deleted retired signing key %s", older.kid)
        return key


def rotate_keys(settings: Settings) -> KeyFile:
    """``pek keys rotate``: add the next signing key and drop expired retired ones.

    The new key is published one JWKS cache period before it signs, and a retired key is kept
    for the access-token lifetime plus leeway after its successor took over.
    """
    directory = KeyDirectory(settings.key_dir)
    directory.ensure_active()
    return directory.rotate(
        publish_ahead=settings.jwks_cache_seconds,
        retain_after_retired=settings.access_token_seconds + LEEWAY_SECONDS,
    )


class TokenSigner:
    """Mints the hub's access tokens with the active key of a :class:`KeyDirectory`."""

    def __init__(self, keys: KeyDirectory, issuer: str, audience: str, lifetime: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime

    def mint(self, user_id: int, **extra: Any) -> tuple[str, int]:
        """A signed access token for the hub user ``user_id``; returns (token, expires_at)."""
        key = self.keys.ensure_active()
        now = int(time.time())
        expires_at = now + self.lifetime
        payload: dict[str, Any] = {
            **extra,
            "iss": self.issuer,
            "sub": ids.encode("User", user_id),
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(payload, key.private_key, algorithm=ALGORITHM,
                           headers={"kid": key.kid})
        return token, expires_at

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSigner:
        return cls(KeyDirectory(settings.key_dir), settings.token_issuer,
                   settings.token_audience, settings.access_token_seconds)


# -- where verifiers get public keys ---------------------------------------------------------


class KeySource(Protocol):
    """Public keys by ``kid``."""

    def get(self, kid: str) -> Ed25519PublicKey | None:
        """The key named ``kid`` from what is known now, without waiting for the network."""
        ...

    async def refresh(self) -> None:
        """Fetch the keys again (rate-limited by the source)."""
        ...


def _keys_of(jwks: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWKS document; anything else in it is ignored."""
    keys: dict[str, Ed25519PublicKey] = {}
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        kid, x = entry.get("kid"), entry.get("x")
        if (entry.get("kty"), entry.get("crv")) != ("OKP", "Ed25519"):
            continue
        if not isinstance(kid, str) or not isinstance(x, str):
            continue
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(_unb64(x))
        except ValueError:
            continue
    return keys


class DirectoryKeySource:
    """Public keys read straight from the hub's key directory (same process or machine)."""

    def __init__(self, directory: KeyDirectory) -> None:
        self.directory = directory

    def get(self, kid: str) -> Ed25519PublicKey | None:
        for key in self.directory.keys():
            if key.kid == kid:
                return key.private_key.public_key()
        return None

    async def refresh(self) -> None:
        # The directory is re-read whenever it changes: there is nothing to fetch.
        return None


class HttpJwksSource:
    """The hub's JWKS fetched over HTTP and cached for ``cache_seconds``.

    ``get`` never blocks on the network while a cached copy exists: a stale copy is used and a
    refresh starts in the background. Only when the cache has never been filled, or a ``kid``
    is unknown, does it fetch synchronously (at most once per ``MIN_REFRESH_INTERVAL``, with a
    short timeout), because a subgraph builds its request context synchronously.
    """

    def __init__(self, url: str, cache_seconds: float = 300.0, timeout: float = 3.0) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = 0.0
        self._attempted_at = -MIN_REFRESH_INTERVAL
        self._lock = threading.Lock()
        self._background: asyncio.Task[None] | None = None

    def get(self, kid: str) -> Ed25519PublicKey | None:
        now = time.monotonic()
        key = self._keys.get(kid)
        if key is not None:
            if now - self._fetched_at > self.cache_seconds:
                self._refresh_in_background()
            return key
        if now - self._attempted_at >= MIN_REFRESH_INTERVAL:
            self._fetch_blocking()
        return self._keys.get(kid)

    def _store(self, document: Any) -> None:
        self._keys = _keys_of(document)
        self._fetched_at = time.monotonic()

    def _fetch_blocking(self) -> None:
        with self._lock:
            self._attempted_at = time.monotonic()
            try:
                response = httpx.get(self.url, timeout=self.timeout)
                response.raise_for_status()
                self._store(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("fetching the JWKS at %s failed: %s", self.url, exc)

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._attempted_at < MIN_REFRESH_INTERVAL and self._keys:
            return
        self._attempted_at = now
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                self._store(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fetching the JWKS at %s failed: %s", self.url, exc)

    def _refresh_in_background(self) -> None:
        if self._background is not None and not self._background.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._fetch_blocking()
            return
        self._background = loop.create_task(self.refresh())


# -- verification ----------------------------------------------------------------------------


class TokenVerifier:
    """Verifies the hub's access tokens: the check every role makes, the same way."""

    def __init__(self, source: KeySource, issuer: str, audience: str,
                 leeway: int = LEEWAY_SECONDS) -> None:
        self.source = source
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def _key_for(self, token: str) -> tuple[str, Ed25519PublicKey | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(_MALFORMED, f"malformed token: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(
                f"The access token's algorithm is not accepted (only {ALGORITHM})",
                f"algorithm {header.get('alg')!r} is not accepted",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("The access token names no signing key (kid)")
        return kid, self.source.get(kid)

    def verify(self, token: str) -> TokenClaims:
        """The claims of ``token``; raises :class:`InvalidToken` for anything not accepted."""
        kid, key = self._key_for(token)
        if key is None:
            raise _unknown_key(kid)
        return self._decode(token, key)

    async def averify(self, token: str) -> TokenClaims:
        """Like :meth:`verify`; an unknown ``kid`` first refreshes the keys asynchronously."""
        kid, key = self._key_for(token)
        if key is None:
            await self.source.refresh()
            key = self.source.get(kid)
            if key is None:
                raise _unknown_key(kid)
        return self._decode(token, key)

    def _decode(self, token: str, key: Ed25519PublicKey) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_nbf": True},
            )
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from None
        subject = claims["sub"]
        try:
            user_id = ids.decode(subject, expected_type="User").local_id
        except (ids.InvalidGlobalId, TypeError) as exc:
            raise InvalidToken(
                "The access token's subject is not a user", f"the subject is not a user: {exc}"
            ) from None
        jti = claims.get("jti")
        return TokenClaims(
            subject=subject,
            user_id=user_id,
            issuer=claims["iss"],
            audience=self.audience,
            expires_at=int(claims["exp"]),
            token_id=jti if isinstance(jti, str) else None,
            claims=claims,
        )


def _unknown_key(kid: str) -> InvalidToken:
    return InvalidToken(
        "The access token is signed with an unknown signing key",
        f"unknown signing key {kid!r}",
    )


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header (lower-case header names), if any."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def jwks_url_for(settings: Settings) -> str:
    """Where this process fetches the hub's JWKS; empty: read the key directory in-process.

    ``PEK_JWKS_URL`` if set, else derived from ``PEK_HUB_URL`` (``.../graphql`` ->
    ``.../.well-known/jwks.json``).
    """
    if settings.jwks_url:
        return settings.jwks_url
    if settings.hub_url and urlsplit(settings.hub_url).scheme in ("http", "https"):
        parts = urlsplit(settings.hub_url)
        return urlunsplit((parts.scheme, parts.netloc, JWKS_PATH, "", ""))
    return ""


_verifiers: dict[tuple[str, str, str, float], TokenVerifier] = {}
_verifiers_lock = threading.Lock()


def verifier_for(settings: Settings) -> TokenVerifier:
    """The process's verifier for ``settings`` (one per key source, so that the JWKS cache is
    shared by every request)."""
    url = jwks_url_for(settings)
    where = url or str(Path(settings.key_dir).resolve())
    key = (where, settings.token_issuer, settings.token_audience, settings.jwks_cache_seconds)
    with _verifiers_lock:
        verifier = _verifiers.get(key)
        if verifier is None:
            source: KeySource = (
                HttpJwksSource(url, settings.jwks_cache_seconds)
                if url
                else DirectoryKeySource(KeyDirectory(settings.key_dir))
            )
            verifier = TokenVerifier(source, settings.token_issuer, settings.token_audience)
            _verifiers[key] = verifier
        return verifier
