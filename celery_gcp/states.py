"""Task states, mirroring :mod:`celery.states`: the names, the sets, and their precedence.

A :class:`state` compares by precedence, not alphabetically: ``state(SUCCESS) >
state(PENDING)``. A state that is not built in (``"PROGRESS"``, ``IGNORED``) ranks below
``SUCCESS`` and ``FAILURE`` and above every other built-in state, as in Celery.
"""

from __future__ import annotations

__all__ = [
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "IGNORED",
    "NONE_PRECEDENCE",
    "PENDING",
    "PRECEDENCE",
    "PRECEDENCE_LOOKUP",
    "PROPAGATE_STATES",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "UNREADY_STATES",
    "precedence",
    "state",
]

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
RETRY = "RETRY"
IGNORED = "IGNORED"

#: The states from the highest precedence to the lowest; ``None`` stands for every state not
#: listed (custom states).
PRECEDENCE: list[str | None] = [
    SUCCESS, FAILURE, None, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING,
]
#: A state's index in :data:`PRECEDENCE` (lower is higher precedence).
PRECEDENCE_LOOKUP: dict[str | None, int] = {name: i for i, name in enumerate(PRECEDENCE)}
#: The index of a state not listed in :data:`PRECEDENCE`.
NONE_PRECEDENCE = PRECEDENCE_LOOKUP[None]

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
#: The states a task goes through (REJECTED and IGNORED are left out, as in Celery).
ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED})


def precedence(name: str | None) -> int:
    """The index of ``name`` in :data:`PRECEDENCE`; lower means higher precedence."""
    return PRECEDENCE_LOOKUP.get(name, NONE_PRECEDENCE)


class state(str):
    """A state name that compares by precedence: ``state(PENDING) < state(SUCCESS)``.

    Equality and hashing stay those of the string.
    """

    __slots__ = ()

    def __gt__(self, other: str) -> bool:
        return precedence(self) < precedence(other)

    def __ge__(self, other: str) -> bool:
        return precedence(self) <= precedence(other)

    def __lt__(self, other: str) -> bool:
        return precedence(self) > precedence(other)

    def __le__(self, other: str) -> bool:
        return precedence(self) >= precedence(other)
