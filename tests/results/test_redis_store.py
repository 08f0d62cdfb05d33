"""The Redis store against a real server: expiry, Celery's keys, URLs, async twins, errors."""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Iterator

import celery
import pytest

from celery_gcp import Celery
from celery_gcp.exceptions import BackendError, ImproperlyConfigured, ResultStoreError
from celery_gcp.results import store_for_url
from celery_gcp.results.redis_store import RedisStore
from celery_gcp.utils.urls import masked_url

from ..redis_server import RedisServer, _free_port
from ..test_imports import loaded

DB = 2  # this module's database on the shared server (the contract's store uses another)


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    redis_server.client(DB).flushdb()
    made = RedisStore(redis_server.url(DB))
    yield made
    made.close()


#: Celery's result consumer opens a pub/sub connection from AsyncResult.__del__ and leaves
#: its socket to the garbage collector: not this store's to close.
CELERY_LEAVES_A_SOCKET = pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")


@pytest.fixture
def celery_app(redis_server: RedisServer) -> Iterator[celery.Celery]:
    """Celery 5 with its Redis result backend on the same database: the oracle."""
    app = celery.Celery("oracle", broker="memory://", backend=redis_server.url(DB))
    yield app
    # Celery keeps every AsyncResult it made in its backend, subscribed to the task's channel,
    # until the task is ready or forgotten: unsubscribe them while the server still runs, or
    # their __del__, whenever the app is collected in a later test, reconnects and fails.
    concrete, weak = app.backend._pending_results
    for waiters in [*concrete.values(), *weak.values()]:
        for result in list(waiters.values()):
            app.backend.remove_pending_result(result)
    app.backend.result_consumer.stop()  # its pub/sub connection
    app.backend.client.connection_pool.disconnect()
    app.close()


def _meta(task_id: str, status: str = "SUCCESS", result: object = 4) -> dict[str, object]:
    return {"task_id": task_id, "status": status, "result": result, "traceback": None,
            "children": [], "date_done": "2026-12-02T10:00:00+00:00"}


def test_expiry_is_the_records_ttl(store: RedisStore, redis_server: RedisServer) -> None:
    raw = redis_server.client(DB)
    store.set_meta("t", _meta("t"), 3600)
    store.save_group("g", ["t"], 60.5)
    store.chord_part_done("c", 0, 120)
    store.claim("k", 30)
    store.set_meta("forever", _meta("forever"), None)
    assert 3_590_000 < raw.pttl("celery-task-meta-t") <= 3_600_000
    assert 50_000 < raw.pttl("celery-taskset-meta-g") <= 60_500
    assert 110_000 < raw.pttl("celery-gcp-chord-c") <= 120_000
    assert 20_000 < raw.pttl("celery-gcp-claim-k") <= 30_000
    assert raw.ttl("celery-task-meta-forever") == -1  # no expiry


@CELERY_LEAVES_A_SOCKET
def test_records_are_under_celerys_keys_and_celery_reads_them(
        store: RedisStore, celery_app: celery.Celery) -> None:
    store.set_meta("ok", _meta("ok", result={"n": [1, 2]}), 60)
    failure = {"exc_type": "ValueError", "exc_message": ["bad input"], "exc_module": "builtins"}
    store.set_meta("bad", _meta("bad", "FAILURE", failure), 60)
    store.save_group("g1", ["ok", "bad"], 60)

    done = celery_app.AsyncResult("ok")
    assert (done.state, done.result) == ("SUCCESS", {"n": [1, 2]})
    failed = celery_app.AsyncResult("bad")
    assert failed.state == "FAILURE"
    assert isinstance(failed.result, ValueError)
    assert failed.result.args == ("bad input",)
    group = celery_app.GroupResult.restore("g1")
    assert [r.id for r in group.results] == ["ok", "bad"]


@CELERY_LEAVES_A_SOCKET
@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")  # Celery's
def test_records_celery_wrote_read_back(store: RedisStore, celery_app: celery.Celery) -> None:
    celery_app.backend.store_result("c1", [1, "x"], "SUCCESS")
    celery_app.GroupResult("g2", [celery_app.AsyncResult("c1"),
                                  celery_app.AsyncResult("c2")]).save()
    meta = store.get_meta("c1")
    assert meta is not None
    assert (meta["status"], meta["result"], meta["task_id"]) == ("SUCCESS", [1, "x"], "c1")
    assert store.restore_group("g2") == ["c1", "c2"]


def test_global_keyprefix_as_celery(redis_server: RedisServer) -> None:
    redis_server.client(DB).flushdb()
    conf = {"result_backend_transport_options": {"global_keyprefix": "proj:"}}
    prefixed = RedisStore(redis_server.url(DB), conf=conf)
    try:
        prefixed.set_meta("p", _meta("p"), None)
        assert redis_server.client(DB).exists("proj:celery-task-meta-p") == 1
    finally:
        prefixed.close()


def test_a_store_from_a_url_with_user_password_and_db(redis_server: RedisServer) -> None:
    admin = redis_server.client()
    admin.acl_setuser("results", enabled=True, passwords=["+s3cret"], keys=["*"],
                      commands=["+@all"])
    redis_server.client(5).flushdb()
    url = redis_server.url(5, user="results", password="s3cret")
    app = Celery("proj", broker_url="memory://", result_backend=url,
                 redis_socket_timeout=7, redis_max_connections=3)
    try:
        store = app.backend
        assert isinstance(store, RedisStore)
        assert store.url == redis_server.url(5, user="results", password="***")
        store.set_meta("t", _meta("t"), None)
        assert redis_server.client(5).exists("celery-task-meta-t") == 1
        assert redis_server.client(0).exists("celery-task-meta-t") == 0
        pool = store._pool
        assert pool.max_connections == 3
        assert pool.connection_kwargs["socket_timeout"] == 7.0
        assert pool.connection_kwargs["username"] == "results"
    finally:
        app.close()
        admin.acl_deluser("results")


def test_a_wrong_password_names_the_url_masked(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url(DB, user="nobody", password="wrong-pw"))
    with pytest.raises(ResultStoreError) as caught:
        store.get_meta("t")
    assert f"redis://nobody:***@127.0.0.1:{redis_server.port}/{DB}" in str(caught.value)
    assert "wrong-pw" not in str(caught.value)
    store.close()


def test_connection_refused_names_the_url_masked() -> None:
    url = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"  # nothing listens there
    store = store_for_url(url)
    with pytest.raises(ResultStoreError, match=r"redis://:\*\*\*@127\.0\.0\.1:\d+/0 cannot be "
                                                r"reached") as caught:
        store.set_meta("t", _meta("t"), None)
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, BackendError)  # Celery's name catches it too

    async def main() -> None:
        with pytest.raises(ResultStoreError, match="cannot be reached"):
            await store.aget_meta("t")

    asyncio.run(main())
    store.close()


def test_async_twins_count_a_chord_once_on_a_real_loop(store: RedisStore) -> None:
    async def main() -> list[int]:
        members = [store.achord_part_done("ch", i % 10, 60) for i in range(30)]
        counts = await asyncio.gather(*members)
        await store.aset_meta("a", _meta("a", result="x"), 60)
        assert await store.aget_metas(["a", "none"]) == [_meta("a", result="x"), None]
        assert [await store.aclaim("once", 60) for _ in range(3)] == [True, False, False]
        return counts

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        counts = asyncio.run(main())
        assert asyncio.run(store.aget_meta("a")) == _meta("a", result="x")  # a second loop
    assert sorted(set(counts)) == list(range(1, 11))  # each of 1..10 said once at least
    assert store.chord_part_done("ch", 3, 60) == 10  # 30 calls, 10 distinct members
    assert store._aclients == {}  # each loop's client closed when that loop shut down


def test_outcomes_written_together_are_each_stored_with_their_expiry(
        store: RedisStore, redis_server: RedisServer) -> None:
    server = redis_server.client(DB)
    before = int(server.info("stats")["total_commands_processed"])

    async def main() -> None:
        await asyncio.gather(*(store.aset_meta(f"t{i}", _meta(f"t{i}", result=i), 60)
                               for i in range(64)))

    asyncio.run(main())
    # 64 SETs and a few connection set-up commands (and this INFO): nothing more was sent.
    commands = int(server.info("stats")["total_commands_processed"]) - before
    assert 64 <= commands < 64 + 10
    assert store.get_metas([f"t{i}" for i in range(64)]) == [
        _meta(f"t{i}", result=i) for i in range(64)]
    assert all(0 < server.pttl(f"celery-task-meta-t{i}") <= 60_000 for i in range(64))
    assert store._abatches == {}  # the loop's batch went with its client


def test_writers_waiting_on_an_unreachable_store_each_get_the_error() -> None:
    store = store_for_url(f"redis://127.0.0.1:{_free_port()}/0")  # nothing listens there

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(store.aset_meta(f"t{i}", _meta(f"t{i}"), None)
                                      for i in range(8)), return_exceptions=True)

    errors = asyncio.run(main())
    assert all(isinstance(e, ResultStoreError) and "cannot be reached" in str(e)
               for e in errors)
    store.close()


def test_a_store_that_never_answers_fails_a_batch_within_its_socket_timeout() -> None:
    """A Redis that takes the connection and never answers (a hung proxy): every write and
    read waiting on the batch gets the store's error after ``redis_socket_timeout``, not a
    hang, and the batch after it opens a fresh connection."""

    async def main() -> tuple[list[BaseException | None], float, int]:
        connections = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer)
            await reader.read()  # reads the commands, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        store = RedisStore(f"redis://127.0.0.1:{port}/0",
                           conf={"redis_socket_timeout": 0.3})
        loop = asyncio.get_running_loop()
        started = loop.time()
        errors = await asyncio.gather(
            store.aset_meta("t", _meta("t"), None), store.aget_meta("u"),
            return_exceptions=True)
        elapsed = loop.time() - started
        again = await asyncio.gather(store.aget_meta("v"), return_exceptions=True)
        errors += again
        server.close()
        for writer in connections:
            writer.close()
        store.close()
        return errors, elapsed, len(connections)

    errors, elapsed, connections = asyncio.run(main())
    assert len(errors) == 3
    assert all(isinstance(e, ResultStoreError) and "cannot be reached" in str(e)
               and "0.3 s" in str(e) for e in errors), errors
    assert elapsed < 5  # the timeout, not redis-py's default of 5 s per reply
    assert connections == 2  # the hung connection was dropped, the next batch opened another


def test_without_hiredis_batches_are_packed_by_redis_py(
        store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py installed without its hiredis extra (``pip install redis``): the same
    commands go out, packed by redis-py."""
    from celery_gcp.results import redis_batch

    monkeypatch.setattr(redis_batch, "_hiredis_pack", None)

    async def main() -> list[object]:
        await asyncio.gather(*(store.aset_meta(f"p{i}", _meta(f"p{i}", result=i), 60)
                               for i in range(4)))
        return list(await asyncio.gather(*(store.aget_meta(f"p{i}") for i in range(5))))

    assert asyncio.run(main()) == [_meta(f"p{i}", result=i) for i in range(4)] + [None]


def test_close_then_use_again(store: RedisStore) -> None:
    store.set_meta("t", _meta("t"), None)
    store.close()
    assert store.get_meta("t") == _meta("t")


def test_rediss_takes_celerys_ssl_cert_reqs() -> None:
    store = RedisStore("rediss://127.0.0.1:1/0?ssl_cert_reqs=CERT_NONE")  # not connected yet
    assert store._pool.connection_kwargs["ssl_cert_reqs"] == "none"
    with pytest.raises(ImproperlyConfigured, match="ssl_cert_reqs='CERT_MAYBE'"):
        RedisStore("rediss://:pw@127.0.0.1:1/0?ssl_cert_reqs=CERT_MAYBE")


def test_masked_url() -> None:
    assert masked_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert masked_url("redis://:p@h/0") == "redis://:***@h/0"
    assert masked_url("redis://h:1/0") == "redis://h:1/0"


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if redis-py were not installed
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'celery-gcp\[redis\]'"):
        store_for_url("rediss://host:6378/0")


def test_redis_is_imported_only_when_a_redis_store_is_made() -> None:
    modules = loaded("from celery_gcp import Celery\n"
                     "app = Celery('p', result_backend='redis://127.0.0.1:1/0')")
    assert "redis" not in modules
    assert "celery_gcp.results.redis_store" not in modules
    modules = loaded("from celery_gcp import Celery\n"
                     "Celery('p', result_backend='redis://127.0.0.1:1/0').backend")
    assert "redis" in modules
