"""The result store contract, run against every store kind (tests/results/conftest.py)."""

from __future__ import annotations

import asyncio
import threading

from celery_gcp.results import ResultStore


def _meta(task_id: str, status: str = "SUCCESS", result: object = 4) -> dict[str, object]:
    return {"task_id": task_id, "status": status, "result": result, "traceback": None,
            "children": [], "date_done": "2026-12-02T10:00:00+00:00"}


def test_a_stored_meta_reads_back_and_is_replaced(store: ResultStore) -> None:
    assert store.get_meta("t1") is None
    store.set_meta("t1", _meta("t1", "STARTED", None), None)
    assert store.get_meta("t1") == _meta("t1", "STARTED", None)
    store.set_meta("t1", _meta("t1", result={"a": [1, "é", None]}), 3600)
    assert store.get_meta("t1") == _meta("t1", result={"a": [1, "é", None]})


def test_metas_read_in_order_with_gaps(store: ResultStore) -> None:
    store.set_meta("a", _meta("a", result=1), None)
    store.set_meta("c", _meta("c", result=3), None)
    assert store.get_metas(["c", "b", "a"]) == [_meta("c", result=3), None, _meta("a", result=1)]


def test_forget_deletes_the_record(store: ResultStore) -> None:
    store.set_meta("t", _meta("t"), None)
    store.forget("t")
    store.forget("never-stored")
    assert store.get_meta("t") is None


def test_groups_keep_their_order(store: ResultStore) -> None:
    store.save_group("g", ["z", "a", "m"], None)
    assert store.restore_group("g") == ["z", "a", "m"]
    assert store.restore_group("other") is None
    store.delete_group("g")
    assert store.restore_group("g") is None


def test_chord_counts_each_member_once(store: ResultStore) -> None:
    assert store.chord_part_done("c", 0, None) == 1
    assert store.chord_part_done("c", 0, None) == 1  # a redelivered member
    assert store.chord_part_done("c", 2, None) == 2
    assert store.chord_part_done("other", 0, None) == 1


def test_members_added_to_a_chord_are_listed_once_in_the_order_first_added(
        store: ResultStore) -> None:
    assert store.chord_added("c") == []
    assert store.chord_add("c", "a", None) == ["a"]
    assert store.chord_add("c", "b", 60) == ["a", "b"]
    assert store.chord_add("c", "a", None) == ["a", "b"]  # a redelivered adder
    assert store.chord_add("other", "z", None) == ["z"]
    assert store.chord_added("c") == ["a", "b"]


def test_chord_counting_from_many_threads_completes_once(store: ResultStore) -> None:
    counts: list[int] = []
    barrier = threading.Barrier(8)

    def member(index: int) -> None:
        barrier.wait()
        counts.append(store.chord_part_done("race", index % 4, None))

    threads = [threading.Thread(target=member, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(counts) == 4
    assert counts.count(4) >= 1


def test_a_claim_is_won_once(store: ResultStore) -> None:
    assert store.claim("body-of-c", None) is True
    assert store.claim("body-of-c", None) is False
    assert store.claim("another", 60) is True


def test_async_twins_read_what_the_sync_methods_wrote(store: ResultStore) -> None:
    async def main() -> None:
        await store.aset_meta("x", _meta("x", result=[1, 2]), None)
        assert store.get_meta("x") == _meta("x", result=[1, 2])
        assert await store.aget_meta("x") == _meta("x", result=[1, 2])
        assert await store.aget_metas(["x", "y"]) == [_meta("x", result=[1, 2]), None]
        assert await store.achord_part_done("ac", 1, None) == 1
        assert await store.aclaim("ak", None) is True
        assert await store.aclaim("ak", None) is False

    asyncio.run(main())


def test_recent_lists_finished_records_newest_first(store: ResultStore) -> None:
    for task_id, done in (("old", "2026-12-01T10:00:00+00:00"),
                          ("new", "2026-12-02T10:00:00+00:00"),
                          ("mid", "2026-12-01T20:00:00+00:00")):
        store.set_meta(task_id, {**_meta(task_id), "date_done": done}, 3600)
    store.set_meta("running", {**_meta("running", status="STARTED"), "date_done": None}, 3600)
    store.set_meta("gone", {**_meta("gone"), "date_done": "2026-12-03T00:00:00+00:00"}, 3600)
    store.forget("gone")
    assert [m["task_id"] for m in store.recent(limit=10)] == ["new", "mid", "old"]
    assert [m["task_id"] for m in store.recent(limit=2)] == ["new", "mid"]
    assert store.recent(limit=1)[0]["result"] == 4
