"""Fixtures of the sign-in tests: a real OIDC provider (npm ``oidc-provider`` on loopback), the
all-in-one stack (hub, realm, router) served by uvicorn on loopback, and a test browser."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import uvicorn

from pek.hub.service import HubSubgraph
from pek.realm.service import RealmSubgraph
from pek.router.composition import SubgraphDefinition, compose
from pek.router.edge.auth import EdgeAuth
from pek.router.gateway import Gateway
from pek.router.http import create_app
from pek.router.transport import InProcessTransport
from pek.settings import Settings
from tests.processes import free_port, serve

NODE_DIR = Path(__file__).parent / "node"
CLIENT_ID = "pek-test-client"
CLIENT_SECRET = "pek-test-secret"


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[bytes]
    #: With ``LOG_REQUESTS=1``: "<METHOD> <path> <auth scheme or ->" of every request it got.
    requests: list[str]

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _read_requests(process: subprocess.Popen[bytes], requests: list[str]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode().strip()
        if line.startswith("request "):
            requests.append(line.removeprefix("request "))


def start_provider(redirect_uris: list[str], **switches: str) -> Provider:
    """Start ``provider.mjs`` on a free loopback port; ``switches`` are its environment
    switches (``FAMILY_NAME``, ``EMAIL_DOMAIN``, ``STYLE``, ``LOG_REQUESTS``)."""
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "The OIDC provider of the tests needs Node 20 and "
            "`npm ci --prefix tests/auth/node` (scripts/setup.sh does it)"
        )
    port = free_port()
    process = subprocess.Popen(
        ["node", str(NODE_DIR / "provider.mjs")],
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "PORT": str(port),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "REDIRECT_URIS": " ".join(redirect_uris),
            **switches,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith("ready "):
        process.kill()
        pytest.fail(f"the OIDC provider did not start: {line!r}")
    requests: list[str] = []
    # Keep reading its output (so it never blocks on a full pipe), collecting request lines.
    threading.Thread(target=_read_requests, args=(process, requests), daemon=True).start()
    return Provider(line.split()[1], process, requests)


@pytest.fixture
def router_port() -> int:
    return free_port()


@pytest.fixture
def provider(router_port: int) -> Iterator[Provider]:
    started = start_provider([f"http://127.0.0.1:{router_port}/auth/callback"])
    try:
        yield started
    finally:
        started.stop()


@dataclass
class Stack:
    """The all-in-one deployment on loopback: the router's public origin and its parts."""

    origin: str
    settings: Settings
    hub: HubSubgraph
    realm: RealmSubgraph


@pytest.fixture
def stack_settings(tmp_path: Path, router_port: int) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pek.sqlite3'}"
    return Settings(
        dev=False,
        demo_data=True,
        hub_database_url=url,
        realm_database_url=url,
        key_dir=str(tmp_path / "keys"),
        public_url=f"http://127.0.0.1:{router_port}",
        secret_key="test-secret-for-the-login-transaction",
    )


async def start_stack(settings: Settings, port: int) -> tuple[Stack, uvicorn.Server,
                                                            asyncio.Task[None]]:
    """Hub, realm and router in this process (in-process calls), the router over HTTP: what
    ``pek dev`` builds, with the hub's sign-in routes passed through the router."""
    hub, realm = HubSubgraph(settings), RealmSubgraph(settings)
    await hub.start()
    await realm.start()
    supergraph = compose([
        SubgraphDefinition("hub", "in-process://hub", hub.sdl()),
        SubgraphDefinition("realm", "in-process://realm", realm.sdl()),
    ])
    gateway = Gateway(supergraph, InProcessTransport({"hub": hub, "realm": realm}))
    auth = EdgeAuth.from_settings(settings, hub_app=hub.asgi_app())
    app = create_app(gateway, settings, auth=auth)
    server, task = await serve(app, port)
    return Stack(f"http://127.0.0.1:{port}", settings, hub, realm), server, task


@pytest.fixture
async def stack(stack_settings: Settings, router_port: int) -> AsyncIterator[Stack]:
    running, server, task = await start_stack(stack_settings, router_port)
    try:
        yield running
    finally:
        server.should_exit = True
        await task
        await running.realm.aclose()
        await running.hub.aclose()


class LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Browsers send ``Secure`` cookies to http://127.0.0.1 and localhost (a potentially
    trustworthy origin); the standard library's policy does not."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        host = urlsplit(request.get_full_url()).hostname
        return bool(host in ("127.0.0.1", "localhost") or
                    super().return_ok_secure(cookie, request))


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""),
                               "method": values.get("method", "get").lower(), "fields": {}})
        elif tag in ("input", "button") and self.forms and values.get("name"):
            self.forms[-1]["fields"].setdefault(values["name"], values.get("value", ""))


def forms_of(page: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


class Browser:
    """A test browser: its own cookie jar, redirects followed by hand, forms submitted."""

    def __init__(self) -> None:
        # The browser keeps its own jar: httpx copies a client's cookies into a jar with the
        # default policy for every request.
        self.jar = http.cookiejar.CookieJar(policy=LoopbackIsSecure())
        self.client = httpx.AsyncClient(timeout=15.0)
        self.visited: list[str] = []
        self.responses: list[httpx.Response] = []

    async def aclose(self) -> None:
        await self.client.aclose()

    async def go(self, method: str, url: str, follow: bool = True,
                 **kwargs: Any) -> httpx.Response:
        """Request ``url`` and follow redirects (303 and 302 become GET) like a browser."""
        for _ in range(20):
            self.visited.append(url)
            # httpx also stores cookies in the client's own jar: only ours may be sent.
            self.client.cookies.clear()
            request = self.client.build_request(method, url, **kwargs)
            httpx.Cookies(self.jar).set_cookie_header(request)
            response = await self.client.send(request)
            httpx.Cookies(self.jar).extract_cookies(response)
            self.responses.append(response)
            if not follow or response.status_code not in (301, 302, 303, 307, 308):
                return response
            url = urljoin(url, response.headers["location"])
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {}
        raise AssertionError(f"too many redirects: {self.visited}")

    async def submit(self, page: httpx.Response, prompt: str, **fields: str) -> httpx.Response:
        """Submit the page's form whose hidden ``prompt`` field is ``prompt``."""
        form = next(
            (f for f in forms_of(page.text) if f["fields"].get("prompt") == prompt), None
        )
        assert form is not None, f"no {prompt!r} form in:\n{page.text[-1500:]}"
        data = {**form["fields"], **fields}
        target = urljoin(str(page.url), form["action"])
        return await self.go(form["method"].upper(), target, data=data)

    def cookie(self, name: str) -> str | None:
        for cookie in self.jar:
            if cookie.name == name:
                return cookie.value
        return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        await b.aclose()


def set_cookie_headers(browser: Browser, name: str) -> list[str]:
    """Every Set-Cookie header for ``name`` the browser received."""
    return [
        value
        for response in browser.responses
        for value in response.headers.get_list("set-cookie")
        if re.match(rf"{re.escape(name)}=", value)
    ]
