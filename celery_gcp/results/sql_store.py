"""A result store in any SQL database SQLAlchemy 2 speaks (``db+postgresql://`` for Cloud SQL,
``db+mysql://``, ``db+sqlite:///path`` locally): ``pip install 'celery-gcp[sql]'``.

Five tables, created on first use (``checkfirst``: an existing table is kept as it is):

* task metas (``celery_taskmeta``, Celery's name and columns: ``task_id`` unique, ``status``,
  ``result``, ``traceback``, ``date_done``; plus ``meta``, the whole JSON record, and
  ``expires_at``);
* groups (``celery_tasksetmeta``: ``taskset_id`` unique, ``result`` the JSON list of ids);
* chord members (``celery_gcp_chord_parts``: unique ``(chord_id, idx)``, so a redelivered
  member is counted once, whoever commits first);
* members added to a header (``celery_gcp_chord_added``: unique ``(chord_id, task_id)``,
  ordered by ``id``);
* claims (``celery_gcp_claims``: unique ``key``).

Expiry is the ``expires_at`` column (seconds since the epoch by the store's clock): reads
ignore expired rows, :meth:`SqlStore.purge` deletes them, and the store purges by itself on a
write at most every ``purge_every`` seconds (no background process: Cloud Run may freeze one).

SQLAlchemy and the database driver are imported when a store is made, never before.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..exceptions import ImproperlyConfigured, ResultStoreError
from .sql_schema import TABLE_NAMES, create_tables, define_tables, import_sqlalchemy, make_engine
from .store import Meta, ResultStore

__all__ = ["SqlStore"]


def _parse_date(value: Any) -> datetime | None:
    """``date_done`` for its column (the meta keeps the original text)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class SqlStore(ResultStore):
    """Results in SQL tables through SQLAlchemy Core.

    ``url`` is a ``result_backend`` URL (``db+`` and a SQLAlchemy URL); ``engine_options``
    go to ``create_engine`` (``database_engine_options``); ``table_names`` and
    ``table_schemas`` map ``task`` / ``group`` / ``chord`` / ``added`` / ``claim`` to a table
    name and schema (``database_table_names``, ``database_table_schemas``; the chord, added
    and claim tables take the task table's schema unless named). ``clock`` gives seconds
    since the epoch.

    Example::

        store = SqlStore("db+sqlite:///results.db")
        store.set_meta("id-1", {"task_id": "id-1", "status": "SUCCESS", "result": 4}, 86400)
    """

    def __init__(self, url: str, *, engine_options: Mapping[str, Any] | None = None,
                 table_names: Mapping[str, str] | None = None,
                 table_schemas: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time, purge_every: float = 300.0) -> None:
        sa = self._sa = import_sqlalchemy()
        from sqlalchemy.engine import make_url

        if not url.startswith("db+"):
            raise ImproperlyConfigured(f"a SQL result_backend starts with 'db+': got {url!r}")
        try:
            target = make_url(url[3:])
        except sa.exc.ArgumentError as exc:
            raise ImproperlyConfigured(f"result_backend {url[:40]!r}...: {exc}") from None
        self.url = "db+" + target.render_as_string(hide_password=True)
        self._clock = clock
        self.purge_every = purge_every
        self._next_purge = float("-inf")  # the first write purges what an earlier run left
        self._ready = False
        self._ready_lock = threading.Lock()
        self._engine, self._serial = make_engine(sa, target, dict(engine_options or {}),
                                                 self.url)
        tables = self._tables = define_tables(sa, {**TABLE_NAMES, **(table_names or {})},
                                              table_schemas or {})
        self._tasks, self._groups, self._chords = tables.tasks, tables.groups, tables.chords
        self._added, self._claims = tables.added, tables.claims

    # -- setup -----------------------------------------------------------------------------

    def _create_tables(self) -> None:
        with self._ready_lock:
            if not self._ready:
                create_tables(self._sa, self._engine, self._tables)
                self._ready = True

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """A connection in a transaction (committed on exit); an unreachable database is a
        :class:`ResultStoreError` naming the URL (password masked)."""
        exc_mod = self._sa.exc
        try:
            if not self._ready:
                self._create_tables()
            with self._serial, self._engine.begin() as conn:
                yield conn
        except (exc_mod.OperationalError, exc_mod.InterfaceError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ResultStoreError(
                f"result store {self.url} could not be used: {reason} (check the URL, that "
                "the database is up and reachable, and its credentials)") from exc

    def _live(self, table: Any) -> Any:
        """Rows of ``table`` that have not expired."""
        return (table.c.expires_at.is_(None)) | (table.c.expires_at > self._clock())

    def _deadline(self, expires: float | None) -> float | None:
        return None if expires is None else self._clock() + expires

    def _after_write(self) -> None:
        """Purge expired rows if the last purge is ``purge_every`` seconds old."""
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + self.purge_every
            self.purge()

    def _native_insert(self, table: Any, key: Any, values: Mapping[str, Any],
                       only_expired: bool) -> int | None:
        """One INSERT ... ON CONFLICT statement where the dialect has it (PostgreSQL,
        SQLite): replaces the row holding the key (only an expired one if ``only_expired``);
        the rows written, or ``None`` for other dialects."""
        name = self._engine.dialect.name
        if name not in ("postgresql", "sqlite") or (
                name == "sqlite" and self._engine.dialect.dbapi.sqlite_version_info < (3, 35)):
            return None  # no ON CONFLICT ... RETURNING there
        module = __import__(f"sqlalchemy.dialects.{name}", fromlist=["insert"])
        insert = module.insert(table).values(**values)
        keys = list(table.primary_key.columns) if only_expired else [key]
        statement = insert.on_conflict_do_update(
            index_elements=keys, set_={k: insert.excluded[k] for k in values},
            where=(table.c.expires_at <= self._clock()) if only_expired else None)
        # RETURNING, not rowcount: some drivers report -1 for an INSERT's rowcount.
        with self._tx() as conn:
            return len(conn.execute(statement.returning(*table.primary_key.columns)).all())

    def _upsert(self, table: Any, key: Any, values: Mapping[str, Any]) -> None:
        """Insert or replace the row whose ``key`` column is ``values[key.name]``; elsewhere
        than PostgreSQL and SQLite, an UPDATE, an INSERT if none matched, an UPDATE again
        if a concurrent INSERT won."""
        if self._native_insert(table, key, values, only_expired=False) is not None:
            return
        update = table.update().where(key == values[key.name]).values(**values)
        with self._tx() as conn:
            if conn.execute(update).rowcount:
                return
        try:
            with self._tx() as conn:
                conn.execute(table.insert().values(**values))
        except self._sa.exc.IntegrityError:
            with self._tx() as conn:
                conn.execute(update)

    def _insert_new(self, table: Any, where: Any, values: Mapping[str, Any]) -> bool:
        """Insert a row under its primary key unless a live one holds it (an expired one is
        replaced): ``True`` if this call wrote it."""
        written = self._native_insert(table, None, values, only_expired=True)
        if written is not None:
            return written > 0
        try:
            with self._tx() as conn:
                conn.execute(table.delete().where(where & (table.c.expires_at <= self._clock())))
                conn.execute(table.insert().values(**values))
        except self._sa.exc.IntegrityError:
            return False
        return True

    # -- task metas ------------------------------------------------------------------------

    def set_meta(self, task_id: str, meta: Mapping[str, Any], expires: float | None) -> None:
        t = self._tasks
        self._upsert(t, t.c.task_id, {
            "task_id": task_id, "status": meta.get("status"),
            "result": json.dumps(meta["result"]) if "result" in meta else None,
            "traceback": meta.get("traceback"), "date_done": _parse_date(meta.get("date_done")),
            "meta": json.dumps({k: v for k, v in meta.items() if k != "result"}),
            "expires_at": self._deadline(expires)})
        self._after_write()

    @staticmethod
    def _meta_of(row: Any) -> Meta:
        meta: Meta = json.loads(row.meta)
        if row.result is not None:
            meta["result"] = json.loads(row.result)
        return meta

    def get_meta(self, task_id: str) -> Meta | None:
        return self.get_metas([task_id])[0]

    def recent(self, limit: int = 50) -> list[Meta]:
        t = self._tasks
        query = (self._sa.select(t.c.result, t.c.meta)
                 .where(t.c.date_done.is_not(None) & self._live(t))
                 .order_by(t.c.date_done.desc()).limit(limit))
        with self._tx() as conn:
            return [self._meta_of(row) for row in conn.execute(query)]

    def get_metas(self, task_ids: Sequence[str]) -> list[Meta | None]:
        t = self._tasks
        found: dict[str, Meta] = {}
        unique = list(dict.fromkeys(task_ids))
        with self._tx() as conn:
            for start in range(0, len(unique), 500):  # within every dialect's parameter limit
                query = (self._sa.select(t.c.task_id, t.c.result, t.c.meta)
                         .where(t.c.task_id.in_(unique[start:start + 500]) & self._live(t)))
                found.update((row.task_id, self._meta_of(row)) for row in conn.execute(query))
        return [found.get(task_id) for task_id in task_ids]

    def forget(self, task_id: str) -> None:
        with self._tx() as conn:
            conn.execute(self._tasks.delete().where(self._tasks.c.task_id == task_id))

    # -- groups ----------------------------------------------------------------------------

    def save_group(self, group_id: str, task_ids: Sequence[str], expires: float | None) -> None:
        g = self._groups
        self._upsert(g, g.c.taskset_id, {
            "taskset_id": group_id, "result": json.dumps(list(task_ids)),
            "date_done": datetime.now(UTC), "expires_at": self._deadline(expires)})
        self._after_write()

    def restore_group(self, group_id: str) -> list[str] | None:
        g = self._groups
        with self._tx() as conn:
            found = conn.execute(self._sa.select(g.c.result).where(
                (g.c.taskset_id == group_id) & self._live(g))).scalar()
        return None if found is None else list(json.loads(found))

    def delete_group(self, group_id: str) -> None:
        with self._tx() as conn:
            conn.execute(self._groups.delete().where(self._groups.c.taskset_id == group_id))

    # -- chords and claims -----------------------------------------------------------------

    def chord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        c = self._chords
        where = (c.c.chord_id == chord_id) & (c.c.idx == index)
        self._insert_new(c, where, {"chord_id": chord_id, "idx": index,
                                    "expires_at": self._deadline(expires)})
        # Counted after our insert committed: of members finishing together, the last to
        # count sees every committed member, so one of them always sees the full count.
        with self._tx() as conn:
            done = conn.execute(self._sa.select(self._sa.func.count()).select_from(c).where(
                (c.c.chord_id == chord_id) & self._live(c))).scalar_one()
        self._after_write()
        return int(done)

    def chord_add(self, chord_id: str, task_id: str, expires: float | None) -> list[str]:
        a = self._added
        try:
            with self._tx() as conn:
                conn.execute(a.insert().values(chord_id=chord_id, task_id=task_id,
                                               expires_at=self._deadline(expires)))
        except self._sa.exc.IntegrityError:
            pass  # added before (a redelivered adder): it keeps its first place
        self._after_write()
        return self.chord_added(chord_id)

    def chord_added(self, chord_id: str) -> list[str]:
        a = self._added
        with self._tx() as conn:
            rows = conn.execute(self._sa.select(a.c.task_id).where(
                (a.c.chord_id == chord_id) & self._live(a)).order_by(a.c.id))
            return [str(row[0]) for row in rows]

    def claim(self, key: str, expires: float | None) -> bool:
        c = self._claims
        won = self._insert_new(c, c.c.key == key, {"key": key,
                                                   "expires_at": self._deadline(expires)})
        self._after_write()
        return won

    # -- upkeep ----------------------------------------------------------------------------

    def purge(self) -> int:
        """Delete every expired row now; return how many."""
        now, gone = self._clock(), 0
        with self._tx() as conn:
            for table in self._tables.all():
                gone += conn.execute(table.delete().where(table.c.expires_at <= now)).rowcount
        return gone

    def close(self) -> None:
        """Close the pooled connections (the store reconnects when used again)."""
        self._engine.dispose()
