"""The realm registry client: which realms exist, where they run, how long to wait for them.

The hub is the one source of truth. It serves ``GET /internal/realms``::

    {"version": 7, "realms": [{"id": "kir", "name": "KIR", "description": "...",
      "url": "http://10.0.0.5:8002/realms/kir/graphql" | "in-process://kir",
      "timeout_ms": 2000, "enabled": true, "position": 1}, ...]}

The router polls it (``registry_refresh_seconds``) and also refreshes at once when a request
names a realm it does not know, so a realm added or removed at the hub takes effect without a
router restart and without any client change. The all-in-one process reads the same document
in-process from the hub service object (:class:`InProcessRegistrySource`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from pek.schema.ids import REALM_ID_RE

log = logging.getLogger("pek.router.realms")

IN_PROCESS_SCHEME = "in-process://"
#: The url schemes a realm instance can be reached with.
URL_SCHEMES = (IN_PROCESS_SCHEME, "http://", "https://")
#: Timeout of a realm whose registry entry has none.
DEFAULT_TIMEOUT_MS = 5000


class RegistryUnavailable(Exception):
    """The registry has never been read successfully (the hub did not answer)."""


@dataclass(frozen=True, slots=True)
class RealmInfo:
    """One realm as the registry describes it."""

    id: str
    name: str
    url: str
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    enabled: bool = True
    position: int = 0
    description: str | None = None

    @property
    def in_process(self) -> bool:
        return self.url.startswith(IN_PROCESS_SCHEME)

    @property
    def reachable(self) -> bool:
        """Whether the registry gives this realm a usable url (``""`` when it does not)."""
        return self.url.startswith(URL_SCHEMES)

    @property
    def timeout(self) -> float:
        return self.timeout_ms / 1000.0


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """The registry at one version; realms in display order (position, then id)."""

    version: int
    realms: tuple[RealmInfo, ...]

    def get(self, realm_id: str) -> RealmInfo | None:
        for realm in self.realms:
            if realm.id == realm_id:
                return realm
        return None

    def enabled(self) -> tuple[RealmInfo, ...]:
        return tuple(r for r in self.realms if r.enabled)


def parse_registry(document: Mapping[str, Any]) -> RegistrySnapshot:
    """Read the registry document; entries that are not usable are skipped with a warning."""
    version = document.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("the registry's `version` is not an integer")
    raw_realms = document.get("realms")
    if not isinstance(raw_realms, list):
        raise ValueError("the registry has no `realms` list")
    realms: dict[str, RealmInfo] = {}
    for entry in raw_realms:
        try:
            realm = _realm(entry)
        except (TypeError, ValueError) as exc:
            log.warning("realm registry: skipping an entry (%s): %r", exc, entry)
            continue
        if realm.id in realms:
            log.warning("realm registry: realm %r listed twice; keeping the first", realm.id)
            continue
        realms[realm.id] = realm
    ordered = sorted(realms.values(), key=lambda r: (r.position, r.id))
    return RegistrySnapshot(version, tuple(ordered))


def _realm(entry: Any) -> RealmInfo:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    realm_id, url = entry.get("id"), entry.get("url")
    if not isinstance(realm_id, str) or not REALM_ID_RE.match(realm_id):
        raise ValueError("bad realm id")
    if not isinstance(url, str) or not url.startswith(URL_SCHEMES):
        # Kept, not skipped: a realm the registry lists must still be part of every fan-out,
        # so that clients get REALM_UNAVAILABLE naming it rather than a silently short answer.
        url = ""
    timeout_ms = entry.get("timeout_ms")
    if timeout_ms is None:
        timeout_ms = DEFAULT_TIMEOUT_MS
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise ValueError("timeout_ms must be a positive integer")
    position = entry.get("position") or 0
    if not isinstance(position, int):
        raise ValueError("position must be an integer")
    name = entry.get("name")
    description = entry.get("description")
    return RealmInfo(
        id=realm_id,
        name=name if isinstance(name, str) and name else realm_id,
        url=url,
        timeout_ms=timeout_ms,
        enabled=entry.get("enabled", True) is not False,
        position=position,
        description=description if isinstance(description, str) else None,
    )


class RegistrySource(Protocol):
    """Where the registry document comes from (the hub over HTTP, or the hub in-process)."""

    async def fetch(self) -> Mapping[str, Any]: ...

    async def aclose(self) -> None: ...


class HttpRegistrySource:
    """``GET <hub>/internal/realms`` over HTTP."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))

    async def fetch(self) -> Mapping[str, Any]:
        response = await self._client.get(self.url)
        response.raise_for_status()
        document = orjson.loads(response.content)
        if not isinstance(document, dict):
            raise ValueError("the registry answer is not a JSON object")
        return document

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


class InProcessRegistrySource:
    """The registry document from a function of the hub service living in this process."""

    def __init__(
        self, read: Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
    ) -> None:
        self._read = read

    async def fetch(self) -> Mapping[str, Any]:
        result = self._read()
        if inspect.isawaitable(result):
            return await result
        return result

    async def aclose(self) -> None:
        return None


Listener = Callable[[RegistrySnapshot], None]


class RealmRegistry:
    """The router's view of the registry: a snapshot, refreshed by polling and on demand."""

    def __init__(
        self,
        source: RegistrySource,
        *,
        refresh_seconds: float = 30.0,
        min_refresh_interval: float = 1.0,
    ) -> None:
        self.source = source
        self.refresh_seconds = refresh_seconds
        #: On-demand refreshes (an unknown realm named by a client) happen at most this often,
        #: so random IDs cannot flood the hub.
        self.min_refresh_interval = min_refresh_interval
        self._snapshot: RegistrySnapshot | None = None
        self._last_attempt = float("-inf")
        self._inflight: asyncio.Future[RegistrySnapshot | None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the registry once (a failure is logged; requests retry) and start polling."""
        await self.refresh()
        if self._poller is None and self.refresh_seconds > 0:
            self._poller = asyncio.create_task(self._poll(), name="realm-registry-poll")

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.source.aclose()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    # -- reading -----------------------------------------------------------------------------

    @property
    def snapshot(self) -> RegistrySnapshot | None:
        """The last registry read, None before the first successful read."""
        return self._snapshot

    def on_change(self, listener: Listener) -> None:
        """Call ``listener`` with every new snapshot (a new version)."""
        self._listeners.append(listener)

    async def current(self) -> RegistrySnapshot:
        """The snapshot; reads the registry first if it has never been read."""
        if self._snapshot is None:
            await self.refresh(on_demand=True)
        if self._snapshot is None:
            raise RegistryUnavailable("the realm registry could not be read from the hub")
        return self._snapshot

    async def lookup(self, realm_ids: Sequence[str]) -> RegistrySnapshot:
        """The snapshot, refreshed first (rate-limited) when it lacks one of ``realm_ids``."""
        snapshot = await self.current()
        if all(snapshot.get(r) is not None for r in realm_ids):
            return snapshot
        await self.refresh(on_demand=True)
        return self._snapshot or snapshot

    async def refresh(self, *, on_demand: bool = False) -> RegistrySnapshot | None:
        """Read the registry now (concurrent callers share one read); returns the snapshot."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        now = time.monotonic()
        if on_demand and now - self._last_attempt < self.min_refresh_interval:
            return self._snapshot
        self._last_attempt = now
        loop = asyncio.get_running_loop()
        self._inflight = loop.create_future()
        try:
            snapshot = await self._read()
            self._inflight.set_result(snapshot)
            return snapshot
        finally:
            if not self._inflight.done():
                self._inflight.set_result(self._snapshot)
            self._inflight = None

    async def _read(self) -> RegistrySnapshot | None:
        try:
            snapshot = parse_registry(await self.source.fetch())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("realm registry: read failed (%s: %s); keeping the last one", type(exc)
                        .__name__, exc)
            return self._snapshot
        previous = self._snapshot
        if previous is not None and previous == snapshot:
            return previous
        if previous is not None and snapshot.version < previous.version:
            log.warning(
                "realm registry: version went back from %d to %d; using it",
                previous.version, snapshot.version,
            )
        self._snapshot = snapshot
        log.info(
            "realm registry v%d: %s", snapshot.version,
            ", ".join(f"{r.id}{'' if r.enabled else ' (disabled)'}" for r in snapshot.realms),
        )
        for realm in snapshot.realms:
            if not realm.reachable:
                log.warning(
                    "realm registry: realm %r has no usable url; it is unavailable until "
                    "`pek realms update %s --url ...` gives it one", realm.id, realm.id,
                )
        for listener in self._listeners:
            listener(snapshot)
        return snapshot
