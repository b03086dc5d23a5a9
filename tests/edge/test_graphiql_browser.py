"""GraphiQL really renders in a browser with no internet: headless Chromium, every host but
127.0.0.1 blocked, against the edge app served by uvicorn."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from pek.router.graphiql import ASSETS, DEFAULT_ASSETS_DIR, INSTALL_COMMAND
from pek.router.http import create_app
from pek.settings import Settings

from .conftest import SchemaExecutor

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.slow


def chromium_binary() -> str:
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Chromium is needed for this test: install it with "
            "`apt-get update && apt-get install -y chromium`"
        )
    return found


@pytest.fixture
def served(free_port: int) -> Iterator[tuple[str, SchemaExecutor]]:
    """The edge app (dev mode, real assets) on 127.0.0.1, in a background thread."""
    missing = [rel for rel in ASSETS.values() if not (DEFAULT_ASSETS_DIR / rel).is_file()]
    if missing:
        pytest.fail(f"GraphiQL assets missing ({', '.join(missing)}): run `{INSTALL_COMMAND}`")
    executor = SchemaExecutor()
    app = create_app(executor, Settings(dev=True))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{free_port}", executor
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # Every host but the router resolves to nothing: a CDN reference could not load.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=10000",
        "--window-size=1280,800",
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_graphiql_renders_offline(
    served: tuple[str, SchemaExecutor], tmp_path: Path
) -> None:
    base, executor = served
    dump = run_chromium(f"{base}/graphql", tmp_path / "profile-dom", "--dump-dom")
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = dump.stdout
    assert 'class="graphiql-container"' in dom, dom[:2000]
    assert "Loading GraphiQL" not in dom
    assert "graphiql-execute-button" in dom
    # The query editor holds the default query as CodeMirror lines (rendered, not our JSON).
    editor = dom[dom.index("graphiql-query-editor") : dom.index("graphiql-editor-tools")]
    lines = re.findall(r'<pre class="\s*CodeMirror-line\s*"[^>]*>(.*?)</pre>', editor)
    text = html.unescape(re.sub(r"<[^>]+>", "", "\n".join(lines)))
    assert len(lines) >= 19, text
    assert "groups(first: 5) {" in text
    assert "memberships {" in text
    assert "Not signed in" in dom and "/dev/sign-in" in dom
    # GraphiQL's own fetcher reached the gateway through the edge (POST JSON, not blocked).
    assert any("IntrospectionQuery" in call.query for call in executor.calls)

    screenshot = tmp_path / "graphiql.png"
    shot = run_chromium(
        f"{base}/graphql", tmp_path / "profile-shot", f"--screenshot={screenshot}"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # A blank or "Loading..." page compresses to a few KB; the rendered IDE is much richer.
    assert len(png) > 15_000, len(png)
