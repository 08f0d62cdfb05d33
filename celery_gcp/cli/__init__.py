"""The ``celery-gcp`` command: ``celery-gcp -A proj worker``, ``celery-gcp -A proj inspect ...``.

``-A`` names the Celery app as Celery's command does: ``module``, ``module:attr`` or
``module.attr``; for a module, its ``app``, its ``celery``, its ``celery`` submodule (a
package), then any Celery app it holds (utils/app_search.py).

The command group, ``-A`` and the app's own commands are here; local.py has the commands that
run the local stack (``emulator``, ``dev``), resources.py those on the app's queues, jobs,
results and deployment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["main"]


def find_app(name: str) -> Celery:
    """Import the app named by ``-A``, as Celery's ``find_app`` (see utils/app_search.py)."""
    from ..utils.app_search import AppNotFound
    from ..utils.app_search import find_app as search

    sys.path.insert(0, os.getcwd())
    try:
        return search(name)
    except AppNotFound as exc:
        raise _AppNotFound(str(exc)) from None


class _AppNotFound(click.ClickException):
    """A wrong ``-A``: one line (no usage block), with the usage error's exit status."""

    exit_code = 2


class _AppRef:
    """The ``-A`` value, imported only by the commands that need an app."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def load(self) -> Celery:
        if not self.name:
            raise _AppNotFound("this command needs the app: pass -A module[:attribute] (or set "
                               "CELERY_GCP_APP)")
        return find_app(self.name)


class _Usage(click.UsageError):
    """A usage error (an unknown option, a bad value) shown as one line, with where the
    help is, instead of click's usage block."""

    def show(self, file: Any = None) -> None:
        where = self.ctx.command_path if self.ctx is not None else "celery-gcp"
        click.echo(f"Error: {self.format_message()} (see '{where} --help')", file=file,
                   err=file is None)


class _Commands(click.Group):
    """The command group: an error that escapes a command becomes one line and a non-zero
    exit, never a traceback (cli_errors.py says which line)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _Usage(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if isinstance(exc, _Usage):
                raise
            raise _Usage(exc.format_message(), exc.ctx) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            from ..cli_errors import one_line

            line = one_line(exc)
            if line is None:
                raise
            raise click.ClickException(line) from None


@click.group(cls=_Commands)
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
@click.option("-l", "--loglevel", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                                case_sensitive=False),
              help="Logging level, as Celery's worker -l (INFO by default: each request and "
                   "task outcome is a line, as uvicorn's access log was).")
@click.pass_context
def worker(ctx: click.Context, host: str, port: int, asgi: str | None, loglevel: str) -> None:
    """Serve the task endpoints with uvicorn, logging as Celery's worker does (JSON for
    Cloud Logging on Cloud Run)."""
    import uvicorn

    from ..utils.cloud_logging import setup_logging

    app = _app(ctx)
    setup_logging(app, loglevel)
    target: Any = asgi if asgi else app.asgi_app()
    uvicorn.run(target, host=host, port=port, proxy_headers=False, log_config=None)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8001, show_default=True, help="Port to listen on.")
@click.option("--allow-actions", is_flag=True,
              help="Offer run now, delete, pause / resume / purge and fire now (read-only "
                   "without it).")
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, allow_actions: bool) -> None:
    """Serve a live page of the app's queues, tasks, periodic jobs and finished tasks, read
    through the Cloud Tasks and Cloud Scheduler APIs with your credentials."""
    import uvicorn

    from ..dashboard import dashboard_app

    app = _app(ctx)
    click.echo(f"dashboard: http://{host}:{port}/"
               + ("" if allow_actions else " (read-only; --allow-actions to act)"))
    uvicorn.run(dashboard_app(app, actions=allow_actions), host=host, port=port,
                log_level="warning")


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
@click.argument("name")
@click.option("--args", "args_json", default="[]", show_default=True,
              help="Positional arguments, as a JSON list.")
@click.option("--kwargs", "kwargs_json", default="{}", show_default=True,
              help="Keyword arguments, as a JSON object.")
@click.option("--countdown", type=float, default=None, help="Seconds to wait before running.")
@click.option("--queue", default=None, help="Queue to send to (default: the task's route).")
@click.pass_context
def call(ctx: click.Context, name: str, args_json: str, kwargs_json: str,
         countdown: float | None, queue: str | None) -> None:
    """Send task NAME (validated like .delay()) and print its id."""
    import json

    try:
        args, kwargs = json.loads(args_json), json.loads(kwargs_json)
    except ValueError as exc:
        raise click.BadParameter(f"--args/--kwargs must be JSON: {exc}") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise click.BadParameter("--args takes a JSON list and --kwargs a JSON object")
    app = _app(ctx)
    if name not in app.tasks:
        known = sorted(n for n in app.tasks if not n.startswith("celery."))
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if known[10:] else "")
        raise click.ClickException(
            f"task {name!r} is not registered in the app -A names ({app.main!r}); registered: "
            f"{shown or 'none'}; check that -A imports the module defining it (include=, "
            "imports=)")
    result = app.send_task(name, args, kwargs, countdown=countdown, queue=queue)
    click.echo(result.id)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--diff", "mode", flag_value="diff", default=True,
              help="Show the rewrite as a unified diff (the default); change nothing.")
@click.option("--write", "mode", flag_value="write", help="Rewrite the files in place.")
@click.option("--check", "mode", flag_value="check",
              help="Change nothing; exit 1 if a file would be rewritten or needs attention (CI).")
def migrate(path: Path, mode: str) -> None:
    """Rewrite the celery and kombu imports under PATH (a file or a directory) to celery_gcp,
    and report each use of a Celery feature that differs or is absent, with file:line, its
    status and what to do instead (a line with a "# celery-gcp: ok" comment is not reported).

    Exit status: 0 when nothing needs attention (with --check: and nothing would be rewritten);
    1 when something does (a feature that differs or is absent, a name celery_gcp has no home
    for, a file that is not valid Python; with --check also a file to rewrite); 2 when PATH
    does not exist.
    """
    if not path.exists():
        click.echo(f"migrate: {path}: no such file or directory", err=True)
        sys.exit(2)
    from ..migrate.run import run

    sys.exit(run(path, mode, click.echo).exit_code(mode))  # type: ignore[arg-type]


# The commands of the other modules join the group.
from . import local, resources  # noqa: E402, F401
