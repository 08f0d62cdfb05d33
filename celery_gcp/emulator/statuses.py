"""How the services record an attempt's answer: HTTP statuses as ``google.rpc.Code`` values
(a task's ``last_attempt.response_status``), and back (``X-CloudTasks-TaskPreviousResponse``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["http_status", "rpc_code"]

# HTTP status <-> google.rpc.Code, as the service reports attempt statuses.
_HTTP_TO_RPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 500: 13, 501: 12,
                503: 14, 504: 4}
_RPC_TO_HTTP = {v: k for k, v in _HTTP_TO_RPC.items()}


def rpc_code(status: int) -> int:
    """The ``google.rpc.Code`` an HTTP ``status`` is recorded as."""
    if 200 <= status < 300:
        return 0
    return _HTTP_TO_RPC.get(status, 2 if status >= 500 else 9)


def http_status(status: Any) -> int:
    """The HTTP status of a recorded ``google.rpc.Status`` (its message, else its code)."""
    words = str(status.message).split()
    if len(words) > 1 and words[0] == "HTTP" and words[1].isdigit():
        return int(words[1])
    return _RPC_TO_HTTP.get(int(status.code), 500)
