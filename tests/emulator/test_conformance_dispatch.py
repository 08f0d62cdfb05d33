"""What reaches the handler, point by point against the services' documentation (the field
comments of tasks_v2.HttpRequest / HttpTarget and scheduler_v1.HttpTarget), through the
official clients and a recording HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from google.cloud import tasks_v2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from celery_gcp.emulator import Emulator, ManualClock
from celery_gcp.testing import serve

from .conftest import Handler

Make = Callable[..., Any]
HOSTILE = {"Host": "evil.example", "Content-Length": "3", "User-Agent": "mine",
           "X-Google-Internal": "1", "X-AppEngine-Country": "ZZ", "X-Mine": "kept"}


def task(url: str, **fields: Any) -> dict[str, Any]:
    return {"http_request": {"url": url, "body": b"hello", **fields}}


def job(emu: Emulator, name: str, url: str, **target: Any) -> dict[str, Any]:
    return {"name": f"{emu.location}/jobs/{name}", "schedule": "0 3 * * *",
            "time_zone": "UTC", "http_target": {"uri": url, **target}}


def claims(authorization: str) -> dict[str, Any]:
    payload = authorization.split(" ", 1)[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# -- 1, 2, 3: computed and reserved headers ----------------------------------------------------


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_host_content_length_user_agent_and_google_headers_are_the_services(
        emu: Emulator, make_queue: Make, handler: Handler, client_kind: str) -> None:
    queue = make_queue("hdr").name
    request = task(f"{handler.url}/h", headers={**HOSTILE, "Content-Type": "text/plain"})
    if client_kind == "sync":
        emu.tasks_client().create_task(parent=queue, task=request)
    else:
        async def create() -> None:
            await emu.async_tasks_client().create_task(parent=queue, task=request)
        asyncio.run(create())
    (got,) = handler.wait_for(1)
    assert got.body == b"hello"  # not cut to the caller's Content-Length: 3
    assert got.headers["content-length"] == "5"
    assert got.headers["host"] == handler.url.split("//", 1)[1]
    assert got.headers["user-agent"] == "Google-Cloud-Tasks"
    assert not [h for h in got.headers if h.startswith(("x-google-", "x-appengine-"))]
    assert got.headers["x-mine"] == "kept"


def test_a_jobs_own_host_length_and_google_headers_are_the_services(
        emu: Emulator, handler: Handler) -> None:
    client = emu.scheduler_client()
    created = client.create_job(parent=emu.location, job=job(
        emu, "hdr", f"{handler.url}/j", headers=HOSTILE, body=b"hello"))
    client.run_job(name=created.name)
    (got,) = handler.wait_for(1)
    assert got.body == b"hello"
    assert got.headers["host"] == handler.url.split("//", 1)[1]
    assert got.headers["user-agent"] == "Google-Cloud-Scheduler"
    assert not [h for h in got.headers if h.startswith(("x-google-", "x-appengine-"))]


# -- 4: Content-Type ---------------------------------------------------------------------------


def test_a_task_without_content_type_gets_none_and_a_job_gets_octet_stream(
        emu: Emulator, make_queue: Make, handler: Handler) -> None:
    emu.tasks_client().create_task(parent=make_queue("ct").name, task=task(f"{handler.url}/t"))
    scheduler = emu.scheduler_client()
    created = scheduler.create_job(parent=emu.location, job=job(
        emu, "ct", f"{handler.url}/j", body=b"{}"))
    scheduler.run_job(name=created.name)
    got = {r.path: r for r in handler.wait_for(2)}
    assert "content-type" not in got["/t"].headers  # "Content-Type won't be set"
    assert got["/j"].headers["content-type"] == "application/octet-stream"


# -- 5: oauth_token ----------------------------------------------------------------------------


def test_oauth_token_sends_a_bearer_access_token_with_its_scope(
        emu: Emulator, make_queue: Make, handler: Handler) -> None:
    email = "caller@p.iam.gserviceaccount.com"
    queue = make_queue("oauth").name
    tasks = emu.tasks_client()
    tasks.create_task(parent=queue, task=task(f"{handler.url}/default", oauth_token={
        "service_account_email": email}))
    tasks.create_task(parent=queue, task=task(f"{handler.url}/scoped", oauth_token={
        "service_account_email": email, "scope": "https://www.googleapis.com/auth/pubsub"}))
    scheduler = emu.scheduler_client()
    created = scheduler.create_job(parent=emu.location, job=job(
        emu, "oauth", f"{handler.url}/job", oauth_token={"service_account_email": email}))
    scheduler.run_job(name=created.name)
    got = {r.path: claims(r.headers["authorization"]) for r in handler.wait_for(3)}
    assert got["/default"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert got["/scoped"]["scope"] == "https://www.googleapis.com/auth/pubsub"
    assert got["/job"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert {c["email"] for c in got.values()} == {email}


# -- 6: execution count ------------------------------------------------------------------------


def test_execution_count_leaves_out_5xx_answers_and_failed_dispatches(
        manual_emu: Emulator, make_manual_queue: Make, handler: Handler,
        clock: ManualClock) -> None:
    handler.statuses = [503, 404, 500, 200]
    queue = make_manual_queue("exec", retry_config={"min_backoff": {"seconds": 1},
                                                    "max_backoff": {"seconds": 1}}).name
    manual_emu.tasks_client().create_task(parent=queue, task=task(f"{handler.url}/x"))
    for count in range(1, 5):
        handler.wait_for(count)
        manual_emu.wait_idle()
        clock.advance(2)
    got = handler.wait_for(4)
    assert [r.headers["x-cloudtasks-taskretrycount"] for r in got] == ["0", "1", "2", "3"]
    # Only the 404 counts: 5xx answers are not executions.
    assert [r.headers["x-cloudtasks-taskexecutioncount"] for r in got] == ["0", "0", "1", "1"]


# -- 7, 8: redirects and Retry-After -----------------------------------------------------------


@pytest.fixture
def special() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """A receiver that redirects ``/moved`` to ``/here`` and answers ``/busy`` with 503 and
    ``Retry-After: 120`` once; records (path, headers)."""
    seen: list[tuple[str, dict[str, str]]] = []
    lock = threading.Lock()

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        with lock:
            seen.append((path, dict(request.headers)))
            busy_before = sum(1 for p, _ in seen if p == "/busy") > 1
        if path == "/moved":
            return RedirectResponse("/here", status_code=307)
        if path == "/busy" and not busy_before:
            return Response(status_code=503, headers={"Retry-After": "120"})
        return Response(status_code=200)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST", "GET"])])
    with serve(app) as url:
        yield url, seen


def test_a_redirect_is_followed_and_not_counted_as_an_attempt(
        emu: Emulator, make_queue: Make,
        special: tuple[str, list[tuple[str, dict[str, str]]]]) -> None:
    url, seen = special
    queue = make_queue("redirect").name
    emu.tasks_client().create_task(parent=queue, task=task(f"{url}/moved"))
    emu.wait_idle()
    assert [path for path, _ in seen] == ["/moved", "/here"]
    assert list(emu.tasks_client().list_tasks(parent=queue)) == []  # done in one attempt


def test_retry_after_on_a_503_delays_the_next_attempt(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        special: tuple[str, list[tuple[str, dict[str, str]]]]) -> None:
    url, seen = special
    queue = make_manual_queue("busy", retry_config={
        "min_backoff": {"seconds": 1}, "max_backoff": {"seconds": 3600}}).name
    client = manual_emu.tasks_client()
    client.create_task(parent=queue, task=task(f"{url}/busy"))
    manual_emu.wait_idle()
    (waiting,) = client.list_tasks(parent=queue)
    # The backoff says 1 s; the answer said 120 s.
    assert waiting.schedule_time.timestamp() == pytest.approx(clock.now() + 120, abs=1)
    clock.advance(60)
    manual_emu.wait_idle()
    assert [p for p, _ in seen] == ["/busy"]
    clock.advance(61)
    manual_emu.wait_idle()
    assert [p for p, _ in seen] == ["/busy", "/busy"]


# -- 9: the queue's http_target ----------------------------------------------------------------


def test_a_queues_http_target_overrides_every_task(
        emu: Emulator, make_queue: Make, handler: Handler) -> None:
    port = int(handler.url.rsplit(":", 1)[1])
    email = "queue@p.iam.gserviceaccount.com"
    queue = make_queue("override", http_target={
        "uri_override": {"scheme": tasks_v2.UriOverride.Scheme.HTTP, "host": "127.0.0.1",
                         "port": port, "path_override": {"path": "/overridden"},
                         "query_override": {"query_params": "a=1"}},
        "http_method": tasks_v2.HttpMethod.PUT,
        "header_overrides": [{"header": {"key": "X-Queue", "value": "q"}}],
        "oidc_token": {"service_account_email": email},
    }).name
    emu.tasks_client().create_task(parent=queue, task=task(
        "https://elsewhere.example:9/original?b=2", headers={"X-Queue": "task"}))
    (got,) = handler.wait_for(1)
    assert (got.path, got.method) == ("/overridden", "PUT")
    assert got.headers["x-queue"] == "q"
    assert claims(got.headers["authorization"])["email"] == email


def test_if_not_exists_overrides_only_what_the_tasks_url_lacks(
        emu: Emulator, make_queue: Make, handler: Handler) -> None:
    queue = make_queue("ifnot", http_target={"uri_override": {
        "path_override": {"path": "/queue-path"}, "query_override": {"query_params": "q=1"},
        "uri_override_enforce_mode": tasks_v2.UriOverride.UriOverrideEnforceMode.IF_NOT_EXISTS,
    }}).name
    client = emu.tasks_client()
    client.create_task(parent=queue, task=task(f"{handler.url}/own-path"))
    client.create_task(parent=queue, task=task(f"{handler.url}/"))
    got = sorted(r.path for r in handler.wait_for(2))
    assert got == ["/own-path", "/queue-path"]


# -- 29: OIDC discovery ------------------------------------------------------------------------


def test_openid_configuration_and_jwks_serve_any_oidc_library(emu: Emulator) -> None:
    import jwt

    config = httpx.get(f"{emu.http_url}/.well-known/openid-configuration").json()
    keys = httpx.get(config["jwks_uri"])
    assert "expires" in keys.headers
    assert "max-age" in keys.headers["cache-control"]
    token = emu.server.issuer.mint("sa@p.iam.gserviceaccount.com", "https://aud")
    signing = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(token)
    decoded = jwt.decode(token, signing.key, algorithms=["RS256"], audience="https://aud",
                         issuer=config["issuer"])
    assert decoded["email"] == "sa@p.iam.gserviceaccount.com"


# -- 30: a dispatch that fails inside the emulator ---------------------------------------------


def test_a_dispatch_that_fails_inside_the_emulator_is_a_failed_attempt(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    server = manual_emu.server
    assert server is not None
    sender = server.core.sender
    real = sender._request
    broken = {"left": 1}

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("injected: the HTTP client failed")
        return await real(*args, **kwargs)

    monkeypatch.setattr(sender, "_request", failing)
    queue = make_manual_queue("inner", retry_config={"min_backoff": {"seconds": 1}}).name
    client = manual_emu.tasks_client()
    client.create_task(parent=queue, task=task(f"{handler.url}/x"))
    manual_emu.wait_idle()
    (waiting,) = client.list_tasks(request={"parent": queue,
                                            "response_view": tasks_v2.Task.View.FULL})
    assert waiting.dispatch_count == 1
    assert "INTERNAL" in waiting.last_attempt.response_status.message
    clock.advance(2)
    handler.wait_for(1)
    manual_emu.wait_idle()
    assert list(client.list_tasks(parent=queue)) == []


# -- 31: a kept-alive connection the server just closed ----------------------------------------


def test_a_request_that_never_reached_the_handler_is_sent_again_uncharged(
        emu: Emulator, make_queue: Make) -> None:
    import socket
    import time as _time

    # A server that closes each connection right after its answer, without saying so
    # (no "Connection: close"): the next request on it is refused before any byte is read.
    answers: list[str] = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]

    def serve_forever() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if not data:
                    continue
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                answers.append(head.split(b" ")[1].decode())
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                _time.sleep(0.05)  # the close lands after the client kept the connection

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        queue = make_queue("keepalive").name
        client = emu.tasks_client()
        for i in range(6):
            client.create_task(parent=queue, task=task(f"http://127.0.0.1:{port}/t{i}"))
            emu.wait_idle()
        tasks = list(client.list_tasks(parent=queue))
    finally:
        listener.close()
    assert sorted(answers) == [f"/t{i}" for i in range(6)]
    assert tasks == []  # none was charged a failed attempt
