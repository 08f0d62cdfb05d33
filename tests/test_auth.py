"""Caller verification: tokens minted here with our own key, keys served over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from celery_gcp import Celery, auth
from celery_gcp.emulator.oidc import TokenIssuer
from celery_gcp.testing import serve

ACCOUNT = "tasks@proj.iam.gserviceaccount.com"


@dataclass
class Keys:
    """A certificate endpoint serving an issuer's keys, counting its fetches; it can fail
    (``failing``: 500) or hang (``hanging``: until :meth:`release`)."""

    issuer: TokenIssuer
    url: str = ""
    fetches: int = 0
    max_age: int = 3600
    documents: list[dict[str, str]] = field(default_factory=list)
    failing: bool = False
    hanging: bool = False
    _released: concurrent.futures.Future[None] = field(
        default_factory=concurrent.futures.Future)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def certs(self, request: Request) -> Response:
        with self._arrived:
            self.fetches += 1
            self._arrived.notify_all()
        if self.hanging:  # asyncio.wait leaves the shared future uncancelled
            await asyncio.wait([asyncio.wrap_future(self._released)])
        if self.failing:
            return Response("backend error", 500)
        document = self.documents[-1] if self.documents else self.issuer.certs_v1()
        return JSONResponse(document, headers={
            "Cache-Control": f"public, max-age={self.max_age}, must-revalidate"})

    def release(self) -> None:
        """Answer the hanging fetches now."""
        if not self._released.done():
            self._released.set_result(None)

    def wait_for_fetches(self, count: int, timeout: float = 10.0) -> None:
        """Wait (bounded) until ``count`` fetches arrived."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.fetches >= count, timeout):
                raise AssertionError(f"expected {count} fetches, got {self.fetches}")

    def token(self, audience: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": "https://accounts.google.com", "aud": audience, "email": ACCOUNT,
                   "email_verified": True, "sub": "1", "iat": now, "exp": now + 3600,
                   **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        # Signed as given (jwt.encode would refuse ill-typed claims before signing).
        return jwt.api_jws.encode(json.dumps(payload).encode(), self.issuer.private_key_pem(),
                                  algorithm="RS256", headers={"kid": self.issuer.kid})


@dataclass
class Worker:
    app: Celery
    keys: Keys
    url: str
    ran: list[str]

    def post(self, path: str = "/_tasks/proj.add", token: str | None = None,
             json: Any = None, **headers: str) -> httpx.Response:
        headers = {"X-Celery-Task-Id": "t-1", **headers}  # what Cloud Tasks delivers
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(f"{self.url}{path}", json={"x": 1, "y": 2} if json is None else json,
                          headers=headers)

    def audience(self, path: str = "/_tasks/proj.add") -> str:
        return f"{self.url}{path}"


@pytest.fixture
def keys() -> Iterator[Keys]:
    served = Keys(TokenIssuer())
    with serve(Starlette(routes=[Route("/oauth2/v1/certs", served.certs)])) as url:
        served.url = f"{url}/oauth2/v1/certs"
        yield served
        served.release()  # no fetch still hangs when the server stops


@pytest.fixture
def worker(keys: Keys) -> Iterator[Worker]:
    app = Celery("proj", task_auth="oidc", gcp_service_account=ACCOUNT,
                 task_oidc_certs_url=keys.url)
    ran: list[str] = []

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        ran.append(f"add({x}, {y})")
        return x + y

    api = FastAPI()
    api.include_router(app.router)
    with serve(api) as url:
        app.conf.task_base_url = url
        yield Worker(app, keys, url, ran)


def test_a_good_token_runs_the_task(worker: Worker) -> None:
    response = worker.post(token=worker.keys.token(worker.audience()))
    assert response.status_code == 200, response.text
    assert worker.ran == ["add(1, 2)"]


@pytest.mark.parametrize(("claims", "status", "reason"), [
    ({"aud": "https://other.example/_tasks/proj.add"}, 401, "another audience"),
    ({"iss": "https://evil.example"}, 401, "not issued by Google"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, 401, "expired"),
    ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, 401, "future"),
    ({"email": "someone@else.iam.gserviceaccount.com"}, 403, "not allowed"),
    ({"email_verified": False}, 403, "no verified email"),
    ({"email": None}, 403, "no verified email"),
    ({"exp": None}, 401, "invalid token"),
])
def test_bad_tokens_are_refused_and_run_nothing(worker: Worker, claims: dict[str, Any],
                                                status: int, reason: str) -> None:
    claims = {"aud": worker.audience(), **claims}
    response = worker.post(token=worker.keys.token(claims.pop("aud"), **claims))
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert worker.ran == []


def test_a_signature_by_another_key_is_refused(worker: Worker) -> None:
    forger = Keys(TokenIssuer())
    forged = jwt.encode({"iss": "https://accounts.google.com", "aud": worker.audience(),
                         "email": ACCOUNT, "email_verified": True, "iat": int(time.time()),
                         "exp": int(time.time()) + 600},
                        forger.issuer.private_key_pem(), algorithm="RS256",
                        headers={"kid": worker.keys.issuer.kid})  # claims our key id
    assert worker.post(token=forged).status_code == 401
    unsigned = jwt.encode({"aud": worker.audience(), "email": ACCOUNT}, key=None,
                          algorithm="none")
    assert worker.post(token=unsigned).status_code == 401
    assert worker.ran == []


def test_missing_and_malformed_tokens(worker: Worker) -> None:
    assert worker.post().status_code == 401
    assert worker.post().headers["www-authenticate"] == "Bearer"
    assert worker.post(token="not-a-jwt").status_code == 401
    assert worker.post(token="a.b.c").status_code == 401
    assert worker.post(Authorization="Basic dXNlcjpwYXNz").status_code == 401
    assert worker.ran == []


def test_forged_platform_headers_without_a_token_run_nothing(worker: Worker) -> None:
    response = worker.post(**{
        "X-CloudTasks-QueueName": "celery", "X-CloudTasks-TaskName": "x",
        "X-CloudTasks-TaskRetryCount": "0", "X-CloudScheduler": "true",
        "X-Celery-Task-Id": "forged", "User-Agent": "Google-Cloud-Tasks"})
    assert response.status_code == 401
    beat = worker.post("/_tasks/beat/anything", **{"X-CloudScheduler": "true"})
    assert beat.status_code == 401
    unknown = worker.post("/_tasks/no.such.task")
    assert unknown.status_code == 401  # no token, no hint of which tasks exist
    assert worker.ran == []


def test_a_token_for_another_service_replayed_with_forged_host_is_refused(
        worker: Worker) -> None:
    other = "https://other-service-xyz.a.run.app"
    token = worker.keys.token(f"{other}/_tasks/proj.add")
    for headers in ({"Host": "other-service-xyz.a.run.app"},
                    {"X-Forwarded-Host": "other-service-xyz.a.run.app",
                     "X-Forwarded-Proto": "https"},
                    {"Host": "other-service-xyz.a.run.app", "Forwarded":
                     "host=other-service-xyz.a.run.app;proto=https"}):
        response = worker.post(token=token, **headers)
        assert response.status_code == 401
        assert "another audience" in response.json()["detail"]
    assert worker.ran == []


def test_keys_are_fetched_once_and_kept_for_their_max_age(worker: Worker) -> None:
    for _ in range(5):
        assert worker.post(token=worker.keys.token(worker.audience())).status_code == 200
    assert worker.keys.fetches == 1
    # A key id nobody published makes the cache look again, at most once per 30 s: a caller
    # sending made-up key ids cannot make every request fetch.
    stranger = jwt.encode({"aud": worker.audience()}, worker.keys.issuer.private_key_pem(),
                          algorithm="RS256", headers={"kid": "rotated-away"})
    assert worker.post(token=stranger).status_code == 401
    assert worker.keys.fetches == 1  # fetched less than 30 s ago
    worker.app.verifier.cache().fetched -= 31
    for _ in range(5):
        assert worker.post(token=stranger).status_code == 401
    assert worker.keys.fetches == 2


def test_expired_keys_are_fetched_again(worker: Worker) -> None:
    worker.keys.max_age = 0
    assert worker.post(token=worker.keys.token(worker.audience())).status_code == 200
    assert worker.post(token=worker.keys.token(worker.audience())).status_code == 200
    assert worker.keys.fetches == 2
    rotated = Keys(TokenIssuer())  # Google rotated its keys: the new document is used
    worker.keys.documents.append(rotated.issuer.certs_v1())
    assert worker.post(token=rotated.token(worker.audience())).status_code == 200
    assert worker.post(token=worker.keys.token(worker.audience())).status_code == 401


def test_nothing_of_the_token_is_logged(worker: Worker,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = worker.keys.token(worker.audience(), email="intruder@evil.example")
    assert worker.post(token=token).status_code == 403
    assert worker.post(token=token[:-4] + "AAAA").status_code == 401
    text = caplog.text
    assert "refused POST /_tasks/proj.add" in text
    for secret in (token, token.split(".")[1], token.split(".")[2], "intruder@evil.example"):
        assert secret not in text


def test_allowed_emails_and_a_fixed_audience(worker: Worker) -> None:
    worker.app.conf.task_oidc_allowed_emails = ["scheduler@proj.iam.gserviceaccount.com"]
    worker.app.conf.task_oidc_audience = "https://tasks.example/audience"
    fixed = "https://tasks.example/audience"
    assert worker.post(token=worker.keys.token(fixed)).status_code == 403  # ACCOUNT: not listed
    ok = worker.keys.token(fixed, email="scheduler@proj.iam.gserviceaccount.com")
    assert worker.post(token=ok).status_code == 200
    assert worker.post(token=worker.keys.token(worker.audience())).status_code == 401


def test_opting_out_warns_when_the_router_is_built(
        caplog: pytest.LogCaptureFixture) -> None:
    app = Celery("proj", task_auth="none")

    @app.task(name="proj.noop")
    def noop() -> None: ...

    _ = app.router
    assert "task_auth='none'" in caplog.text
    assert "ANY caller" in caplog.text
    strict = Celery("proj", task_auth="oidc")
    _ = strict.router
    assert "no caller is allowed: set gcp_service_account" in caplog.text


def test_bad_input_gets_4xx_and_runs_nothing(worker: Worker) -> None:
    token = worker.keys.token(worker.audience())
    auth = {"Authorization": f"Bearer {token}"}
    url = worker.audience()
    big = httpx.post(url, content=b"{" + b" " * (1024 * 1024) + b"}",
                     headers={**auth, "Content-Type": "application/json"})
    assert big.status_code == 413
    assert httpx.post(url, content=b"{nope", headers={
        **auth, "Content-Type": "application/json"}).status_code == 400
    assert httpx.post(url, content=b"x=1", headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert httpx.post(url, content=b"[" * 100_000 + b"]" * 100_000, headers={
        **auth, "Content-Type": "application/json"}).status_code == 400
    assert httpx.post(url, json={"x": "one", "y": 2}, headers=auth).status_code == 422
    for name, value in (("X-Celery-Retries", "-1"), ("X-Celery-ETA", "tomorrow"),
                        ("X-Celery-Link", "not json")):
        response = httpx.post(url, json={"x": 1, "y": 2},
                              headers={**auth, "X-Celery-Task-Id": "t-2", name: value})
        assert response.status_code == 400, (name, response.text)
    unknown = worker.audience("/_tasks/no.such.task")
    assert httpx.post(unknown, json={}, headers={
        "Authorization": f"Bearer {worker.keys.token(unknown)}"}).status_code == 404
    assert worker.ran == []


# -- malformed tokens, time claims ---------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def trusted_header(worker: Worker, **fields: Any) -> str:
    """A token header naming the worker's trusted key id (key ids are public)."""
    return b64(json.dumps({"alg": "RS256", "kid": worker.keys.issuer.kid, "typ": "JWT",
                           **fields}).encode())


def test_malformed_signature_with_trusted_kid_is_401(worker: Worker) -> None:
    response = worker.post(token=f"{trusted_header(worker)}.e30.A")
    assert response.status_code == 401
    assert response.json()["detail"] == "malformed token"
    assert worker.ran == []


@pytest.mark.parametrize("shape", [
    "{header}.e30.AAAAA",  # 4n+1 characters: no bytes encode to that
    "{header}.A.AAAA",
    "{header}.e30.",
    "{header}..AAAA",
    "A.e30.AAAA",
    "{list}.e30.AAAA",  # JSON, but not an object
    "{header}.e30.AAAA=",  # padding is not base64url's
    "{header}.e30.AAAA.AAAA",
])
def test_malformed_tokens_naming_a_trusted_kid_are_401(worker: Worker, shape: str) -> None:
    token = shape.format(header=trusted_header(worker), list=b64(b"[1]"))
    response = worker.post(token=token)
    assert response.status_code == 401, response.text
    assert worker.ran == []


@pytest.mark.parametrize("claims", [
    {"iss": ["https://accounts.google.com"]},  # unhashable: no TypeError
    {"iss": {"a": 1}},
    {"exp": float("nan")},  # compares false with every time: would never expire
    {"iat": float("nan")},
    {"exp": float("inf")},
    {"exp": 10 ** 400},  # beyond any float
    {"iat": "now"},
    {"nbf": float("nan")},
    {"nbf": "tomorrow"},
    {"exp": True},
])
def test_signed_tokens_with_ill_typed_claims_are_401(worker: Worker,
                                                    claims: dict[str, Any]) -> None:
    response = worker.post(token=worker.keys.token(worker.audience(), **claims))
    assert response.status_code == 401, response.text
    assert worker.ran == []


def test_token_not_valid_before_nbf_is_401(worker: Worker) -> None:
    tomorrow = int(time.time()) + 86400
    response = worker.post(token=worker.keys.token(worker.audience(), nbf=tomorrow))
    assert response.status_code == 401
    assert response.json()["detail"] == "token not valid yet (nbf)"
    assert worker.ran == []
    for nbf in (int(time.time()) - 10, int(time.time()) + 30):  # past, or within the leeway
        assert worker.post(token=worker.keys.token(worker.audience(), nbf=nbf)
                           ).status_code == 200
    assert len(worker.ran) == 2


# -- the key cache when the certs URL fails or hangs ---------------------------------------------


def at_once(count: int, call: Callable[[], httpx.Response]) -> list[int]:
    """The statuses of ``count`` calls made at the same moment (from a barrier)."""
    barrier = threading.Barrier(count)

    def one(_: int) -> int:
        barrier.wait()
        return call().status_code

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_failing_certs_url_is_fetched_once_and_the_cached_keys_serve(
        worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    worker.keys.max_age = 0  # every document is stale at once
    token = worker.keys.token(worker.audience())
    assert worker.post(token=token).status_code == 200
    worker.keys.failing = True
    assert at_once(20, lambda: worker.post(token=token)) == [200] * 20
    assert worker.keys.fetches == 2  # one failed fetch for all twenty
    assert caplog.text.count("could not fetch the token signing keys") == 1
    assert "keeping the keys fetched before" in caplog.text
    assert len(worker.ran) == 21


def test_past_the_grace_a_failing_certs_url_gets_503(worker: Worker) -> None:
    worker.keys.max_age = 0
    token = worker.keys.token(worker.audience())
    assert worker.post(token=token).status_code == 200
    worker.keys.failing = True
    cache = worker.app.verifier.cache()
    cache.expires -= auth.STALE_GRACE  # the keys expired a grace ago
    refused = worker.post(token=token)
    assert refused.status_code == 503
    assert "signing keys could not be fetched" in refused.json()["detail"]
    for _ in range(5):
        assert worker.post(token=token).status_code == 503
    assert worker.keys.fetches == 2  # a failed fetch is not tried again at once
    cache.fetched -= auth.REFETCH_INTERVAL
    worker.keys.failing = False
    assert worker.post(token=token).status_code == 200
    assert worker.keys.fetches == 3
    assert len(worker.ran) == 2


def test_hanging_certs_url_is_fetched_once_and_requests_wait_a_bounded_time(
        worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FETCH_WAIT", 0.5)  # the bound, shortened for the test
    worker.keys.max_age = 0
    token = worker.keys.token(worker.audience())
    assert worker.post(token=token).status_code == 200
    worker.keys.hanging = True
    # Each waits for the one fetch in flight, at most FETCH_WAIT, then uses the keys it has.
    assert at_once(4, lambda: worker.post(token=token)) == [200] * 4
    worker.keys.wait_for_fetches(2)
    assert worker.keys.fetches == 2
    assert len(worker.ran) == 5


def test_without_keys_a_hanging_certs_url_gets_503_after_a_bounded_wait(
        worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FETCH_WAIT", 0.5)
    worker.keys.hanging = True
    token = worker.keys.token(worker.audience())
    assert at_once(4, lambda: worker.post(token=token)) == [503] * 4
    worker.keys.wait_for_fetches(1)
    assert worker.keys.fetches == 1
    assert worker.ran == []
