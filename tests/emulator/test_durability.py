"""Durability with a data dir: state survives a restart and a kill -9, nothing lost or repeated."""

from __future__ import annotations

import collections
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2

from celery_gcp.emulator import Emulator, ManualClock, core, tasks_client

from .conftest import Handler, eventually

ROOT = Path(__file__).resolve().parents[2]


def test_state_survives_a_restart(tmp_path: Path, handler: Handler) -> None:
    with Emulator(data_dir=tmp_path) as first:
        client = first.tasks_client()
        queue = client.create_queue(parent=first.location, queue={
            "name": f"{first.location}/queues/kept", "retry_config": {"max_attempts": 5}})
        client.pause_queue(name=queue.name)
        client.create_task(parent=queue.name, task={
            "name": f"{queue.name}/tasks/pending",
            "http_request": {"url": f"{handler.url}/pending", "body": b"kept"}})
        client.create_task(parent=queue.name, task={
            "name": f"{queue.name}/tasks/deleted", "http_request": {"url": handler.url}})
        client.delete_task(name=f"{queue.name}/tasks/deleted")
        certs = httpx.get(first.certs_url).json()
        job = first.scheduler_client().create_job(parent=first.location, job={
            "name": f"{first.location}/jobs/nightly", "schedule": "0 3 * * *",
            "time_zone": "Europe/Paris", "http_target": {"uri": f"{handler.url}/job"}})
    with Emulator(data_dir=tmp_path) as second:
        client = second.tasks_client()
        restored = client.get_queue(name=queue.name)
        assert restored.state == tasks_v2.Queue.State.PAUSED
        assert restored.retry_config.max_attempts == 5
        assert [t.name for t in client.list_tasks(parent=queue.name)] == [
            f"{queue.name}/tasks/pending"]
        with pytest.raises(exceptions.AlreadyExists):  # the deleted task's name is reserved
            client.create_task(parent=queue.name, task={
                "name": f"{queue.name}/tasks/deleted", "http_request": {"url": handler.url}})
        assert httpx.get(second.certs_url).json().keys() == certs.keys()  # same signing key
        assert second.scheduler_client().get_job(name=job.name).schedule == "0 3 * * *"
        client.resume_queue(name=queue.name)
        [request] = handler.wait_for(1)
        assert request.body == b"kept"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(data_dir: Path, port: int, http_port: int, *options: str,
                   log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery_gcp.cli", "emulator", "--port", str(port),
         "--http-port", str(http_port), "--data-dir", str(data_dir), *options],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:  # bounded wait until both ports accept connections
        try:
            for p in (port, http_port):
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
            return proc
        except OSError:
            assert proc.poll() is None, "the emulator exited at start"
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.05)


def test_kill_9_with_1000_pending_tasks_loses_none_and_repeats_none(
        tmp_path: Path, handler: Handler) -> None:
    port, http_port = free_port(), free_port()
    proc = start_emulator(tmp_path, port, http_port)
    location = "projects/p/locations/l"
    try:
        client = tasks_client(f"127.0.0.1:{port}")
        queue = client.create_queue(parent=location, queue={"name": f"{location}/queues/bulk"})
        client.pause_queue(name=queue.name)
        for i in range(1000):
            client.create_task(parent=queue.name, task={
                "name": f"{queue.name}/tasks/t{i}", "http_request": {"url": f"{handler.url}/t"}})
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    proc = start_emulator(tmp_path, port, http_port)
    try:
        client = tasks_client(f"127.0.0.1:{port}")
        client.resume_queue(name=queue.name)
        handler.wait_for(1000, timeout=60)
        deadline = time.monotonic() + 30
        while True:  # every task acknowledged and deleted
            status = httpx.get(f"http://127.0.0.1:{http_port}/status").json()
            if status["queues"][0]["taskCount"] == 0:
                break
            assert time.monotonic() < deadline, "tasks were still pending"
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    names = collections.Counter(r.headers["x-cloudtasks-taskname"] for r in handler.received)
    assert len(names) == 1000
    assert max(names.values()) == 1


@pytest.mark.parametrize("quiet", [False, True])
def test_the_emulator_logs_a_line_per_dispatch_unless_quiet(
        tmp_path: Path, handler: Handler, quiet: bool) -> None:
    port, http_port = free_port(), free_port()
    with open(tmp_path / "log", "wb") as log:
        proc = start_emulator(tmp_path, port, http_port, *(["--quiet"] if quiet else []),
                              log=log)
        try:
            client = tasks_client(f"127.0.0.1:{port}")
            location = "projects/p/locations/l"
            queue = client.create_queue(parent=location,
                                        queue={"name": f"{location}/queues/logged"})
            client.create_task(parent=queue.name, task={
                "name": f"{queue.name}/tasks/one", "http_request": {"url": f"{handler.url}/t"}})
            handler.wait_for(1)
            eventually(lambda: gone(client, f"{queue.name}/tasks/one"))  # logged by then
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    text = (tmp_path / "log").read_text()
    assert "CLOUD_TASKS_EMULATOR_HOST" in text  # the addresses are printed either way
    assert ("queue=logged task=one attempt=1 status=200" in text) is not quiet


def gone(client: Any, name: str) -> bool:
    """Whether task ``name`` is gone (answered and deleted)."""
    try:
        client.get_task(name=name)
    except exceptions.NotFound:
        return True
    return False


def _tombstones(data_dir: Path) -> list[str]:
    with closing(sqlite3.connect(data_dir / "emulator.sqlite3")) as db:
        return sorted(row[0] for row in db.execute("select name from tombstones"))


def test_32_expired_tombstones_are_deleted_and_only_live_ones_loaded(
        tmp_path: Path, handler: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "_PRUNE_EVERY", 10)  # prune every 10 burials, not every 1000
    clock = ManualClock(start=1774569600.0)
    with Emulator(data_dir=tmp_path, clock=clock, tombstone_seconds=60) as first:
        client = first.tasks_client()
        queue = client.create_queue(parent=first.location,
                                    queue={"name": f"{first.location}/queues/churn"})
        client.pause_queue(name=queue.name)

        def bury(prefix: str, count: int) -> list[str]:
            made = [f"{queue.name}/tasks/{prefix}{i}" for i in range(count)]
            for name in made:
                client.create_task(parent=queue.name, task={
                    "name": name, "http_request": {"url": handler.url}})
                client.delete_task(name=name)
            return made

        old = bury("old", 5)
        clock.advance(61)  # the first five expire
        live = bury("new", 5)  # the tenth burial prunes on the emulator's clock
        assert _tombstones(tmp_path) == sorted(live)
        clock.advance(30)
        late = bury("late", 2)  # burials 11 and 12: no prune
    clock.advance(31)  # "new" expire before the restart, "late" are live
    assert _tombstones(tmp_path) == sorted(live + late)
    with Emulator(data_dir=tmp_path, clock=clock, tombstone_seconds=60) as second:
        assert _tombstones(tmp_path) == sorted(late)  # deleted at load, not read back
        assert second.server is not None
        assert sorted(second.server.core.tombstones) == sorted(late)
        client = second.tasks_client()
        for name in (old[0], live[0]):  # expired names are free again
            client.create_task(parent=queue.name, task={
                "name": name, "http_request": {"url": handler.url}})
        with pytest.raises(exceptions.AlreadyExists):
            client.create_task(parent=queue.name, task={
                "name": late[0], "http_request": {"url": handler.url}})


def _deleted_queues(data_dir: Path) -> list[str]:
    with closing(sqlite3.connect(data_dir / "emulator.sqlite3")) as db:
        return sorted(row[0] for row in db.execute("select name from deleted_queues"))


def test_deleted_queue_names_survive_a_restart_until_their_window_ends(tmp_path: Path) -> None:
    clock = ManualClock(start=1774569600.0)
    with Emulator(data_dir=tmp_path, clock=clock, queue_reuse_seconds=60) as first:
        client = first.tasks_client()
        old, new = (f"{first.location}/queues/{q}" for q in ("old", "new"))
        for name in (old, new):
            client.create_queue(parent=first.location, queue={"name": name})
        client.delete_queue(name=old)
        clock.advance(30)
        client.delete_queue(name=new)
    clock.advance(31)  # "old" expired before the restart, "new" is live
    with Emulator(data_dir=tmp_path, clock=clock, queue_reuse_seconds=60) as second:
        assert _deleted_queues(tmp_path) == [new]  # deleted at load, not read back
        client = second.tasks_client()
        client.create_queue(parent=second.location, queue={"name": old})
        with pytest.raises(exceptions.FailedPrecondition):
            client.create_queue(parent=second.location, queue={"name": new})
        second.reset()  # forgets the names, in the data dir too
        assert _deleted_queues(tmp_path) == []
        client.create_queue(parent=second.location, queue={"name": new})


def test_a_restored_task_past_its_retention_is_deleted(tmp_path: Path, handler: Handler) -> None:
    clock = ManualClock(start=1774569600.0)
    with Emulator(data_dir=tmp_path, clock=clock, task_retention_seconds=60) as first:
        client = first.tasks_client()
        queue = client.create_queue(parent=first.location,
                                    queue={"name": f"{first.location}/queues/aged"}).name
        later = {"seconds": int(clock.now()) + 3600}  # due after its retention
        made = client.create_task(parent=queue, task={
            "http_request": {"url": f"{handler.url}/aged"}, "schedule_time": later}).name
    clock.advance(60)
    with Emulator(data_dir=tmp_path, clock=clock, task_retention_seconds=60) as second:
        second.wait_idle()
        assert second.pending() == 0  # the dispatch loop ended it at start
        with pytest.raises(exceptions.NotFound):
            second.tasks_client().get_task(name=made)
    assert handler.received == []
