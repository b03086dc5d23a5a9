"""Start pek roles as real processes on loopback, for the end-to-end tests.

Also runs one-shot ``pek`` commands (:func:`run_pek`), such as registering a realm in the
hub's registry the way an operator (or compose's ``realms-init`` job) does it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

PEK = str(Path(sys.executable).parent / "pek")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def serve(app: Any, port: int, *, lifespan: str = "off"
                ) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` on 127.0.0.1:``port`` in this event loop until the server is stopped
    (``lifespan="on"`` for apps that start their parts at start-up, as the roles do)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


@asynccontextmanager
async def served(app: Any, *, lifespan: str = "off") -> AsyncIterator[str]:
    """``app`` served on a free loopback port while the block runs: its origin."""
    port = free_port()
    server, task = await serve(app, port, lifespan=lifespan)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class PekProcess:
    """One ``pek <role>`` child process with its own log file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        full_env = _env(env)
        self._log = open(log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [PEK, *args], env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, url: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"pek {self.args[0]} exited early:\n{self.log()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"pek {self.args[0]} not healthy after {timeout}s:\n{self.log()}")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash (no shutdown, no goodbye)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; returns the exit code (SIGKILL if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def _env(env: Mapping[str, str]) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PEK_")}
    full_env.update(env)
    return full_env


def run_pek(
    args: list[str], env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> str:
    """Run ``pek <args>`` to completion; its standard output (AssertionError on failure)."""
    result = subprocess.run(
        [PEK, *args], env=_env(env or {}), capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"`pek {' '.join(args)}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def register_realm(
    hub_database_url: str,
    realm_id: str,
    url: str,
    *,
    name: str | None = None,
    timeout_ms: int | None = None,
) -> None:
    """``pek realms add <realm_id> --name ... --url ...`` against the hub's database."""
    args = ["realms", "add", realm_id, "--name", name or realm_id, "--url", url]
    if timeout_ms is not None:
        args += ["--timeout-ms", str(timeout_ms)]
    run_pek(args, {"PEK_HUB_DATABASE_URL": hub_database_url, "PEK_LOG_LEVEL": "warning"})


def remove_realm(hub_database_url: str, realm_id: str) -> None:
    """``pek realms remove <realm_id>`` against the hub's database."""
    run_pek(["realms", "remove", realm_id],
            {"PEK_HUB_DATABASE_URL": hub_database_url, "PEK_LOG_LEVEL": "warning"})
