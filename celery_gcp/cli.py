"""The ``celery-gcp`` command: ``celery-gcp -A proj worker``, ``celery-gcp -A proj inspect ...``.

``-A`` names the Celery app as Celery's command does: ``module``, ``module:attr`` or
``module.attr``; for a module, its ``app``, its ``celery``, its ``celery`` submodule (a
package), then any Celery app it holds (utils/app_search.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .platform import (
    CERTS_URL_VARIABLE,
    QUEUE_REUSE_SECONDS,
    SCHEDULER_VARIABLE,
    TASK_RETENTION_SECONDS,
    TASKS_VARIABLE,
)
from .utils.imports import import_object
from .utils.urls import masked_url

if TYPE_CHECKING:
    from . import queues
    from .app import Celery
    from .dev import DevStack, TaskLog

__all__ = ["main"]


def find_app(name: str) -> Celery:
    """Import the app named by ``-A``, as Celery's ``find_app`` (see utils/app_search.py)."""
    from .utils.app_search import AppNotFound
    from .utils.app_search import find_app as search

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
            from .cli_errors import one_line

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

    from .utils.cloud_logging import setup_logging

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

    from .dashboard import dashboard_app

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

    from .emulator.server import EmulatorServer

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
    from .dev import DEV_SERVICE_ACCOUNT, DevStack, TaskLog
    from .exceptions import ScheduleError

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
            click.echo("dev: running; press Ctrl-C to stop")
            try:
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


@inspect.command("queues")
@click.pass_context
def inspect_queues(ctx: click.Context) -> None:
    """Show each queue the app uses as Cloud Tasks has it (state, rate, retries, tasks)."""
    from . import gcp, queues
    from .transport.cloudtasks import CloudTasksTransport

    app = _app(ctx)
    transport = CloudTasksTransport()
    for name in queues.queue_names(app):
        path = gcp.queue_path(app, name)
        queue = transport.get_queue(path)
        if queue is None:
            click.echo(f"{name}\t{path}\tmissing (celery-gcp queues sync creates it)")
            continue
        limits, retry = queue.rate_limits, queue.retry_config
        click.echo(f"{name}\t{path}\t{queue.state.name}\t"
                   f"{limits.max_dispatches_per_second:g}/s x{limits.max_concurrent_dispatches}"
                   f"\tmax_attempts={retry.max_attempts}")


@main.group("queues")
def queues_group() -> None:
    """Queue configuration as code: compare with Cloud Tasks, and apply."""


def _plan(ctx: click.Context) -> tuple[list[queues.Change], Any]:
    from . import gcp, queues
    from .transport.cloudtasks import CloudTasksTransport

    app = _app(ctx)
    transport = CloudTasksTransport()
    specs = queues.desired(app, lambda name: gcp.queue_path(app, name))
    return queues.plan(specs, transport.get_queue), transport


@queues_group.command("plan")
@click.pass_context
def queues_plan(ctx: click.Context) -> None:
    """Show what `queues sync` would create or update (nothing is changed)."""
    changes, _ = _plan(ctx)
    for change in changes:
        click.echo(change.describe())


@queues_group.command("sync")
@click.pass_context
def queues_sync(ctx: click.Context) -> None:
    """Create missing queues and update changed settings (update_queue with a field mask)."""
    from . import queues

    changes, transport = _plan(ctx)
    queues.apply(changes, transport.client())
    for change in changes:
        click.echo(change.describe())


@main.group("beat")
def beat_group() -> None:
    """Periodic tasks on Cloud Scheduler: compare beat_schedule with the jobs, and apply."""


_PRUNE = click.option("--prune", is_flag=True,
                      help="Also delete this app's jobs whose beat_schedule entry is gone.")


def _beat_changes(ctx: click.Context, prune: bool, apply: bool) -> None:
    from . import beat, gcp
    from .exceptions import ScheduleError

    app = _app(ctx)
    client = gcp.scheduler_client()
    try:
        changes = beat.plan(app, client, prune=prune)
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None
    if apply:
        beat.apply(changes, client)
    if not changes:
        click.echo("beat_schedule is empty: no jobs")
    for change in changes:
        click.echo(change.describe())


@beat_group.command("plan")
@_PRUNE
@click.pass_context
def beat_plan(ctx: click.Context, prune: bool) -> None:
    """Show what `beat sync` would create, update or delete, field by field (a dry run)."""
    _beat_changes(ctx, prune, apply=False)


@beat_group.command("sync")
@_PRUNE
@click.pass_context
def beat_sync(ctx: click.Context, prune: bool) -> None:
    """Make one Cloud Scheduler job per beat_schedule entry (create, update_job with a field
    mask, pause/resume); a second sync changes nothing."""
    _beat_changes(ctx, prune, apply=True)


@beat_group.command("run")
@click.argument("name")
@click.pass_context
def beat_run(ctx: click.Context, name: str) -> None:
    """Fire the job of beat_schedule entry NAME now (as "Force run" in the Cloud Console)."""
    from . import beat

    app = _app(ctx)
    entries = app.conf.beat_schedule or {}
    if name not in entries:
        raise click.ClickException(
            f"beat_schedule has no entry {name!r}; it has: {', '.join(sorted(entries)) or 'none'}")
    click.echo(f"ran {beat.run(app, name)}")


@main.command()
@click.argument("queue")
@click.confirmation_option(prompt="Delete every task of this queue?")
@click.pass_context
def purge(ctx: click.Context, queue: str) -> None:
    """Delete every task waiting in Cloud Tasks queue QUEUE (a Celery queue name)."""
    from . import gcp
    from .transport.cloudtasks import CloudTasksTransport

    path = gcp.queue_path(_app(ctx), queue)
    CloudTasksTransport().client().purge_queue(name=path)
    click.echo(f"purged {path}")


@main.group("results")
def results_group() -> None:
    """The result store result_backend names."""


@results_group.command("purge")
@click.pass_context
def results_purge(ctx: click.Context) -> None:
    """Delete expired results now (SQL stores also do it on writes; Redis expires keys)."""
    from .exceptions import BackendError, CeleryError

    try:
        store = _app(ctx).backend
        if store is None:
            raise click.ClickException(
                "the app has no result_backend: set one (e.g. db+postgresql://...) to purge")
        gone = store.purge()
        store.close()  # the pooled connections; a command is done once it has printed
    except (CeleryError, BackendError) as exc:
        # One line, no traceback: the message names the store and how to fix it.
        raise click.ClickException(" ".join(str(exc).split())) from None
    click.echo(f"purged {gone} expired record{'s' if gone != 1 else ''} from {store.url}")


@main.group("deploy")
def deploy_group() -> None:
    """Going to Google Cloud: the gcloud commands that deploy the app."""


@deploy_group.command("plan")
@click.option("--service", default=None, help="Cloud Run service name (default: the app's name).")
@click.option("--region", default=None, help="Cloud Run region (default: gcp_location).")
@click.option("--image", default=None,
              help="Container image to deploy (default: build this directory, --source=.).")
@click.option("--runtime-account", default=None, metavar="EMAIL",
              help="The service's identity (default: SERVICE-runtime@PROJECT...).")
@click.option("--sender", "senders", multiple=True, metavar="EMAIL",
              help="Another identity that sends tasks (e.g. your web app's); repeatable.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: a list of {comment, argv}, for machines.")
@click.pass_context
def deploy_plan(ctx: click.Context, service: str | None, region: str | None,
                image: str | None, runtime_account: str | None, senders: tuple[str, ...],
                output: str) -> None:
    """Print the gcloud commands, in order, that create the queues, jobs, service accounts
    and IAM roles from the app's configuration and deploy the worker (nothing is run)."""
    from . import deploy
    from .exceptions import CeleryError

    app = _app(ctx)
    try:
        steps = deploy.plan(app, service=service, region=region, image=image,
                            runtime_account=runtime_account, senders=senders)
    except CeleryError as exc:  # one line: the setting that is missing or wrong
        raise click.ClickException(" ".join(str(exc).split())) from None
    if output == "json":
        import json

        click.echo(json.dumps([{"comment": s.comment, "argv": list(s.argv)} for s in steps],
                              indent=2))
    else:
        click.echo(deploy.render(steps), nl=False)


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
    from .migrate.run import run

    sys.exit(run(path, mode, click.echo).exit_code(mode))  # type: ignore[arg-type]


if __name__ == "__main__":  # pragma: no cover
    main()
