"""The Redis result store (``redis://``, ``rediss://``): Memorystore for Redis or Valkey, any Redis.

Records live under Celery's key names, so tools that read Celery's Redis result backend (and
Celery's own ``AsyncResult`` / ``GroupResult.restore``) see the same records:

=======================================  ==================================================
``celery-task-meta-<task id>``            a task's meta, JSON (Celery's result layout)
``celery-taskset-meta-<group id>``        a group, JSON in Celery's ``GroupResult`` form
``celery-gcp-chord-<chord id>``           a set of the chord header indexes that finished
``celery-gcp-chord-added-<chord id>``     a list of the ids added to a header (add_to_chord)
``celery-gcp-claim-<key>``                a claim marker
=======================================  ==================================================

each prefixed with ``result_backend_transport_options["global_keyprefix"]`` as in Celery.
Expiry is Redis's own (``SET ... PX``, ``PEXPIRE``), so :meth:`RedisStore.purge` has nothing
to do. Only plain commands are used (no modules, no Lua), which Memorystore and Valkey serve.

The sync methods share one connection pool (redis-py's, thread safe); the async twins use
``redis.asyncio`` with one client per event loop (asyncio connections belong to the loop that
opened them), closed when that loop shuts down or the store is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio

from ..exceptions import ImproperlyConfigured, ResultStoreError
from ..utils.urls import masked_url
from .batching import Batch
from .redis_batch import BatchLink, Command, finish
from .store import Meta, ResultStore

__all__ = ["RedisStore"]

#: The most task records :meth:`RedisStore.recent` reads.
_SCAN_LIMIT = 5000

#: Celery's settings the store reads (``app.conf``), by redis-py's connection option.
SETTINGS = {
    "socket_timeout": "redis_socket_timeout",
    "socket_connect_timeout": "redis_socket_connect_timeout",
    "max_connections": "redis_max_connections",
}
#: ``ssl_cert_reqs`` in a ``rediss://`` URL: Celery's spellings, as redis-py spells them.
CERT_REQS = {"CERT_REQUIRED": "required", "CERT_OPTIONAL": "optional", "CERT_NONE": "none",
             "required": "required", "optional": "optional", "none": "none"}
#: What redis-py raises when the server cannot be reached or refuses the credentials.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _ssl_query(url: str) -> str:
    """``url`` with Celery's ``ssl_cert_reqs=CERT_...`` spelt as redis-py reads it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    fixed = []
    for name, value in query:
        if name == "ssl_cert_reqs":
            if value not in CERT_REQS:
                raise ImproperlyConfigured(
                    f"result_backend {masked_url(url)!r}: ssl_cert_reqs={value!r} is not "
                    f"one of {', '.join(CERT_REQS)}")
            value = CERT_REQS[value]
        fixed.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(fixed)))


def _options(conf: Mapping[str, Any] | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """redis-py's connection options: Celery's settings in ``conf``, then ``options``."""
    found: dict[str, Any] = {}
    for option, setting in SETTINGS.items():
        value = None if conf is None else conf.get(setting)
        if value is not None:
            found[option] = int(value) if option == "max_connections" else float(value)
    found.update(options)
    return found


def _px(expires: float | None) -> int | None:
    """Milliseconds to keep a record (at least one: Redis refuses ``PX 0``), or ``None``."""
    return None if expires is None else max(1, round(expires * 1000))


def _group_record(group_id: str, task_ids: Sequence[str]) -> str:
    # Celery's GroupResult.as_tuple(): ((id, parent), [((task id, parent), None), ...]).
    return json.dumps({"result": [[group_id, None], [[[tid, None], None] for tid in task_ids]]})


def _group_ids(raw: bytes | str | None) -> list[str] | None:
    if raw is None:
        return None
    members = json.loads(raw)["result"][1]
    return [str(member[0][0]) for member in members]


def _first_each(raws: Sequence[bytes | str]) -> list[str]:
    """The ids of a list, each once, in the order first seen."""
    ids = (raw.decode() if isinstance(raw, bytes) else str(raw) for raw in raws)
    return list(dict.fromkeys(ids))


def _meta(raw: bytes | str | None) -> Meta | None:
    return None if raw is None else dict(json.loads(raw))


class RedisStore(ResultStore):
    """Results in Redis, through redis-py.

    ``url`` is Celery's ``result_backend`` URL (``redis://:password@host:6379/0``,
    ``rediss://host:6378/0?ssl_cert_reqs=required``); ``conf`` (``app.conf``) gives Celery's
    settings ``redis_socket_timeout``, ``redis_socket_connect_timeout``,
    ``redis_max_connections`` and ``result_backend_transport_options["global_keyprefix"]``;
    other keyword ``options`` go to redis-py's connection pool as they are.

    Example::

        store = RedisStore("redis://127.0.0.1:6379/0")
        store.claim("body-of-chord-1", 3600)   # True once
    """

    def __init__(self, url: str, *, conf: Mapping[str, Any] | None = None,
                 **options: Any) -> None:
        self.url = masked_url(url)
        self._url = _ssl_query(url) if url.startswith("rediss://") else url
        self._options = _options(conf, options)
        transport = (conf or {}).get("result_backend_transport_options") or {}
        self._prefix = str(transport.get("global_keyprefix", ""))
        self._pool = redis.ConnectionPool.from_url(self._url, **self._options)
        self._client = redis.Redis(connection_pool=self._pool)
        self._lock = threading.Lock()
        # event loop -> (its client, the async generator that closes it when the loop ends)
        self._aclients: dict[asyncio.AbstractEventLoop,
                             tuple[redis.asyncio.Redis, AsyncGenerator[None, None]]] = {}
        # event loop -> its GETs and SETs on their way, sent together (group commit), and the
        # connection they go through
        self._abatches: dict[asyncio.AbstractEventLoop,
                             tuple[Batch[Command, Any], BatchLink]] = {}

    # -- keys and errors -------------------------------------------------------------------

    def _meta_key(self, task_id: str) -> str:
        return f"{self._prefix}celery-task-meta-{task_id}"

    def _group_key(self, group_id: str) -> str:
        return f"{self._prefix}celery-taskset-meta-{group_id}"

    def _chord_key(self, chord_id: str) -> str:
        return f"{self._prefix}celery-gcp-chord-{chord_id}"

    def _claim_key(self, key: str) -> str:
        return f"{self._prefix}celery-gcp-claim-{key}"

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn redis-py's "cannot reach" errors into one naming the store's URL."""
        try:
            yield
        except UNREACHABLE as exc:
            raise ResultStoreError(
                f"the result store {self.url} cannot be reached ({exc}): check that the "
                f"server runs and that result_backend names it (host, port, password, "
                f"ssl_cert_reqs)") from exc

    # -- sync ------------------------------------------------------------------------------

    def set_meta(self, task_id: str, meta: Mapping[str, Any], expires: float | None) -> None:
        with self._reaching():
            self._client.set(self._meta_key(task_id), json.dumps(meta), px=_px(expires))

    def get_meta(self, task_id: str) -> Meta | None:
        with self._reaching():
            return _meta(self._client.get(self._meta_key(task_id)))

    def get_metas(self, task_ids: Sequence[str]) -> list[Meta | None]:
        if not task_ids:
            return []
        with self._reaching():
            raws = self._client.mget([self._meta_key(t) for t in task_ids])
        return [_meta(raw) for raw in raws]

    def recent(self, limit: int = 50) -> list[Meta]:
        # Redis keeps no order of finishing: scan the metas (a bounded number), newest first.
        with self._reaching():
            keys = list(itertools.islice(
                self._client.scan_iter(match=self._meta_key("*"), count=500), _SCAN_LIMIT))
            raws = self._client.mget(keys) if keys else []
        metas = [m for m in (_meta(raw) for raw in raws) if m is not None and m.get("date_done")]
        return sorted(metas, key=lambda m: str(m["date_done"]), reverse=True)[:limit]

    def forget(self, task_id: str) -> None:
        with self._reaching():
            self._client.delete(self._meta_key(task_id))

    def save_group(self, group_id: str, task_ids: Sequence[str], expires: float | None) -> None:
        with self._reaching():
            self._client.set(self._group_key(group_id), _group_record(group_id, task_ids),
                             px=_px(expires))

    def restore_group(self, group_id: str) -> list[str] | None:
        with self._reaching():
            return _group_ids(self._client.get(self._group_key(group_id)))

    def delete_group(self, group_id: str) -> None:
        with self._reaching():
            self._client.delete(self._group_key(group_id))

    def _chord_pipeline(self, pipe: Any, chord_id: str, index: int,
                        expires: float | None) -> None:
        # MULTI/EXEC: the add and the count are one step, so two members finishing together
        # see 1 and 2 (never both 2); SADD of an index already there counts it once.
        key = self._chord_key(chord_id)
        pipe.sadd(key, str(index))
        pipe.scard(key)
        px = _px(expires)
        if px is not None:
            pipe.pexpire(key, px)

    def chord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        with self._reaching(), self._client.pipeline(transaction=True) as pipe:
            self._chord_pipeline(pipe, chord_id, index, expires)
            return int(pipe.execute()[1])

    def chord_add(self, chord_id: str, task_id: str, expires: float | None) -> list[str]:
        key = f"{self._prefix}celery-gcp-chord-added-{chord_id}"
        with self._reaching(), self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, task_id)  # a redelivered adder pushes it again: read once
            px = _px(expires)
            if px is not None:
                pipe.pexpire(key, px)
            pipe.lrange(key, 0, -1)
            return _first_each(pipe.execute()[-1])

    def chord_added(self, chord_id: str) -> list[str]:
        with self._reaching():
            return _first_each(self._client.lrange(
                f"{self._prefix}celery-gcp-chord-added-{chord_id}", 0, -1))

    def claim(self, key: str, expires: float | None) -> bool:
        with self._reaching():
            return bool(self._client.set(self._claim_key(key), b"1", nx=True, px=_px(expires)))

    def close(self) -> None:
        """Close the pooled connections (they reopen on the next call), and the async
        clients of event loops still running."""
        self._pool.disconnect()
        with self._lock:
            clients, self._aclients = self._aclients, {}
            batches, self._abatches = self._abatches, {}
        for loop, (_, closer) in clients.items():
            if not loop.is_closed():
                found = batches.get(loop)
                asyncio.run_coroutine_threadsafe(
                    finish(closer, None if found is None else found[1]), loop)

    # -- async -----------------------------------------------------------------------------

    async def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        found = self._aclients.get(loop)
        if found is not None:
            return found[0]
        client = redis.asyncio.Redis.from_url(self._url, **self._options)
        closer = self._closes_at_loop_end(loop, client)
        await anext(closer)  # started: asyncio now finalizes it when the loop shuts down
        with self._lock:
            self._aclients[loop] = (client, closer)
        return client

    async def _closes_at_loop_end(self, loop: asyncio.AbstractEventLoop,
                                  client: redis.asyncio.Redis) -> AsyncGenerator[None, None]:
        # asyncio.run (and uvicorn, and pytest-asyncio) call loop.shutdown_asyncgens() before
        # closing a loop: that runs this finally there, so the loop's connections close in it.
        try:
            yield
        finally:
            with self._lock:
                batch = None
                if self._aclients.get(loop, (None,))[0] is client:
                    del self._aclients[loop]
                    batch = self._abatches.pop(loop, None)
            if batch is not None:
                await batch[1].aclose()
            await client.aclose()

    async def _batched(self, command: Command) -> Any:
        # What tasks running together on a loop read and write is sent together (a third of
        # the cost of one command each); each call still returns only with its own reply.
        loop = asyncio.get_running_loop()
        found = self._abatches.get(loop)
        if found is None:
            link = BatchLink(await self._aclient(), self._reaching)
            found = self._abatches.setdefault(loop, (Batch(link.send), link))
        return await found[0].submit(command)

    async def aset_meta(self, task_id: str, meta: Mapping[str, Any],
                        expires: float | None) -> None:
        await self._batched((self._meta_key(task_id), json.dumps(meta), _px(expires)))

    async def aget_meta(self, task_id: str) -> Meta | None:
        return _meta(await self._batched((self._meta_key(task_id),)))

    async def aget_metas(self, task_ids: Sequence[str]) -> list[Meta | None]:
        if not task_ids:
            return []
        client = await self._aclient()
        with self._reaching():
            raws = await client.mget([self._meta_key(t) for t in task_ids])
        return [_meta(raw) for raw in raws]

    async def achord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        client = await self._aclient()
        with self._reaching():
            async with client.pipeline(transaction=True) as pipe:
                self._chord_pipeline(pipe, chord_id, index, expires)
                return int((await pipe.execute())[1])

    async def aclaim(self, key: str, expires: float | None) -> bool:
        client = await self._aclient()
        with self._reaching():
            return bool(await client.set(self._claim_key(key), b"1", nx=True,
                                         px=_px(expires)))
