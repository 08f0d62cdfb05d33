"""Putting an app on Google Cloud: the ``gcloud`` commands ``celery-gcp deploy plan`` prints.

The commands come from the app's own configuration, in the order they must run: enable the
APIs, create the service accounts, grant the roles, create the Cloud Tasks queues (with the
settings ``queues sync`` applies: :func:`celery_gcp.queues.desired`), deploy the Cloud Run
service, let the token-signing account invoke it, and create the Cloud Scheduler jobs (built
by :func:`celery_gcp.beat.desired_job`, as ``beat sync`` builds them)::

    plan(app, service="worker", region="europe-west1")   # -> [Step, ...]

Two identities take part. ``gcp_service_account`` signs the OIDC token of every task and
job: it needs ``roles/run.invoker`` on the service. The service's runtime account (and any
other sender) creates tasks: it needs ``roles/cloudtasks.enqueuer`` and
``roles/iam.serviceAccountUser`` on the signing account (to name it in a task).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import beat, gcp, queues
from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .app import Celery

__all__ = ["Step", "environment", "plan", "render", "service_name"]

SCHEDULER_AUTH_PAGE = "https://cloud.google.com/scheduler/docs/http-target-auth"
TASKS_AUTH_PAGE = "https://cloud.google.com/tasks/docs/creating-http-target-tasks"
_APIS = ("run.googleapis.com", "cloudtasks.googleapis.com", "cloudscheduler.googleapis.com",
         "iam.googleapis.com")
# What `gcloud run deploy --source` builds and stores the image with.
_SOURCE_APIS = ("cloudbuild.googleapis.com", "artifactregistry.googleapis.com")
_SERVICE = re.compile(r"[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?\Z")  # a Cloud Run service name
_ACCOUNT_ID = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]\Z")  # a service account id
_WIDTH = 100
# beat job setting -> the flag of `gcloud scheduler jobs create http`.
_JOB_FLAGS = {"retry_count": "--max-retry-attempts", "max_retry_duration": "--max-retry-duration",
              "min_backoff": "--min-backoff", "max_backoff": "--max-backoff",
              "max_doublings": "--max-doublings", "attempt_deadline": "--attempt-deadline"}


@dataclass(frozen=True)
class Step:
    """One command to run (``argv``), with why (``comment``); ``argv`` empty: a note."""

    comment: str
    argv: tuple[str, ...] = ()

    def render(self) -> str:
        """The comment lines, then the command, shell-quoted (copy-pastable); a long one has
        a flag a line, continued with backslashes."""
        lines = [f"# {line}" if line else "#" for line in self.comment.splitlines()]
        return "\n".join([*lines, *([self.command()] if self.argv else [])])

    def command(self) -> str:
        """The command as a shell line (lines, when over 100 characters)."""
        words = [shlex.quote(word) for word in self.argv]
        if len(" ".join(words)) <= _WIDTH:
            return " ".join(words)
        first = next((i for i, w in enumerate(self.argv) if w.startswith("--")), len(words))
        return " \\\n    ".join([" ".join(words[:first]), *words[first:]])


def render(steps: Iterable[Step]) -> str:
    """The steps as a shell script's text: one block per step, blank lines between."""
    return "\n\n".join(step.render() for step in steps) + "\n"


def _project(app: Celery) -> str:
    # Not gcp.project(): an emulator variable in the shell must not stand in for a project.
    value = app.conf.gcp_project
    if not value:
        raise ImproperlyConfigured(
            "gcp_project is not set: set it (or GOOGLE_CLOUD_PROJECT) to the project to "
            "deploy to")
    return str(value)


def _signer(app: Celery, project: str) -> str:
    value = app.conf.gcp_service_account
    if not value:
        raise ImproperlyConfigured(
            "gcp_service_account is not set: set it (or CELERY_GCP_SERVICE_ACCOUNT) to the "
            "account that signs the tasks' OIDC tokens, e.g. "
            f"tasks@{project}.iam.gserviceaccount.com")
    return str(value)


def service_name(app: Celery, given: str | None) -> str:
    """The Cloud Run service: ``given``, or the app's name made a valid service name."""
    if given is None:
        name = re.sub(r"[^a-z0-9-]+", "-", (app.main or "").lower()).strip("-")[:49].strip("-")
        return name if _SERVICE.match(name) else "celery-worker"
    if not _SERVICE.match(given):
        raise ImproperlyConfigured(
            f"--service {given!r} is not a Cloud Run service name: lowercase letters, digits "
            "and hyphens, starting with a letter, at most 49 characters")
    return given


def _account(email: str, project: str) -> str | None:
    """The account id of ``email`` if it is a user-managed account of ``project``."""
    suffix = f"@{project}.iam.gserviceaccount.com"
    return email[: -len(suffix)] if email.endswith(suffix) else None


def _runtime(given: str | None, service: str, project: str) -> str:
    if given is None:
        return f"{service[:22].rstrip('-')}-runtime@{project}.iam.gserviceaccount.com"
    account = _account(given, project)
    if "@" not in given or (account is not None and not _ACCOUNT_ID.match(account)):
        raise ImproperlyConfigured(
            f"--runtime-account {given!r} is not a service account email: use "
            f"NAME@{project}.iam.gserviceaccount.com, NAME 6 to 30 lowercase letters, digits "
            "or hyphens")
    return given


def _seconds(value: float) -> str:
    return f"{value:g}s"


def environment(app: Celery, project: str, signer: str) -> dict[str, str]:
    """The variables the worker reads its Google Cloud settings from (``config.defaults``),
    so the deployed service sees what the app was planned with. The certs URL is left to
    its default (Google's): a local emulator's must never reach production."""
    conf = app.conf
    env = {"GOOGLE_CLOUD_PROJECT": project, "CELERY_GCP_LOCATION": str(conf.gcp_location),
           "CELERY_GCP_TASK_BASE_URL": gcp.base_url(app),
           "CELERY_GCP_SERVICE_ACCOUNT": signer}
    optional = {"CELERY_GCP_SCHEDULER_LOCATION": (conf.gcp_scheduler_location, None),
                "CELERY_GCP_TASK_ENDPOINT_PREFIX": (conf.task_endpoint_prefix, "/_tasks"),
                "CELERY_GCP_TASK_AUTH": (conf.task_auth, "oidc"),
                "CELERY_GCP_TASK_OIDC_AUDIENCE": (conf.task_oidc_audience, None)}
    for name, (value, default) in optional.items():
        if value and value != default:
            env[name] = str(value)
    return env


def _env_flag(env: dict[str, str]) -> str:
    pairs = [f"{k}={v}" for k, v in env.items()]
    if not any("," in pair for pair in pairs):
        return "--set-env-vars=" + ",".join(pairs)
    # gcloud splits on commas unless the value starts with ^DELIM^ (`gcloud topic escaping`).
    delim = next(d for d in "@|;#~:" if not any(d in pair for pair in pairs))
    return f"--set-env-vars=^{delim}^" + delim.join(pairs)


def plan(app: Celery, *, service: str | None = None, region: str | None = None,
         image: str | None = None, runtime_account: str | None = None,
         senders: Iterable[str] = ()) -> list[Step]:
    """The commands that deploy ``app``, in order; raises :class:`ImproperlyConfigured`
    (or :class:`ScheduleError`) naming the setting that is missing or wrong."""
    project = _project(app)
    signer = _signer(app, project)
    service = service_name(app, service)
    region = region or str(app.conf.gcp_location)
    runtime = _runtime(runtime_account, service, project)
    base = gcp.base_url(app)
    where = (f"--project={project}",)
    specs = queues.desired(app, lambda name: gcp.queue_path(app, name))
    jobs = [(entry, beat.desired_job(app, entry, beat.parent(app)))
            for entry in beat.entries(app).values()]

    steps = [Step(f"celery-gcp deploy plan: app {app.main or 'celery'!r} as Cloud Run service "
                  f"{service!r} in {region}, project {project}; tasks call {base}")]
    steps.append(Step(
        "1. Enable the APIs. Enabling Cloud Scheduler and Cloud Tasks gives their service agents\n"
        "(service-PROJECT_NUMBER@gcp-sa-cloudscheduler / gcp-sa-cloudtasks) the role that mints\n"
        "the OIDC tokens of jobs and tasks; do not revoke it (a project that enabled Cloud\n"
        "Scheduler before 2019-03-19 grants roles/cloudscheduler.serviceAgent by hand):\n"
        + SCHEDULER_AUTH_PAGE,
        ("gcloud", "services", "enable", *_APIS, *(() if image else _SOURCE_APIS), *where)))
    steps += _accounts(signer, runtime, project)
    steps += _sender_roles(signer, [runtime, *senders], project)
    for spec in specs:
        steps.append(_queue_step(spec, project))
    steps.append(_deploy_step(app, service, region, image, runtime, project, signer))
    steps.append(Step(
        f"6. Only the token-signing account may call the service ({SCHEDULER_AUTH_PAGE}).",
        ("gcloud", "run", "services", "add-iam-policy-binding", service, f"--region={region}",
         f"--member=serviceAccount:{signer}", "--role=roles/run.invoker", *where)))
    for entry, job in jobs:
        steps += _job_steps(entry, job, project)
    return steps


def _accounts(signer: str, runtime: str, project: str) -> list[Step]:
    steps = []
    for email, role in ((signer, "signs the OIDC tokens of tasks and jobs"),
                        (runtime, "runs the Cloud Run service and sends its tasks")):
        account = _account(email, project)
        if account is None:
            steps.append(Step(f"2. {email}: {role}; not an account of {project}, so not "
                              "created here (Cloud Scheduler needs one of the job's project)."))
        elif not any(account in step.argv for step in steps):
            steps.append(Step(f"2. The account that {role}.",
                              ("gcloud", "iam", "service-accounts", "create", account,
                               f"--display-name=celery-gcp: {role}"[:100],
                               f"--project={project}")))
    return steps


def _sender_roles(signer: str, senders: list[str], project: str) -> list[Step]:
    steps = []
    for sender in dict.fromkeys(senders):  # once each, in the order given
        member = f"--member=serviceAccount:{sender}"
        steps.append(Step(
            f"3. {sender} creates tasks ({TASKS_AUTH_PAGE}).",
            ("gcloud", "projects", "add-iam-policy-binding", project, member,
             "--role=roles/cloudtasks.enqueuer", "--condition=None")))
        steps.append(Step(
            f"3. ...naming {signer} as their OIDC identity (iam.serviceAccounts.actAs).",
            ("gcloud", "iam", "service-accounts", "add-iam-policy-binding", signer, member,
             "--role=roles/iam.serviceAccountUser", f"--project={project}")))
    return steps


def _queue_step(spec: queues.QueueSpec, project: str) -> Step:
    *_, location, _, queue_id = spec.path.split("/")
    flags = []
    for key, value in spec.settings.items():
        kind = queues.FIELDS[key][1]
        shown = _seconds(value) if kind == "duration" else (
            str(int(value)) if kind == "int" else f"{value:g}")
        flags.append(f"--{key.replace('_', '-')}={shown}")
    return Step(f"4. The queue of Celery queue {spec.name!r}, as `celery-gcp queues sync` makes it "
                "(it updates an existing one).",
                ("gcloud", "tasks", "queues", "create", queue_id, f"--location={location}",
                 *flags, f"--project={project}"))


def _deploy_step(app: Celery, service: str, region: str, image: str | None, runtime: str,
                 project: str, signer: str) -> Step:
    source = f"--image={image}" if image else "--source=."
    return Step(
        "5. The worker: authentication required (Cloud Run checks run.invoker, then celery_gcp "
        "the token);\nthe settings reach it as the variables the app reads.",
        ("gcloud", "run", "deploy", service, source, f"--region={region}",
         f"--service-account={runtime}", "--no-allow-unauthenticated",
         _env_flag(environment(app, project, signer)), f"--project={project}"))


def _job_steps(entry: beat.Entry, job: Any, project: str) -> list[Step]:
    *_, location, _, job_id = job.name.split("/")
    target = job.http_target
    flags = []
    for key, flag in _JOB_FLAGS.items():
        value = entry.job[key]
        kind = beat.JOB_SETTINGS[key][1]
        flags.append(f"{flag}={_seconds(value) if kind == 'duration' else int(value)}")
    steps = [Step(
        f"7. beat_schedule[{entry.name!r}]: {entry.task}, as `celery-gcp beat sync` makes it "
        f"({SCHEDULER_AUTH_PAGE}).",
        ("gcloud", "scheduler", "jobs", "create", "http", job_id, f"--location={location}",
         f"--schedule={job.schedule}", f"--time-zone={job.time_zone}", f"--uri={target.uri}",
         "--http-method=post", f"--description={job.description}",
         f"--oidc-service-account-email={target.oidc_token.service_account_email}",
         f"--oidc-token-audience={target.oidc_token.audience}", *flags,
         f"--project={project}"))]
    if not entry.enabled:
        steps.append(Step(f"7. beat_schedule[{entry.name!r}] has enabled=False: paused.",
                          ("gcloud", "scheduler", "jobs", "pause", job_id,
                           f"--location={location}", f"--project={project}")))
    return steps
