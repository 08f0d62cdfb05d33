"""What a failed CreateTask means, and how long to wait before the next attempt.

:class:`Attempts` holds no I/O: the sync and async sends (and each entry of a bulk send) ask
it after each failure and sleep for what it says, so both share one retry policy. Celery's
``retry`` / ``retry_policy`` options of ``apply_async`` set it, with Celery's defaults.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..exceptions import DuplicateTaskError, TransportError

if TYPE_CHECKING:
    from ..message import Message
    from .base import SendOptions

__all__ = ["DEFAULT_RETRY_POLICY", "Attempts"]

#: Celery's default publish retry policy.
DEFAULT_RETRY_POLICY: Mapping[str, float] = {
    "max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


class Attempts:
    """The attempts of one message's create call.

    Example::

        attempts = Attempts(message, options)
        while True:
            try:
                client.create_task(request)
            except GoogleAPICallError as exc:
                delay = attempts.failed(exc)   # raises once the send is over
                if delay is not None:
                    time.sleep(delay)
                    continue
            break   # created (or it already existed: our own earlier attempt)
    """

    def __init__(self, message: Message, options: SendOptions | None) -> None:
        self.message = message
        self.options = options
        self.count = 0  # failed attempts so far

    def failed(self, exc: Exception) -> float | None:
        """After a failed attempt: ``None`` if the task exists after all (nothing more to do),
        else the wait before trying again; raises when the send is over."""
        from google.api_core import exceptions as gexc

        attempt, self.count = self.count, self.count + 1
        message, options = self.message, self.options
        if isinstance(exc, gexc.AlreadyExists):
            # After a transient failure, our own earlier attempt took effect; for a retry or
            # a relay hop, the same name means this very step was already sent.
            if attempt > 0 or message.retries > 0 or (
                    options is not None and options.on_duplicate == "ignore"):
                return None
            raise DuplicateTaskError(message.id) from None
        if isinstance(exc, gexc.ServiceUnavailable | gexc.DeadlineExceeded
                      | gexc.InternalServerError):
            return _next_delay(_policy(options), attempt, exc)
        raise TransportError(
            f"Cloud Tasks refused task {message.task}[{message.id}]: {exc}") from exc


def _policy(options: SendOptions | None) -> Mapping[str, float] | None:
    if options is not None and not options.retry:
        return None
    if options is not None and options.retry_policy:
        return {**DEFAULT_RETRY_POLICY, **options.retry_policy}
    return DEFAULT_RETRY_POLICY


def _next_delay(policy: Mapping[str, float] | None, attempt: int, exc: Exception) -> float:
    if policy is None or attempt >= int(policy["max_retries"]):
        raise TransportError(f"Cloud Tasks did not take the task: {exc}") from exc
    delay = min(float(policy["interval_max"]),
                float(policy["interval_start"]) + attempt * float(policy["interval_step"]))
    return delay * (0.5 + random.random())  # jitter keeps many senders from lock-stepping
