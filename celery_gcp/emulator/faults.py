"""Fault injection: make RPCs fail, or dispatch to a URL fail or hang, on purpose.

Real-world failures become reproducible tests::

    emu.faults.fail_rpc("CreateTask", grpc.StatusCode.UNAVAILABLE, times=2)          # before
    emu.faults.fail_rpc("CreateTask", grpc.StatusCode.DEADLINE_EXCEEDED, after=True)  # took effect
    emu.faults.fail_dispatch("http://127.0.0.1:8000/_tasks/", status=503, times=3)
    emu.faults.fail_dispatch("http://127.0.0.1:8000/slow", hang=True)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

__all__ = ["DispatchFault", "Faults", "RpcFault"]


@dataclass
class RpcFault:
    """The next ``times`` calls of ``method`` fail with ``code`` (``after`` they took effect)."""

    method: str
    code: grpc.StatusCode
    times: int
    after: bool
    message: str


@dataclass
class DispatchFault:
    """Dispatches to URLs starting with ``prefix`` answer ``status``, or hang, ``times`` times."""

    prefix: str
    status: int | None
    hang: bool
    times: int | None


class Faults:
    """The faults armed on one emulator; thread-safe, so tests arm them from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rpc: list[RpcFault] = []
        self._dispatch: list[DispatchFault] = []

    def fail_rpc(self, method: str, code: grpc.StatusCode, *, times: int = 1,
                 after: bool = False, message: str = "injected fault") -> None:
        """Make the next ``times`` calls of RPC ``method`` (e.g. ``"CreateTask"``) fail.

        With ``after=True`` the call takes effect first and then reports the error: the case
        where a client sees DEADLINE_EXCEEDED for a task that was in fact created.
        """
        with self._lock:
            self._rpc.append(RpcFault(method, code, times, after, message))

    def fail_dispatch(self, url_prefix: str, *, status: int | None = 503, hang: bool = False,
                      times: int | None = None) -> None:
        """Make dispatches to URLs under ``url_prefix`` answer ``status`` or hang (until the
        dispatch deadline); ``times=None`` for every dispatch until :meth:`clear`."""
        with self._lock:
            self._dispatch.append(DispatchFault(url_prefix, status, hang, times))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._rpc.clear()
            self._dispatch.clear()

    def take_rpc(self, method: str) -> RpcFault | None:
        """The fault for this call of ``method``, if one is armed (and count it)."""
        with self._lock:
            for fault in self._rpc:
                if fault.method == method and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def take_dispatch(self, url: str) -> DispatchFault | None:
        """The fault for a dispatch to ``url``, if one is armed (and count it)."""
        with self._lock:
            for fault in self._dispatch:
                if url.startswith(fault.prefix) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None
