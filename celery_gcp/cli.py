"""The ``celery-gcp`` command: ``celery-gcp -A proj worker``, ``celery-gcp -A proj inspect ...``.

``-A`` names the Celery app as Celery's command does: ``module``, ``module:attr`` or
``module.attr``; a module's ``app`` or ``celery`` attribute is used when no attribute is given.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import click

from .app import Celery
from .utils.imports import import_object

__all__ = ["main"]


def find_app(name: str) -> Celery:
    """Import the app named by ``-A``."""
    sys.path.insert(0, os.getcwd())
    found = import_object(name)
    if isinstance(found, ModuleType):  # as Celery: a module's `app` or `celery` attribute
        found = getattr(found, "app", None) or getattr(found, "celery", None)
    if not isinstance(found, Celery):
        raise click.UsageError(
            f"no Celery app found at {name!r} (a module's 'app' or 'celery' attribute is "
            "used when no attribute is named); pass -A module:attribute"
        )
    return found


class _AppRef:
    """The ``-A`` value, imported only by the commands that need an app."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def load(self) -> Celery:
        if not self.name:
            raise click.UsageError("this command needs the app: pass -A module[:attribute]")
        return find_app(self.name)


@click.group()
@click.option("-A", "--app", "app_name", envvar="CELERY_GCP_APP", default=None,
              help="The Celery app: module or module:attribute.")
@click.pass_context
def main(ctx: click.Context, app_name: str | None) -> None:
    """celery_gcp: Celery tasks as FastAPI endpoints called by Google Cloud Tasks."""
    ctx.obj = _AppRef(app_name)


def _app(ctx: click.Context) -> Celery:
    ref = ctx.find_object(_AppRef)
    assert ref is not None
    return ref.load()


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "8080")),
              show_default="$PORT or 8080", help="Port to listen on (Cloud Run sets $PORT).")
@click.option("--asgi", default=None,
              help="Serve your own ASGI app (module:attribute) instead of the task endpoints "
                   "alone; it must include app.router.")
@click.pass_context
def worker(ctx: click.Context, host: str, port: int, asgi: str | None) -> None:
    """Serve the task endpoints with uvicorn."""
    import uvicorn

    target: Any = asgi if asgi else _app(ctx).asgi_app()
    uvicorn.run(target, host=host, port=port, proxy_headers=False)


@main.group()
def inspect() -> None:
    """Show what the app defines."""


@inspect.command()
@click.pass_context
def registered(ctx: click.Context) -> None:
    """List the registered tasks and their endpoint paths."""
    app = _app(ctx)
    prefix = app.conf.task_endpoint_prefix.rstrip("/")
    for name in sorted(app.tasks):
        click.echo(f"{name}\tPOST {prefix}/{name}")


@inspect.command()
@click.pass_context
def routes(ctx: click.Context) -> None:
    """Show the queue (and its Cloud Tasks queue id) each task is routed to."""
    app = _app(ctx)
    for name, task in sorted(app.tasks.items()):
        options = {"queue": task.queue} if task.queue else {}
        queue = app.queue_router.route(name, (), {}, options, task)
        click.echo(f"{name}\t{queue}\t{app.queue_router.queue_id(queue)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface for both servers (loopback by default).")
@click.option("--port", type=int, default=8123, show_default=True,
              help="gRPC port: CLOUD_TASKS_EMULATOR_HOST / CLOUD_SCHEDULER_EMULATOR_HOST.")
@click.option("--http-port", type=int, default=0, show_default="a free port",
              help="HTTP port for the signing keys (/oauth2/v1/certs) and /status.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep queues, tasks, jobs and keys here across restarts.")
@click.option("--tombstone-seconds", type=float, default=3600.0, show_default=True,
              help="How long an ended task's name stays reserved.")
def emulator(host: str, port: int, http_port: int, data_dir: str | None,
             tombstone_seconds: float) -> None:
    """Run the local Cloud Tasks + Cloud Scheduler emulator until interrupted."""
    import asyncio
    import logging
    import signal

    from .emulator import EmulatorServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve() -> None:
        server = EmulatorServer(host, port, http_port=http_port, data_dir=data_dir,
                                tombstone_seconds=tombstone_seconds)
        await server.start()
        click.echo(f"Cloud Tasks + Cloud Scheduler emulator on {host}:{server.port}\n"
                   f"  export CLOUD_TASKS_EMULATOR_HOST={host}:{server.port}\n"
                   f"  export CLOUD_SCHEDULER_EMULATOR_HOST={host}:{server.port}\n"
                   f"  signing keys: http://{host}:{server.http_port}/oauth2/v1/certs\n"
                   f"  status:       http://{host}:{server.http_port}/status", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())


if __name__ == "__main__":  # pragma: no cover
    main()
