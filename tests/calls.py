"""A waitable record of calls, for tests whose work runs on other threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Calls:
    """What ran: (name, value) in order; ``wait_for(n)`` blocks until n are in."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def record(self, name: str, value: Any) -> None:
        with self.cond:
            self.calls.append((name, value))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[str, Any]]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"expected {count} calls, got {self.calls}")
            return list(self.calls)
