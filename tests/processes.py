"""Start pek roles as real processes on loopback, for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

PEK = str(Path(sys.executable).parent / "pek")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PekProcess:
    """One ``pek <role>`` child process with its own log file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PEK_")}
        full_env.update(env)
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
