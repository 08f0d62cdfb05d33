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


@click.group()
@click.option("-A", "--app", "app_name", envvar="CELERY_GCP_APP", required=True,
              help="The Celery app: module or module:attribute.")
@click.pass_context
def main(ctx: click.Context, app_name: str) -> None:
    """celery_gcp: Celery tasks as FastAPI endpoints called by Google Cloud Tasks."""
    ctx.obj = find_app(app_name)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "8080")),
              show_default="$PORT or 8080", help="Port to listen on (Cloud Run sets $PORT).")
@click.option("--asgi", default=None,
              help="Serve your own ASGI app (module:attribute) instead of the task endpoints "
                   "alone; it must include app.router.")
@click.pass_obj
def worker(app: Celery, host: str, port: int, asgi: str | None) -> None:
    """Serve the task endpoints with uvicorn."""
    import uvicorn

    target: Any = asgi if asgi else app.asgi_app()
    uvicorn.run(target, host=host, port=port, proxy_headers=False)


@main.group()
def inspect() -> None:
    """Show what the app defines."""


@inspect.command()
@click.pass_obj
def registered(app: Celery) -> None:
    """List the registered tasks and their endpoint paths."""
    prefix = app.conf.task_endpoint_prefix.rstrip("/")
    for name in sorted(app.tasks):
        click.echo(f"{name}\tPOST {prefix}/{name}")


@inspect.command()
@click.pass_obj
def routes(app: Celery) -> None:
    """Show the queue (and its Cloud Tasks queue id) each task is routed to."""
    for name, task in sorted(app.tasks.items()):
        options = {"queue": task.queue} if task.queue else {}
        queue = app.queue_router.route(name, (), {}, options, task)
        click.echo(f"{name}\t{queue}\t{app.queue_router.queue_id(queue)}")


if __name__ == "__main__":  # pragma: no cover
    main()
