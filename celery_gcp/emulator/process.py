"""The emulator in a child process (``celery-gcp emulator``), as ``celery-gcp dev`` runs it.

In its own process the emulator does not share a GIL with the worker and the code sending
tasks: on 2 cores that roughly doubles end-to-end throughput (benchmarks/transport.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import httpx

from .clients import tasks_client

__all__ = ["EmulatorProcess"]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmulatorProcess:
    """``celery-gcp emulator`` on free loopback ports, started and stopped with the context."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = _free_port(host)
        self.http_port = _free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` of its gRPC server."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Its process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def http_url(self) -> str:
        """Base URL of its HTTP side (keys, status)."""
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        """Start it; returns once both ports accept connections."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "celery_gcp.cli", "emulator", "--host", self.host,
             "--port", str(self.port), "--http-port", str(self.http_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                for port in (self.port, self.http_port):
                    socket.create_connection((self.host, port), timeout=1).close()
                return self
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError("the emulator process exited at start") from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the emulator did not start within {timeout}s") from None
                time.sleep(0.05)  # polling its ports, bounded by the deadline

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def pending(self) -> int:
        """Tasks its queues hold plus Cloud Scheduler executions in flight (0: idle); see
        :meth:`~celery_gcp.emulator.EmulatorServer.pending`."""
        return int(httpx.get(f"{self.http_url}/status", timeout=10).json()["pending"])

    def tasks_client(self) -> Any:
        """A sync ``CloudTasksClient`` connected to it."""
        return tasks_client(self.address)
