"""A Cloud Scheduler job at run time: the loop that fires it on its schedule.

As the service documents: execution n + 1 never starts before execution n (all its attempts)
has finished, so a late execution delays the next rather than overlapping it; a failed attempt
is retried up to ``retry_count`` times with exponential backoff, but not past the next scheduled
start; a paused job does not fire; ``RunJob`` fires at once, even while an execution runs.

With both ``retry_count`` and ``max_retry_duration`` set, retries go on until both limits are
reached (still never past the next scheduled start). While a retry waits, the job's
``schedule_time`` is the retry's time. An attempt that runs past ``attempt_deadline`` is recorded
as DEADLINE_EXCEEDED. An error inside the emulator during an execution is recorded as a failed
attempt (INTERNAL) and the schedule goes on; a schedule loop that died anyway is restarted by
:meth:`JobRunner.revive` (on UpdateJob, PauseJob, ResumeJob and RunJob).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from google.cloud import scheduler_v1

from . import appengine_cron
from .core import Core, from_duration, set_timestamp
from .dispatch import Attempt
from .names import short_id
from .outgoing import HTTP_METHODS, authorization_of, caller_headers, with_default_content_type

__all__ = ["DEFAULT_TIME_ZONE", "JobRunner", "apply_job_defaults"]

JobPb: Any = scheduler_v1.Job.pb()
_ENABLED = scheduler_v1.Job.State.ENABLED
_PAUSED = scheduler_v1.Job.State.PAUSED
DEFAULT_TIME_ZONE = "Etc/UTC"
DEFAULT_ATTEMPT_DEADLINE = 180.0
# google.rpc.Code values recorded in a job's status.
_OK, _DEADLINE_EXCEEDED, _FAILED_PRECONDITION, _INTERNAL, _UNAVAILABLE = 0, 4, 9, 13, 14

logger = logging.getLogger("celery_gcp.emulator")


def apply_job_defaults(job: Any) -> None:
    """Fill what the service fills for a job created without it."""
    if not job.time_zone:
        job.time_zone = DEFAULT_TIME_ZONE
    retry = job.retry_config
    if not retry.HasField("min_backoff_duration"):
        retry.min_backoff_duration.FromSeconds(5)
    if not retry.HasField("max_backoff_duration"):
        retry.max_backoff_duration.FromSeconds(3600)
    if not retry.max_doublings:
        retry.max_doublings = 5
    if not job.HasField("attempt_deadline"):
        job.attempt_deadline.FromSeconds(int(DEFAULT_ATTEMPT_DEADLINE))
    if not job.state:
        job.state = _ENABLED


def backoff(retry: Any, retries: int) -> float:
    """Wait before retry ``retries + 1``: doubling ``max_doublings`` times, then linear."""
    low = from_duration(retry.min_backoff_duration)
    high = from_duration(retry.max_backoff_duration)
    doublings = retry.max_doublings
    delay = low * 2**retries if retries <= doublings else (
        low * 2**doublings * (retries - doublings + 1))
    return float(min(high, delay))


class JobRunner:
    """Fires one job on its schedule."""

    def __init__(self, pb: Any, core: Core) -> None:
        self.pb = pb
        self.core = core
        self._changed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._manual: set[asyncio.Task[None]] = set()
        self._executing = False
        self._attempting = 0
        self._retry_at: float | None = None
        self.next_fire = self._next_after(core.clock.now())

    @property
    def name(self) -> str:
        """The job's resource name."""
        return str(self.pb.name)

    def start(self) -> None:
        """Start the schedule loop (inside the running loop)."""
        self._loop = asyncio.create_task(self._run(), name=f"job {self.name}")
        self._loop.add_done_callback(_report_death)

    def revive(self) -> None:
        """Restart the schedule loop if it died, so a job never stays dead."""
        if self._loop is not None and self._loop.done():
            self.start()

    async def stop(self) -> None:
        """Stop firing; an execution in progress is cancelled."""
        tasks = [t for t in [self._loop, *self._manual] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def busy(self) -> bool:
        """Whether an attempt is in flight, or an attempt or execution is due now."""
        now = self.core.clock.now()
        if self._attempting or (self._retry_at is not None and self._retry_at <= now):
            return True
        return (not self._executing and self.pb.state == _ENABLED
                and self.next_fire <= now)

    def executions(self) -> int:
        """Executions in flight: fired (on schedule or by RunJob) and not finished, that is an
        attempt not yet answered or a retry still to come."""
        # done() turns true in the step that ends the run, before its done callback.
        return sum(not run.done() for run in self._manual) + int(self._executing)

    def rescheduled(self) -> None:
        """The schedule, time zone or state changed: the next fire is counted from now."""
        self.next_fire = self._next_after(self.core.clock.now())
        self._changed.set()

    def run_now(self) -> None:
        """Fire at once (RunJob), even while a scheduled execution is running."""
        run = asyncio.create_task(self._execute(self.core.clock.now(), retries_until=None))
        self._manual.add(run)
        run.add_done_callback(self._manual.discard)

    def _next_after(self, when: float) -> float:
        after = datetime.fromtimestamp(when, UTC)
        fire = appengine_cron.next_fire(self.pb.schedule,
                                        self.pb.time_zone or DEFAULT_TIME_ZONE, after)
        when = fire.timestamp()
        set_timestamp(self.pb.schedule_time, when)
        return when

    async def _run(self) -> None:
        clock = self.core.clock
        while True:
            self._changed.clear()
            if self.pb.state != _ENABLED:
                await self._changed.wait()
                continue
            if clock.now() < self.next_fire:
                await clock.sleep_until(self.next_fire, self._changed)
                continue
            fire = self.next_fire
            # A late execution delays the next one (due at once when it ends); it never
            # overlaps it. A reschedule during the execution replaces it.
            self.next_fire = self._next_after(fire)
            self._executing = True
            try:
                await self._execute(fire, retries_until=self.next_fire)
            finally:
                self._executing = False

    async def _execute(self, fire: float, retries_until: float | None) -> None:
        try:
            await self._attempts(fire, retries_until)
        except Exception as exc:  # one broken execution must not end the job
            logger.exception("job %s: execution failed inside the emulator", self.pb.name)
            self._record(fire, 0, Attempt(None, f"emulator error: {exc!r}", 0.0), _INTERNAL)
        finally:
            # The retry (if one waited) is over: the job's next time is its schedule's again.
            set_timestamp(self.pb.schedule_time, self.next_fire)

    async def _attempts(self, fire: float, retries_until: float | None) -> None:
        core, pb = self.core, self.pb
        target = pb.http_target
        retry = pb.retry_config
        headers = with_default_content_type(caller_headers(target.headers), target.body)
        headers.update({
            "User-Agent": "Google-Cloud-Scheduler",
            "X-CloudScheduler": "true",
            "X-CloudScheduler-JobName": short_id(pb.name),
            "X-CloudScheduler-ScheduleTime": _rfc3339(fire),
        })
        auth = authorization_of(target)
        deadline = from_duration(pb.attempt_deadline) or DEFAULT_ATTEMPT_DEADLINE
        started = core.clock.now()
        retries = 0
        while True:
            self._attempting += 1
            try:
                result = await core.sender.send(HTTP_METHODS.get(target.http_method, "POST"),
                                                target.uri, headers, target.body, deadline,
                                                auth)
                code = _status_code(result)
            except Exception as exc:  # a failed attempt, retried as any other
                logger.exception("job %s: attempt failed inside the emulator", pb.name)
                result, code = Attempt(None, f"emulator error: {exc!r}", 0.0), _INTERNAL
            finally:
                self._attempting -= 1
            self._record(fire, retries, result, code)
            now = core.clock.now()
            wait = backoff(retry, retries)
            if result.succeeded or not _retries_left(retry, retries, now + wait - started):
                return
            if retries_until is not None and now + wait >= retries_until:
                return  # retries stop at the next scheduled start
            retries += 1
            self._retry_at = now + wait
            set_timestamp(self.pb.schedule_time, self._retry_at)
            core.store.put_job(self.pb.name, self.pb.SerializeToString())
            try:
                await core.clock.sleep_until(now + wait)
            finally:
                self._retry_at = None

    def _record(self, fire: float, retries: int, result: Attempt, code: int) -> None:
        """Record an attempt's outcome on the job (the current one: UpdateJob replaces it)."""
        core, pb = self.core, self.pb
        set_timestamp(pb.last_attempt_time, core.clock.now())
        pb.status.code = code
        pb.status.message = "" if result.succeeded else result.reason
        core.store.put_job(pb.name, pb.SerializeToString())
        core.log_dispatch(job=short_id(pb.name), schedule_time=_rfc3339(fire),
                          attempt=retries + 1, status=result.status or result.reason,
                          latency_ms=round(result.latency * 1000, 1))


def _status_code(result: Attempt) -> int:
    if result.succeeded:
        return _OK
    if result.reason.startswith("DEADLINE_EXCEEDED"):
        return _DEADLINE_EXCEEDED
    return _UNAVAILABLE if result.status is None or result.status >= 500 else (
        _FAILED_PRECONDITION)


def _retries_left(retry: Any, retries: int, elapsed: float) -> bool:
    """Whether a failed execution that made ``retries`` retries is retried once more, the retry
    starting ``elapsed`` seconds after the first attempt: with both ``retry_count`` and
    ``max_retry_duration`` set, until both limits are reached; ``retry_count`` 0 never
    retries."""
    if not retry.retry_count:
        return False
    limit = from_duration(retry.max_retry_duration)
    return retries < retry.retry_count or (limit > 0 and elapsed <= limit)


def _report_death(loop: asyncio.Task[None]) -> None:
    if not loop.cancelled() and loop.exception() is not None:
        logger.error("%s: schedule loop died (UpdateJob restarts it)", loop.get_name(),
                     exc_info=loop.exception())


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
