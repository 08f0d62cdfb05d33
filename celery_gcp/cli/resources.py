"""The commands on the app's resources: its Cloud Tasks queues (``inspect queues``,
``queues plan/sync``, ``purge``), its Cloud Scheduler jobs (``beat plan/sync/run``), its result
store (``results purge``) and its deployment (``deploy plan``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from . import _app, inspect, main

if TYPE_CHECKING:
    from .. import queues

__all__ = ["beat_group", "deploy_group", "inspect_queues", "purge", "queues_group",
           "results_group"]


@inspect.command("queues")
@click.pass_context
def inspect_queues(ctx: click.Context) -> None:
    """Show each queue the app uses as Cloud Tasks has it (state, rate, retries, tasks)."""
    from .. import gcp, queues
    from ..transport.cloudtasks import CloudTasksTransport

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
    from .. import gcp, queues
    from ..transport.cloudtasks import CloudTasksTransport

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
    from .. import queues

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
    from .. import beat, gcp
    from ..exceptions import ScheduleError

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
    from .. import beat

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
    from .. import gcp
    from ..transport.cloudtasks import CloudTasksTransport

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
    from ..exceptions import BackendError, CeleryError

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
    from .. import deploy
    from ..exceptions import CeleryError

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

