"""The SQL store's own behaviour, on SQLite and on a real PostgreSQL (tests/results/pg_server.py):
tables on first use, expiry and purge (a manual clock), the purge schedule, the CLI's
``results purge``, chord counting from many threads and processes, the settings, and the
errors for a missing driver or an unreachable database."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from celery_gcp import Celery
from celery_gcp.cli import main
from celery_gcp.exceptions import BackendError, ImproperlyConfigured
from celery_gcp.results import store_for_url
from celery_gcp.results.sql_store import SqlStore

from .pg_server import PgServer, _free_port

TABLES = {"celery_taskmeta", "celery_tasksetmeta", "celery_gcp_chord_parts", "celery_gcp_claims",
          "celery_gcp_chord_added"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``db+`` URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"db+sqlite:///{tmp_path / 'results.db'}"
        return
    server: PgServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    yield "db+" + url
    server.drop_database(url)


def _rows(store: SqlStore, table: str) -> int:
    with store._engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _meta(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "status": "SUCCESS", "result": [1, {"x": None}],
            "traceback": None, "date_done": "2026-12-02T10:00:00+00:00"}


def test_tables_are_created_on_first_use_with_celerys_columns(db_url: str) -> None:
    store = SqlStore(db_url)
    assert set(sa.inspect(store._engine).get_table_names()) == set()  # nothing until used
    assert store.get_meta("absent") is None
    assert set(sa.inspect(store._engine).get_table_names()) == TABLES
    columns = {c["name"] for c in sa.inspect(store._engine).get_columns("celery_taskmeta")}
    assert {"task_id", "status", "result", "traceback", "date_done", "expires_at"} <= columns
    store.set_meta("t", _meta("t"), None)
    store.close()
    again = SqlStore(db_url)  # a second process: the tables are there, and kept
    assert again.get_meta("t") == _meta("t")
    with again._engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, result FROM celery_taskmeta")).one()
    assert tuple(row) == ("SUCCESS", '[1, {"x": null}]')
    again.close()


def test_expired_rows_are_ignored_then_purged(db_url: str) -> None:
    clock = Clock()
    store = SqlStore(db_url, clock=clock, purge_every=10_000)
    store.set_meta("short", _meta("short"), 10)
    store.set_meta("long", _meta("long"), 100)
    store.save_group("g", ["short", "long"], 10)
    assert store.chord_part_done("c", 0, 10) == 1
    assert store.claim("k", 10) is True
    clock.now += 10  # an expiry is inclusive: at the deadline the record is gone
    assert store.get_metas(["short", "long"]) == [None, _meta("long")]
    assert store.restore_group("g") is None
    assert store.chord_part_done("c", 1, 10) == 1  # the expired member 0 no longer counts
    assert store.claim("k", 10) is True  # an expired claim can be won again
    assert _rows(store, "celery_taskmeta") == 2  # ignored, not yet deleted
    assert store.purge() == 3  # "short", the group, chord member 0
    assert _rows(store, "celery_taskmeta") == 1
    clock.now += 100
    assert store.purge() == 3  # "long", chord member 1, the claim
    assert all(_rows(store, table) == 0 for table in TABLES)
    store.close()


def test_writes_purge_at_most_every_purge_every_seconds(db_url: str) -> None:
    clock = Clock()
    store = SqlStore(db_url, clock=clock, purge_every=300)
    store.set_meta("old", _meta("old"), 5)  # the first write purges (nothing yet)
    clock.now += 60
    store.set_meta("new", _meta("new"), None)
    assert _rows(store, "celery_taskmeta") == 2  # "old" expired, but the last purge is recent
    clock.now += 240
    store.claim("any", None)  # 300 s since the last purge: this write purges
    assert _rows(store, "celery_taskmeta") == 1
    assert store.get_meta("new") == _meta("new")
    store.close()


def _write_app(tmp_path: Path, backend: str | None) -> str:
    name = f"results_app_{uuid.uuid4().hex[:8]}"
    setting = f"result_backend={backend!r}" if backend else ""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""\
        from celery_gcp import Celery
        app = Celery("proj", {setting})
        """))
    return name


def test_cli_results_purge(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    past = SqlStore(db_url, clock=lambda: 0.0)  # records that expired long ago
    for task_id in ("a", "b"):
        past.set_meta(task_id, _meta(task_id), 60)
    past.set_meta("kept", _meta("kept"), None)
    past.close()
    result = CliRunner().invoke(main, ["-A", _write_app(tmp_path, db_url), "results", "purge"])
    assert result.exit_code == 0, result.output
    assert result.output == f"purged 2 expired records from {db_url}\n"
    after = SqlStore(db_url)
    assert after.get_meta("kept") == _meta("kept")
    after.close()


def test_cli_results_purge_errors_are_one_line(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    none = CliRunner().invoke(main, ["-A", _write_app(tmp_path, None), "results", "purge"])
    assert none.exit_code == 1
    assert none.output.startswith("Error: the app has no result_backend")
    down = f"db+postgresql+psycopg://u:hunter2@127.0.0.1:{_free_port()}/x?connect_timeout=5"
    out = subprocess.run(  # a real process: what a user sees, all of it
        [sys.executable, "-m", "celery_gcp.cli", "-A", _write_app(tmp_path, down),
         "results", "purge"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr
    assert "u:***@127.0.0.1" in out.stderr
    assert "hunter2" not in out.stderr
    assert "Traceback" not in out.stderr


def test_chord_counting_from_many_threads_is_exact(db_url: str) -> None:
    store = SqlStore(db_url)
    counts: list[int] = []
    barrier = threading.Barrier(12)

    def member(worker: int) -> None:
        barrier.wait()
        for index in range(worker % 6, 60, 6):  # each index counted by two threads
            counts.append(store.chord_part_done("race", index, None))

    threads = [threading.Thread(target=member, args=(w,)) for w in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(counts) == 120
    assert max(counts) == 60
    assert store.chord_part_done("race", 0, None) == 60
    store.close()


def _count_in_process(url: str, indexes: list[int], barrier: Any, out: Any) -> None:
    store = SqlStore(url)
    barrier.wait(timeout=60)  # every process meets a new database at once
    out.put([store.chord_part_done("procs", index, None) for index in indexes])
    store.close()


def test_chord_counting_from_several_processes(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    # 40 members; every member is counted by two processes (a redelivery).
    plans = [[i for i in range(40) if i % 2 == p % 2] for p in range(4)]
    procs = [ctx.Process(target=_count_in_process, args=(db_url, plan, barrier, out))
             for plan in plans]
    for proc in procs:
        proc.start()
    counts = [c for _ in procs for c in out.get(timeout=90)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert len(counts) == 80
    assert max(counts) == 40
    after = SqlStore(db_url)
    assert after.chord_part_done("procs", 39, None) == 40
    after.close()


def test_a_new_database_held_by_another_connection_is_switched_to_wal_once_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Several workers meeting a new SQLite database at once: the one that asks for WAL while
    # another holds the database is told "locked" at once (SQLite's busy wait does not cover
    # it). It must ask again, not fail. Failure injection: the other holder lets go when the
    # store first pauses to ask again.
    from celery_gcp.results import sql_schema

    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        if not pauses:
            holder.execute("COMMIT")
        pauses.append(seconds)

    monkeypatch.setattr(sql_schema.time, "sleep", pause)
    connection = sqlite3.connect(path, timeout=0)
    sql_schema.sqlite_wal(connection, None)
    assert pauses  # it was refused first
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    holder.close()


def test_workers_starting_together_each_create_or_find_every_table(db_url: str) -> None:
    # Failure injection: just before this store creates each table, another store (another
    # worker starting on the same database) creates it first, so every CREATE this store
    # sends fails with "already exists". It must find the tables and go on.
    other = SqlStore(db_url)
    store = SqlStore(db_url)
    raced: list[str] = []

    def create_it_first(table: sa.Table, connection: Any, **_: Any) -> None:
        if table.name not in raced:
            raced.append(table.name)
            other._tables.metadata.tables[table.key].create(
                other._engine, checkfirst=True)

    for table in store._tables.metadata.sorted_tables:
        sa.event.listen(table, "before_create", create_it_first)
    store.set_meta("t", _meta("t"), None)
    assert set(raced) == TABLES
    assert other.get_meta("t")["status"] == "SUCCESS"
    store.close()
    other.close()


def test_urls_settings_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = store_for_url("db+sqlite:///relative.db")
    assert isinstance(relative, SqlStore)
    relative.set_meta("t", _meta("t"), None)
    assert (tmp_path / "relative.db").exists()  # relative to the working directory
    app = Celery("proj", backend=f"db+sqlite:///{tmp_path / 'named.db'}")
    app.conf.update(database_table_names={"task": "my_tasks", "group": "my_groups"},
                    database_engine_options={"pool_pre_ping": True})
    store = app.backend
    assert isinstance(store, SqlStore)
    store.set_meta("t", _meta("t"), None)
    assert {"my_tasks", "my_groups"} <= set(sa.inspect(store._engine).get_table_names())
    assert store._engine.pool._pre_ping
    memory = store_for_url("db+sqlite://")  # in memory: one database shared by threads
    memory.set_meta("m", _meta("m"), None)
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.append(memory.get_meta("m")))
    reader.start()
    reader.join()
    assert seen == [_meta("m")]
    for made in (relative, store, memory):
        made.close()
    with pytest.raises(ImproperlyConfigured, match=r"db\+<dialect>://"):
        store_for_url("db://nope")


def test_a_missing_sqlalchemy_or_driver_names_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # failure injection: not installed
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'celery-gcp\[sql\]'"):
        store_for_url("db+sqlite:///x.db")
    monkeypatch.undo()
    for module in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImproperlyConfigured, match=r"celery-gcp\[sql\].*psycopg\[binary\]"):
        store_for_url("db+postgresql://u@127.0.0.1/x")
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    monkeypatch.setitem(sys.modules, "pymysql", None)
    with pytest.raises(ImproperlyConfigured, match="pymysql"):
        store_for_url("db+mysql://u@127.0.0.1/x")


def test_an_unreachable_database_names_the_url_with_the_password_masked() -> None:
    url = f"db+postgresql+psycopg://app:s3cret@127.0.0.1:{_free_port()}/results"
    store = store_for_url(url + "?connect_timeout=5")
    with pytest.raises(BackendError) as caught:
        store.set_meta("t", _meta("t"), None)
    store.close()
    message = str(caught.value)
    assert "db+postgresql+psycopg://app:***@127.0.0.1" in message
    assert "s3cret" not in message
    assert "could not be used" in message


def test_making_the_app_does_not_import_sqlalchemy() -> None:
    code = ("from celery_gcp import Celery\nimport sys\n"
            "app = Celery('p', backend='db+sqlite:///x.db')\n"
            "print('sqlalchemy' in sys.modules)\n"
            "app.backend\nprint('sqlalchemy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "True"], out.stderr
