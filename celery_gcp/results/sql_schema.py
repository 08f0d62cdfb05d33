"""The SQL result store's database: its engine and its tables (SQLAlchemy Core).

:func:`make_engine` builds the engine for a ``result_backend`` URL (falling back to the
driver that is installed; SQLite in WAL mode with a busy timeout, so one engine serves every
thread of a worker); :func:`define_tables` declares the five tables :mod:`.sql_store`
documents, under Celery's names unless ``database_table_names`` names others. SQLAlchemy is
imported by the caller (:func:`import_sqlalchemy`), never at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import ImproperlyConfigured

__all__ = ["INSTALL", "TABLE_NAMES", "Tables", "create_tables", "define_tables",
           "import_sqlalchemy", "make_engine", "sqlite_wal"]

INSTALL = "pip install 'celery-gcp[sql]'"
#: dialect -> (SQLAlchemy's default driver module, the driver we fall back to, its pip name)
_DRIVERS = {"postgresql": ("psycopg2", "psycopg", "psycopg[binary]"),
            "mysql": ("MySQLdb", "pymysql", "pymysql")}
#: Celery's table names (database_table_names keys ``task`` and ``group``) and ours.
TABLE_NAMES = {"task": "celery_taskmeta", "group": "celery_tasksetmeta",
               "chord": "celery_gcp_chord_parts", "claim": "celery_gcp_claims",
               "added": "celery_gcp_chord_added"}
_ID = 155  # Celery's task_id column length
_CREATE_ATTEMPTS = 3  # per table: ours, then a check after another process made it


def import_sqlalchemy() -> Any:
    """The ``sqlalchemy`` module, or :class:`ImproperlyConfigured` naming the extra."""
    try:
        import sqlalchemy
    except ImportError:
        raise ImproperlyConfigured(
            f"a db+ result_backend needs SQLAlchemy 2: {INSTALL}") from None
    return sqlalchemy


def make_engine(sa: Any, target: Any, options: dict[str, Any], url: str,
                ) -> tuple[Any, contextlib.AbstractContextManager[Any]]:
    """The engine for SQLAlchemy URL ``target`` (``url``: how errors name it) with
    ``create_engine`` ``options``, and what serializes its transactions (a lock for an
    in-memory SQLite database, whose one connection all threads share; else nothing)."""
    serial: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    dialect = target.get_backend_name()
    if dialect in _DRIVERS and "+" not in target.drivername:
        default, fallback, _ = _DRIVERS[dialect]
        if not importlib.util.find_spec(default) and importlib.util.find_spec(fallback):
            target = target.set(drivername=f"{dialect}+{fallback}")
    if dialect == "sqlite":
        # One engine serves every thread of the worker; WAL lets readers and a writer work
        # at once, and the busy timeout makes writers queue instead of failing.
        connect_args = options.setdefault("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        if target.database in (None, "", ":memory:"):
            # One shared connection, else each thread would see its own empty database; its
            # transactions taken one at a time.
            options.setdefault("poolclass", sa.pool.StaticPool)
            serial = threading.RLock()
    try:
        engine = sa.create_engine(target, **options)
    except ImportError as exc:
        driver = _DRIVERS.get(dialect, (None, None, exc.name or "its driver"))[2]
        raise ImproperlyConfigured(
            f"result_backend {url!r} needs the database driver {exc.name!r}: "
            f"{INSTALL} and pip install {driver!r}") from None
    except (TypeError, sa.exc.ArgumentError) as exc:
        raise ImproperlyConfigured(
            f"database_engine_options for {url!r} were refused: {exc}") from None
    if dialect == "sqlite" and target.database not in (None, "", ":memory:"):
        sa.event.listen(engine, "connect", sqlite_wal)
    return engine, serial


@dataclass(frozen=True)
class Tables:
    """The store's tables, in one ``MetaData``."""

    metadata: Any
    tasks: Any
    groups: Any
    chords: Any
    added: Any
    claims: Any

    def all(self) -> tuple[Any, ...]:
        """Every table, for what touches them all (purging)."""
        return (self.tasks, self.groups, self.chords, self.added, self.claims)


def define_tables(sa: Any, names: Mapping[str, str], schemas: Mapping[str, str]) -> Tables:
    """The tables under ``names`` (:data:`TABLE_NAMES`' keys) and ``schemas`` (the chord,
    added and claim tables take the task table's schema unless named)."""
    def schema(kind: str) -> str | None:
        return schemas.get(kind, schemas.get("task") if kind != "group" else None)

    m = sa.MetaData()
    col, str_, txt, flt = sa.Column, sa.String, sa.Text, sa.Float
    return Tables(
        metadata=m,
        tasks=sa.Table(
            names["task"], m, col("id", sa.Integer, primary_key=True, autoincrement=True),
            col("task_id", str_(_ID), nullable=False, unique=True), col("status", str_(50)),
            col("result", txt), col("traceback", txt), col("date_done", sa.DateTime(timezone=True)),
            col("meta", txt, nullable=False), col("expires_at", flt, index=True),
            schema=schema("task")),
        groups=sa.Table(
            names["group"], m, col("id", sa.Integer, primary_key=True, autoincrement=True),
            col("taskset_id", str_(_ID), nullable=False, unique=True),
            col("result", txt, nullable=False), col("date_done", sa.DateTime(timezone=True)),
            col("expires_at", flt, index=True), schema=schema("group")),
        chords=sa.Table(
            names["chord"], m, col("chord_id", str_(_ID), primary_key=True),
            col("idx", sa.Integer, primary_key=True, autoincrement=False),
            col("expires_at", flt, index=True), schema=schema("chord")),
        added=sa.Table(
            names["added"], m, col("id", sa.Integer, primary_key=True, autoincrement=True),
            col("chord_id", str_(_ID), nullable=False), col("task_id", str_(_ID), nullable=False),
            col("expires_at", flt, index=True), sa.UniqueConstraint("chord_id", "task_id"),
            schema=schema("added")),
        claims=sa.Table(
            names["claim"], m, col("key", str_(255), primary_key=True),
            col("expires_at", flt, index=True), schema=schema("claim")))


def create_tables(sa: Any, engine: Any, tables: Tables) -> None:
    """Create each of ``tables`` the database lacks (``checkfirst``: one that exists is
    kept as it is)."""
    for table in tables.metadata.sorted_tables:
        # Workers starting together on one database race to create each table: a CREATE
        # that fails because another process made the table between our check and our
        # statement (SQLite: OperationalError; PostgreSQL: an IntegrityError on its
        # catalog) is followed by a check that now finds it.
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                table.create(engine, checkfirst=True)
                break
            except sa.exc.DBAPIError:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise


#: How long a connection asks again to put a new SQLite database in WAL mode while others
#: hold it (the busy timeout's length).
_WAL_WAIT = 30.0


def sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection of the store in WAL mode (readers never wait for a writer).

    Switching a database to WAL needs it to itself, and SQLite answers "database is locked"
    at once, without its busy wait, to a connection that asks while another one holds it
    (several workers meeting a new database together): it is asked again, briefly, until
    the switch is made or found made.
    """
    import sqlite3

    deadline = time.monotonic() + _WAL_WAIT
    cursor = dbapi_connection.cursor()
    try:
        while True:
            try:
                if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    finally:
        cursor.close()
