"""The service as a child process: ``start_server(args)`` runs ``python -m server ARGS`` on a free loopback port
and returns once ``/ready`` answers; ``ServerProcess.stop()`` sends SIGTERM (the service drains) and returns the
exit code. Its output goes to a file, so that a chatty server never blocks on a full pipe. For scripts, benchmarks
and tests that need a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    started_s: float  # seconds from spawn to /ready
    log: Path  # the process's stdout and stderr (a file, so that a chatty server never blocks on a full pipe)
    final_output: str | None = None  # kept by stop(), which removes the log file

    def output(self) -> str:
        if self.final_output is not None:
            return self.final_output
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM, then the exit code (-9 if it had to be killed after ``timeout`` seconds)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -9
        if self.final_output is None:
            self.final_output = self.output()
            self.log.unlink(missing_ok=True)
        return code


def start_server(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300) -> ServerProcess:
    port = free_port()
    start = time.perf_counter()
    fd, name = tempfile.mkstemp(prefix="lslo-server-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--port",
                str(port),
                "--log-format",
                "text",
                "--log-level",
                "warning",
                *args,
            ],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", proc, 0.0, Path(name))
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"server exited with {proc.returncode}: {server.output()[-2000:]}")
        try:
            if httpx.get(server.url + "/ready", timeout=2).status_code == 200:
                server.started_s = time.perf_counter() - start
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop(timeout=5)
    raise RuntimeError(f"server did not become ready in {timeout:.0f}s: {server.output()[-2000:]}")
