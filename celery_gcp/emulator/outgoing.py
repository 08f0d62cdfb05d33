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

__all__ = ["DEFAULT_OAUTH_SCOPE", "Authorization", "apply_queue_target", "authorization_of",
           "caller_headers", "with_default_content_type"]

#: The scope of an ``oauth_token`` that names none (both services' documented default).
DEFAULT_OAUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Headers the services compute or replace, lower case.
_COMPUTED = frozenset({"host", "content-length", "user-agent", "transfer-encoding"})
_RESERVED = ("x-google-", "x-appengine-")
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
