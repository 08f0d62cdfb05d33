"""The commands that run the local stack: ``celery-gcp emulator`` and ``celery-gcp dev``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from ..platform import (
    CERTS_URL_VARIABLE,
    QUEUE_REUSE_SECONDS,
    SCHEDULER_VARIABLE,
    TASK_RETENTION_SECONDS,
    TASKS_VARIABLE,
)
from ..utils.imports import import_object
from ..utils.urls import masked_url
from . import _app, main

if TYPE_CHECKING:
    from ..dev import DevStack, TaskLog

__all__ = ["dev", "emulator"]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface for both servers (loopback by default).")
@click.option("--port", type=int, default=8123, show_default=True,
              help=f"gRPC port: {TASKS_VARIABLE} / {SCHEDULER_VARIABLE}.")
@click.option("--http-port", type=int, default=0, show_default="a free port",
              help="HTTP port for the signing keys (/oauth2/v1/certs) and /status.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep queues, tasks, jobs and keys here across restarts.")
@click.option("--tombstone-seconds", type=float, default=3600.0, show_default=True,
              help="How long an ended task's name stays reserved.")
@click.option("--queue-reuse-seconds", type=float, default=QUEUE_REUSE_SECONDS,
              show_default=True, help="How long a deleted queue's name stays reserved.")
@click.option("--task-retention-seconds", type=float, default=TASK_RETENTION_SECONDS,
              show_default=True, help="How long after its creation a task is deleted.")
@click.option("--quiet", "-q", is_flag=True,
              help="Log only warnings and errors, not a line per dispatch.")
def emulator(host: str, port: int, http_port: int, data_dir: str | None,
             tombstone_seconds: float, queue_reuse_seconds: float,
             task_retention_seconds: float, quiet: bool) -> None:
    """Run the local Cloud Tasks + Cloud Scheduler emulator until interrupted."""
    import asyncio
    import logging
    import signal

    from ..emulator.server import EmulatorServer

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")

    async def serve() -> None:
        server = EmulatorServer(host, port, http_port=http_port, data_dir=data_dir,
                                tombstone_seconds=tombstone_seconds,
                                queue_reuse_seconds=queue_reuse_seconds,
                                task_retention_seconds=task_retention_seconds)
        await server.start()
        click.echo(f"Cloud Tasks + Cloud Scheduler emulator on {host}:{server.port}\n"
                   f"  export {TASKS_VARIABLE}={host}:{server.port}\n"
                   f"  export {SCHEDULER_VARIABLE}={host}:{server.port}\n"
                   f"  export {CERTS_URL_VARIABLE}=http://{host}:{server.http_port}"
                   "/oauth2/v1/certs   # the worker trusts the emulator's tokens\n"
                   f"  status:       http://{host}:{server.http_port}/status", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())


@contextlib.contextmanager
def _environ_default(name: str, value: str) -> Iterator[None]:
    """Set an environment variable unless it is set, for the block only."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


@main.command()
@click.option("--port", type=int, default=8000, show_default=True,
              help="Port of the worker (the emulator picks a free one).")
@click.option("--run", "run_target", default=None, metavar="MODULE:FUNCTION",
              help="Call this once everything is up (e.g. a function that sends tasks).")
@click.option("--exit-when-idle", is_flag=True,
              help="Exit once no task is left (status 1 if a task failed), for demos and CI.")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="With --exit-when-idle: give up after this many seconds (status 1).")
@click.option("--asgi", default=None, metavar="MODULE:ATTRIBUTE",
              help="Serve this ASGI app (your FastAPI app, with the app's router and its "
                   "task routes) instead of the app's task endpoints alone.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=".celery-gcp",
              show_default=True,
              help="Where task results are kept (results.sqlite) if the app sets no "
                   "result_backend.")
@click.pass_context
def dev(ctx: click.Context, port: int, run_target: str | None, exit_when_idle: bool,
        timeout: float, asgi: str | None, data_dir: str) -> None:
    """Run everything locally: emulator, queues and worker, with a log line per task event."""
    from ..dev import DEV_SERVICE_ACCOUNT, DevStack, TaskLog
    from ..exceptions import ScheduleError

    # Before the app is imported: a router built at import (an --asgi app including
    # app.router) then sees the identity dev signs tasks as, unless the app sets its own.
    with _environ_default("CELERY_GCP_SERVICE_ACCOUNT", DEV_SERVICE_ACCOUNT):
        app = _app(ctx)
    log = TaskLog()
    log.connect(app)
    stack = DevStack(app, port=port, asgi=asgi, data_dir=data_dir)
    with _terminate_as_interrupt():
        try:
            stack.__enter__()
        except ScheduleError as exc:  # a beat_schedule entry that cannot run: say why
            raise click.ClickException(str(exc)) from None
        _run_dev(stack, log, run_target, exit_when_idle, timeout)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a supervisor, a container stopping) ends the block as Ctrl-C does,
    so dev stops the emulator process it started instead of leaving it running."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_dev(stack: DevStack, log: TaskLog, run_target: str | None, exit_when_idle: bool,
             timeout: float) -> None:
    """``dev`` once its stack is up: run the target, wait, and always stop the stack."""
    import threading

    try:
        click.echo(f"dev: Cloud Tasks emulator at {stack.address}; worker at {stack.url}; "
                   f"queues: {', '.join(stack.queue_names())}")
        if stack.results:
            click.echo(f"dev: results in {masked_url(stack.results)}")
        click.echo(f"dev: dashboard at {stack.dashboard_url}/")
        for change in stack.jobs:
            entry = change.entry
            click.echo(f"dev: beat {entry.name!r}: {entry.task} at '{entry.spec.expression}' "
                       f"({change.job.time_zone})" + ("" if entry.enabled else ", paused"))
        if run_target:
            import_object(run_target)()
        if not exit_when_idle:
            try:  # the line says dev is up: a Ctrl-C or SIGTERM after it is a clean stop
                click.echo("dev: running; press Ctrl-C to stop")
                threading.Event().wait()
            except KeyboardInterrupt:
                return
        done = stack.wait_until_done(timeout)
    finally:
        stack.__exit__(None, None, None)
    if not done:
        raise click.ClickException(f"tasks were still pending after {timeout:g}s")
    if log.failures:
        raise click.ClickException(f"{log.failures} task(s) failed")
    click.echo("dev: every task finished")

