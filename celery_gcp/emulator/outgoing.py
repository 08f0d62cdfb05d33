"""What a task's attempt or a job's execution sends: the caller's headers as the services pass
them on, the queue's ``http_target`` overrides, and the ``Authorization`` to attach.

Both services document the same rules for the headers a caller sets ("ignored or replaced"):
``Host`` is derived from the URL and ``Content-Length`` computed from the body (the HTTP
client does both), ``User-Agent`` is the service's own, and ``X-Google-*`` /
``X-AppEngine-*`` are for Google's use, so they are dropped. Cloud Tasks sets no
``Content-Type``; Cloud Scheduler sets ``application/octet-stream`` on a job with a body and
none of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .core import from_duration
from .names import short_id
from .queue_config import DEFAULT_DISPATCH_DEADLINE
from .statuses import http_status

__all__ = ["BODY_METHODS", "DEFAULT_OAUTH_SCOPE", "HTTP_METHODS", "Authorization",
           "apply_queue_target", "authorization_of", "caller_headers", "task_attempt",
           "with_default_content_type"]

#: The scope of an ``oauth_token`` that names none (both services' documented default).
DEFAULT_OAUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Headers the services compute or replace, lower case.
_COMPUTED = frozenset({"host", "content-length", "user-agent", "transfer-encoding"})
_RESERVED = ("x-google-", "x-appengine-")
# The HttpMethod enum of both APIs: 1 = POST (the default), 2 = GET, ...
HTTP_METHODS = {1: "POST", 2: "GET", 3: "HEAD", 4: "PUT", 5: "DELETE", 6: "PATCH", 7: "OPTIONS"}
# The methods that may carry a body, in Cloud Tasks and Cloud Scheduler alike (0: unset, POST).
BODY_METHODS = frozenset({0, 1, 4, 6})
# UriOverride.Scheme and UriOverrideEnforceMode values.
_SCHEMES = {1: "http", 2: "https"}
_IF_NOT_EXISTS = 1


@dataclass(frozen=True, slots=True)
class Authorization:
    """The token an attempt carries: ``kind`` is ``"oidc"`` (an ID token for ``audience``:
    empty means the URL) or ``"oauth"`` (an access token with ``scope``)."""

    kind: str
    email: str
    audience: str = ""
    scope: str = ""


def caller_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a task or job that reach the handler (see the module docstring)."""
    return {name: value for name, value in headers.items()
            if name.lower() not in _COMPUTED and not name.lower().startswith(_RESERVED)}


def with_default_content_type(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Cloud Scheduler's rule: a body without a ``Content-Type`` is
    ``application/octet-stream``."""
    if body and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/octet-stream"
    return headers


def authorization_of(target: Any) -> Authorization | None:
    """The token a task's ``http_request`` (or a job's / queue's ``http_target``) asks for."""
    if target.HasField("oidc_token"):
        token = target.oidc_token
        return Authorization("oidc", token.service_account_email, audience=token.audience)
    if target.HasField("oauth_token"):
        token = target.oauth_token
        return Authorization("oauth", token.service_account_email,
                             scope=token.scope or DEFAULT_OAUTH_SCOPE)
    return None


def apply_queue_target(queue_target: Any, url: str, method: int, headers: dict[str, str],
                       auth: Authorization | None,
                       ) -> tuple[str, int, dict[str, str], Authorization | None]:
    """A task's URL, method, headers and token with its queue's ``http_target`` applied, as
    the fields document: the URI override (scheme, host, port, path, query) always, or only
    where the task's URL lacks that part (``IF_NOT_EXISTS``); the method; the header
    overrides; the queue's token in place of the task's."""
    target = queue_target
    if target.HasField("uri_override"):
        url = _override_uri(target.uri_override, url)
    if target.http_method:
        method = target.http_method
    for override in target.header_overrides:
        headers[override.header.key] = override.header.value
    headers = caller_headers(headers)
    auth = authorization_of(target) or auth
    return url, method, headers, auth


def task_attempt(queue: Any, task: Any, *, retries: int, executions: int, due: float,
                 ) -> tuple[str, str, dict[str, str], bytes, float, Authorization | None]:
    """The HTTP request of an attempt of ``task`` (raw protobuf) in ``queue``: method, URL,
    headers, body, deadline, token. ``retries``: attempts before this one; ``executions``:
    those answered with other than a 5xx; ``due``: its schedule time."""
    request = task.http_request
    method, url = request.http_method, request.url
    headers = caller_headers(request.headers)
    auth = authorization_of(request)
    if queue.HasField("http_target"):
        url, method, headers, auth = apply_queue_target(
            queue.http_target, url, method, headers, auth)
    headers.update({
        "User-Agent": "Google-Cloud-Tasks",
        "X-CloudTasks-QueueName": short_id(queue.name),
        "X-CloudTasks-TaskName": short_id(task.name),
        "X-CloudTasks-TaskRetryCount": str(retries),
        "X-CloudTasks-TaskExecutionCount": str(executions),
        "X-CloudTasks-TaskETA": f"{due:.6f}",
    })
    if retries:
        last = task.last_attempt
        status = last.response_status
        headers["X-CloudTasks-TaskRetryReason"] = status.message or "unknown"
        if last.HasField("response_time"):
            headers["X-CloudTasks-TaskPreviousResponse"] = str(http_status(status))
    # A GET set by the queue drops the task's body, as the field says.
    body = request.body if method in BODY_METHODS else b""
    deadline = (from_duration(task.dispatch_deadline) if task.HasField("dispatch_deadline")
                else DEFAULT_DISPATCH_DEADLINE)
    return HTTP_METHODS.get(method, "POST"), url, headers, body, deadline, auth


def _override_uri(override: Any, url: str) -> str:
    parts = urlsplit(url)
    only_missing = override.uri_override_enforce_mode == _IF_NOT_EXISTS
    scheme, host, port = parts.scheme, parts.hostname or "", parts.port
    path, query = parts.path, parts.query
    if override.HasField("scheme") and override.scheme in _SCHEMES and not (
            only_missing and scheme):
        scheme = _SCHEMES[override.scheme]
    if override.HasField("host") and not (only_missing and host):
        host = override.host
    if override.HasField("port") and not (only_missing and port):
        port = override.port or None  # 0 clears the port
    if override.HasField("path_override") and not (only_missing and path not in ("", "/")):
        path = override.path_override.path
    if override.HasField("query_override") and not (only_missing and query):
        query = override.query_override.query_params
    netloc = host if port is None else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((scheme, netloc, path, query, parts.fragment))
