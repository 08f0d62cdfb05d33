"""A real PostgreSQL server for the tests, started by them on 127.0.0.1.

The binaries come from the ``pgserver`` wheel (PostgreSQL built for pip: no apt, no Docker);
``initdb`` makes a cluster in a temporary directory, ``postgres`` serves it on a free port,
and the session-scoped fixture stops it (fast shutdown) and deletes the directory at the end.
PostgreSQL refuses to run as root, so under root it runs as ``nobody``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PgServer", "postgres_server"]

_DEADLINE = 60.0  # seconds for the server to accept connections


def _binaries() -> Path:
    # Found without importing pgserver: its import sets up per-user directories we don't use.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the tests need pgserver's PostgreSQL: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in ``root``; :meth:`fresh_database` gives each test its own."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="celery-gcp-pg-"))
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            self._user = {"user": "nobody", "group": "nogroup"}
            shutil.chown(self.root, "nobody", "nogroup")
        self.data = self.root / "data"
        subprocess.run(
            [_binaries() / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync", "--locale=C"],
            check=True, capture_output=True, **self._user)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database (psycopg 3)."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Serve on a free port; a port taken meanwhile is retried with another."""
        for _ in range(5):
            self.port = _free_port()
            log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the server's lifetime
            self.process = subprocess.Popen(
                [_binaries() / "postgres", "-D", self.data, "-h", "127.0.0.1",
                 "-p", str(self.port), "-k", self.root, "-F", "-c", "max_connections=200",
                 "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
                stdout=log, stderr=log, **self._user)
            log.close()
            if self._wait_ready():
                return
        raise RuntimeError(f"PostgreSQL did not start: see {self.root / 'postgres.log'}")

    def _wait_ready(self) -> bool:
        import psycopg

        assert self.process is not None
        deadline = time.monotonic() + _DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # exited: most likely the port was taken
            try:
                psycopg.connect(self.url.replace("+psycopg", ""), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)  # polling a condition (accepting connections) to a deadline
        return False

    def fresh_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (its connections closed by force)."""
        self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the cluster."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session, stopped at its end."""
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
