"""Fuzzing the worker over real HTTP: no request makes a 5xx, none runs a task it should not.

A worker with caller verification on (``task_auth="oidc"``) serves tasks of every parameter
kind under uvicorn. Two kinds of fuzzing hit it:

* schemathesis, from the worker's own OpenAPI document, with a valid token (every answer is
  one the outcome table allows; a 200 ran the task once) and without one (401, nothing runs);
* hypothesis-built raw requests: known, unknown, beat and odd paths; ``X-Celery-*``,
  ``X-CloudTasks-*`` and ``X-CloudScheduler-*`` headers, valid or garbage; any content type;
  bodies valid, invalid, deeply nested, not UTF-8 or over 1 MB; a valid token, a bad one or
  none.

Generation is derandomized, so CI sends the same requests on every run. Each test asserts
how many requests it sent (:data:`FLOORS`, 1,150 together); the bugs the fuzzers once found
each have a regression test at the end.
"""

from __future__ import annotations

import json
import logging
import math
import re
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import httpx
import jwt
import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from schemathesis import GenerationMode

from celery_gcp import Celery, Task
from celery_gcp.emulator.oidc import TokenIssuer
from celery_gcp.schedules import crontab
from celery_gcp.testing import auth_headers, serve, trusted_issuer
from celery_gcp.transport import MemoryTransport
from celery_gcp.worker.intake import MAX_BODY

ACCOUNT = "tasks@p.iam.gserviceaccount.com"
PREFIX = "/_tasks"

#: Requests each fuzz test sends at least; together at least 1,000.
FLOORS = {"schema_with_token": 300, "schema_without_token": 150, "raw": 700}
assert sum(FLOORS.values()) >= 1000

# -- the app under test -------------------------------------------------------------------------


class Recorder:
    """The names of the tasks that ran, in order (tasks run in threads and in the loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: list[str] = []

    def add(self, name: str) -> None:
        with self._lock:
            self._names.append(name)

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)


class ServerErrors(logging.Handler):
    """Counts the errors uvicorn logged (last handler of the "uvicorn" logger).

    Starlette sends the 500 before uvicorn logs the exception: a test waits for that log
    before it formats its own failure, since Python 3.11 before 3.11.8 breaks ("AST
    constructor recursion depth mismatch", gh-106905) when two threads format tracebacks
    at once.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_beyond(self, count: int) -> None:
        """Return once more than ``count`` errors were logged (or after 10 s)."""
        with self._changed:
            self._changed.wait_for(lambda: self.count > count, timeout=10)


class Item(BaseModel):
    name: str = Field(max_length=50)
    qty: int = 1
    tags: list[str] = []


def build_app(ran: Recorder) -> Celery:
    app = Celery("fuzz", broker_url="memory://", task_auth="oidc",
                 gcp_service_account=ACCOUNT)

    @app.task(name="fuzz.add")
    def add(x: int, y: int = 2) -> int:
        ran.add("fuzz.add")
        return x + y

    @app.task(name="fuzz.greet")
    def greet(name: str, greeting: str = "hello", mode: Literal["plain", "loud"] = "plain",
              ratio: float | None = None) -> str:
        ran.add("fuzz.greet")
        text = f"{greeting}, {name}"
        return text.upper() if mode == "loud" else text

    @app.task(name="fuzz.order")
    def order(item: Item, when: datetime, ids: list[int]) -> dict[str, Any]:
        ran.add("fuzz.order")
        return {"name": item.name, "when": when.isoformat(), "ids": len(ids)}

    @app.task(name="fuzz.var")
    def var(*args: int, **kwargs: str) -> int:
        ran.add("fuzz.var")
        return len(args) + len(kwargs)

    @app.task(name="fuzz.aio")
    async def aio(s: str = "x", flag: bool = False) -> str:
        ran.add("fuzz.aio")
        return s if flag else s[::-1]

    @app.task(name="fuzz.bound", bind=True)
    def bound(self: Task[Any, Any], n: int) -> str | None:
        ran.add("fuzz.bound")
        return self.request.id

    @app.task(name="fuzz.sink")
    def sink(*args: Any, **kwargs: Any) -> None:
        ran.add("fuzz.sink")

    app.conf.beat_schedule = {
        "tick": {"task": "fuzz.add", "schedule": 60.0, "args": (1,)},
        # Runs on Mondays that are the 1st: most fires are skipped (200, nothing sent).
        "monthly": {"task": "fuzz.add", "schedule": crontab(minute=0, hour=0, day_of_month=1,
                                                            day_of_week=1), "args": (2,)},
    }
    return app


TASKS = ("fuzz.add", "fuzz.greet", "fuzz.order", "fuzz.var", "fuzz.aio", "fuzz.bound",
         "fuzz.sink")
ENTRIES = ("tick", "monthly")


@dataclass
class Served:
    app: Celery
    url: str
    issuer: TokenIssuer
    ran: Recorder
    openapi: dict[str, Any]
    client: httpx.Client
    errors: ServerErrors
    key: Any  # the issuer's private key, loaded once (loading one takes ~40 ms)

    def settled(self, response: Any, errors: int) -> int:
        """The status of ``response``, once the worker logged the exception behind it if it
        is Starlette's 500 for one (see ServerErrors)."""
        if response.status_code == 500 and response.text == "Internal Server Error":
            self.errors.wait_beyond(errors)
        return int(response.status_code)

    @property
    def transport(self) -> MemoryTransport:
        transport = self.app.transport
        assert isinstance(transport, MemoryTransport)
        return transport

    def sent(self) -> int:
        """How many messages the worker sent so far (beat fires, relays, callbacks)."""
        return len(self.transport.sent)

    def token(self, path: str, **claims: Any) -> str:
        """A token of the trusted key for ``path`` (``claims`` override the good ones)."""
        now = int(self.app.now().timestamp())
        payload = {"iss": "https://accounts.google.com", "email": ACCOUNT,
                   "aud": f"{self.url}{path}", "email_verified": True, "sub": "1",
                   "iat": now, "exp": now + 3600, **claims}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.issuer.kid})


def own_openapi(api: FastAPI) -> dict[str, Any]:
    """The worker's OpenAPI document, with the paths of this file's tasks only (shared_task()s
    of other test modules join every app, and do not record that they ran)."""
    document = api.openapi()
    ours = {f"{PREFIX}/{name}" for name in TASKS}
    document["paths"] = {p: v for p, v in document["paths"].items() if p in ours}
    assert set(document["paths"]) == ours
    return document


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    ran = Recorder()
    app = build_app(ran)
    api = FastAPI()
    api.include_router(app.router)
    with serve(api) as url:
        app.conf.task_base_url = url
        issuer = trusted_issuer(app)
        assert app.verifier.enabled
        errors = ServerErrors()
        uvicorn_logger = logging.getLogger("uvicorn")  # configured by serve(): add after it
        uvicorn_logger.addHandler(errors)
        try:
            # A connection per request: serve() listens on a socket made with proto 0, so
            # asyncio does not set TCP_NODELAY on the worker's connections, and on a kept-alive
            # one each answer (head and body written apart) waits ~40 ms for a delayed ACK.
            fresh = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=url, timeout=60, limits=fresh) as client:
                key = load_pem_private_key(issuer.private_key_pem(), None)
                yield Served(app, url, issuer, ran, own_openapi(api), client, errors, key)
        finally:
            uvicorn_logger.removeHandler(errors)
    app.close()


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])


# -- schemathesis: the worker's own OpenAPI document ---------------------------------------------

ALLOWED = {200, 400, 404, 413, 415, 422, 503}


def schema_cases(served: Served) -> st.SearchStrategy[Any]:
    schema = schemathesis.openapi.from_dict(served.openapi)
    return st.one_of(schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
                     schema.as_strategy(generation_mode=GenerationMode.NEGATIVE))


def test_schemathesis_with_a_valid_token(served: Served) -> None:
    """Any body, valid or not, for any task: an answer of the outcome table; 200 ran it."""
    count = 0

    @fuzz_settings(FLOORS["schema_with_token"])
    @given(case=schema_cases(served), task_id=st.uuids())
    def run(case: Any, task_id: Any) -> None:
        nonlocal count
        path = case.formatted_path
        headers = {**auth_headers(served.app, served.issuer, path),
                   "X-Celery-Task-Id": str(task_id), "X-Celery-Version": "1"}
        ran, sent, errors = len(served.ran), served.sent(), served.errors.count
        with requests.Session() as session:
            response = case.call(base_url=served.url, session=session, headers=headers)
        count += 1
        status = served.settled(response, errors)
        assert status in ALLOWED, (status, response.text, case.body)
        assert len(served.ran) - ran == (1 if status == 200 else 0), (status, response.text)
        if status == 200:
            assert response.json()["state"] == "SUCCESS"
            assert response.json()["id"] == str(task_id)
        assert served.sent() == sent

    run()
    assert count >= FLOORS["schema_with_token"]


def test_schemathesis_without_a_token(served: Served) -> None:
    """Without a token every request is 401, whatever its body, and runs nothing."""
    count = 0

    @fuzz_settings(FLOORS["schema_without_token"])
    @given(case=schema_cases(served))
    def run(case: Any) -> None:
        nonlocal count
        ran, sent, errors = len(served.ran), served.sent(), served.errors.count
        with requests.Session() as session:
            response = case.call(base_url=served.url, session=session,
                                 headers={"X-Celery-Task-Id": "t-1"})
        count += 1
        status = served.settled(response, errors)
        assert status == 401, (status, response.text)
        assert response.headers["www-authenticate"] == ["Bearer"]
        assert len(served.ran) == ran
        assert served.sent() == sent

    run()
    assert count >= FLOORS["schema_without_token"]


# -- hypothesis: raw requests --------------------------------------------------------------------

SAFE_NAME = string.ascii_letters + string.digits + "._-"
LETTERS = string.ascii_letters + " -_:/"  # no digits: never a number or an ISO date
# Latin-1 bytes that are not digits for str.isdigit() (b"\xb2" is '²', a "digit").
NON_ASCII = [bytes([c]) for c in range(0x80, 0x100) if not chr(c).isdigit()]
ISDIGIT_NON_ASCII = [b"\xb2", b"\xb3", b"\xb9"]
JOB_ID = re.compile(rb"[A-Za-z0-9_-]{1,500}")
#: The X-Celery-* headers the worker reads (message.py, and the relay flag of router.py).
CELERY_HEADERS = {f"x-celery-{n}" for n in (
    "version", "task-id", "retries", "queue", "eta", "expires", "root-id", "parent-id", "link",
    "link-error", "headers", "relay")}


def header_text(alphabet: str = string.printable[:95], max_size: int = 40,
                non_ascii: bool = True) -> st.SearchStrategy[bytes]:
    """Header values h11 sends as they are: no control characters, no edge whitespace."""
    chars = st.sampled_from([c.encode() for c in alphabet.strip()] + [b" "]
                            + (NON_ASCII if non_ascii else []))
    return st.lists(chars, max_size=max_size).map(b"".join).map(lambda b: b.strip(b" \t"))


def json_header(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)

aware = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))
naive = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))
# At least a minute from now: the test's clock and the worker's agree on which side it is.
near = st.one_of(st.integers(-10**6, -60), st.integers(60, 10**6)).map(
    lambda s: datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=s))
edge = st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                        "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999999+00:00"])


def iso(values: st.SearchStrategy[datetime]) -> st.SearchStrategy[bytes]:
    return values.map(lambda d: d.isoformat().encode())


bad_iso = st.one_of(header_text(LETTERS), st.sampled_from(
    [b"", b"2020-13-01T00:00:00", b"2020-01-01T25:00:00", b"2020/01/01", b"01-01-2020",
     b"2020-01-01T00:00:00+25:00", b"2020-01-01 00:00:00 UTC", b"T", b"--"]))

signature = st.fixed_dictionaries({"task": st.just("fuzz.sink")},
                                  optional={"args": st.lists(json_values, max_size=3),
                                            "kwargs": st.dictionaries(st.text(max_size=8),
                                                                      json_values, max_size=3),
                                            "immutable": st.booleans()})
ill_typed_signature = st.fixed_dictionaries(
    {"task": st.just("fuzz.sink")},
    optional={"args": st.sampled_from([5, "x", {"a": 1}]),
              "kwargs": st.sampled_from([3, "k", [1]]),
              "options": st.sampled_from(["x", [1], {"countdown": "soon"}, {"queue": 5}])},
).filter(lambda s: len(s) > 1)
nested_json = st.sampled_from([1200, 3000, 20000]).flatmap(lambda depth: st.sampled_from(
    [b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth]))
bad_signatures = st.one_of(
    header_text(LETTERS),
    st.sampled_from([b"", b"{}", b"[1]", b'[{"x":1}]', b'[{"task":5}]', b"null", b"[", b'"a"',
                     b'{"task":"fuzz.sink"}', b"[{'task':'fuzz.sink'}]"]),
    ill_typed_signature.map(lambda s: json_header([s])),
    nested_json,
)
bad_object = st.one_of(
    header_text(LETTERS),
    st.sampled_from([b"", b"[]", b"1", b'"x"', b"null", b"{", b"{'a':1}", b"true"]),
    nested_json,
)
bad_retries = st.one_of(
    header_text(LETTERS),
    st.sampled_from([b"", b"-1", b"-0", b"1.5", b"1e3", b"0x10", b"+1", b"1 000", b"\xe9"]),
    st.sampled_from(ISDIGIT_NON_ASCII),
)


@dataclass
class Meta:
    """Generated ``X-Celery-*`` headers and whether the library must refuse them."""

    headers: dict[str, bytes] = field(default_factory=dict)
    malformed: list[str] = field(default_factory=list)
    expired: bool = False
    relayed: bool = False
    naive: bool = False  # a naive Expires, or a naive ETA to relay: read as UTC or refused


@st.composite
def celery_metadata(draw: st.DrawFn) -> Meta:
    meta = Meta()
    # A third of the requests carry bad metadata (one header or more), the rest good.
    corrupt = draw(st.sampled_from([False, False, True]))

    def header(name: str, good: st.SearchStrategy[bytes] | None,
               bad: st.SearchStrategy[bytes] | None, *, required: bool = False) -> bytes | None:
        choices = ([] if required and not corrupt else ["absent"]) + (
            ["good", "good"] if good is not None else []) + (
            ["bad"] if bad is not None and corrupt else [])
        choice = draw(st.sampled_from(choices))
        if choice == "absent":
            return None
        assert good is not None or bad is not None
        value = draw(good if choice == "good" else bad)  # type: ignore[arg-type]
        meta.headers[name] = value
        if choice == "bad":
            meta.malformed.append(name)
        return value

    header("X-Celery-Version", st.just(b"1"), st.one_of(
        st.sampled_from([b"0", b"2", b"1.0", b"v1", b"01", b""]), header_text()).filter(
        lambda v: v != b"1"))
    if header("X-Celery-Task-Id", header_text(max_size=60).filter(bool), st.just(b""),
              required=True) is None:
        meta.malformed.append("X-Celery-Task-Id (missing)")
    header("X-Celery-Retries", st.integers(0, 10**30).map(lambda n: str(n).encode()),
           bad_retries)
    header("X-Celery-Queue", header_text(), None)
    relay = draw(st.booleans())
    if relay:
        meta.headers["X-Celery-Relay"] = draw(header_text(max_size=5))
    eta = header("X-Celery-ETA", st.one_of(iso(aware), iso(near), iso(naive)), bad_iso)
    header("X-Celery-Expires", st.one_of(iso(aware), iso(near), iso(naive)), bad_iso)
    header("X-Celery-Root-Id", header_text(), None)
    header("X-Celery-Parent-Id", header_text(), None)
    signatures = st.lists(signature, max_size=2).map(json_header)
    header("X-Celery-Link", signatures, bad_signatures)
    header("X-Celery-Link-Error", signatures, bad_signatures)
    header("X-Celery-Headers", st.dictionaries(st.text(max_size=8), json_values,
                                               max_size=4).map(json_header), bad_object)
    # Names the library does not read: ignored, whatever their values.
    for name in draw(st.lists(st.text(SAFE_NAME, min_size=1, max_size=12), max_size=2)):
        if f"x-celery-{name.lower()}" not in CELERY_HEADERS:
            meta.headers[f"X-Celery-{name}"] = draw(header_text())
    if corrupt and not meta.malformed:
        meta.headers["X-Celery-Version"] = b"2"
        meta.malformed.append("X-Celery-Version")
    if not meta.malformed:
        now = datetime.now(UTC)
        when = {k: datetime.fromisoformat(meta.headers[k].decode())
                for k in ("X-Celery-ETA", "X-Celery-Expires") if k in meta.headers}
        meta.naive = any(v.tzinfo is None for k, v in when.items()
                         if k == "X-Celery-Expires" or relay)
        when = {k: v if v.tzinfo else v.replace(tzinfo=UTC) for k, v in when.items()}
        meta.expired = "X-Celery-Expires" in when and when["X-Celery-Expires"] <= now
        meta.relayed = not meta.expired and relay and eta is not None and (
            when["X-Celery-ETA"] > now)
    return meta


def epoch_ok(raw: bytes) -> bool:
    """Whether ``raw`` is garbage or an epoch ``datetime.fromtimestamp`` takes."""
    try:
        value = float(raw.decode("latin-1"))
    except ValueError:
        return True
    return math.isnan(value) or -6e10 < value < 2.5e11


cloudtasks_count = st.one_of(st.integers(0, 10**20).map(lambda n: str(n).encode()),
                             bad_retries.filter(lambda v: not any(
                                 d in v for d in ISDIGIT_NON_ASCII)),
                             st.sampled_from(ISDIGIT_NON_ASCII))
cloudtasks_eta = st.one_of(
    st.floats(0, 4e9).map(lambda f: repr(f).encode()),
    st.sampled_from([b"nan", b"-1", b"", b"1e5", b"1_000"]),
    header_text(LETTERS).filter(epoch_ok),
    st.sampled_from([b"1e20", b"inf", b"-inf", b"-1e20"]),
)


@st.composite
def cloudtasks_headers(draw: st.DrawFn) -> dict[str, bytes]:
    """Cloud Tasks' own headers: the library reads them leniently, never refuses them."""
    pools = {
        "X-CloudTasks-QueueName": header_text(),
        "X-CloudTasks-TaskName": header_text(),
        "X-CloudTasks-TaskRetryCount": cloudtasks_count,
        "X-CloudTasks-TaskExecutionCount": cloudtasks_count,
        "X-CloudTasks-TaskETA": cloudtasks_eta,
        "X-CloudTasks-TaskPreviousResponse": header_text(),
        "X-CloudTasks-TaskRetryReason": header_text(),
    }
    names = draw(st.lists(st.sampled_from(sorted(pools)), unique=True))
    return {name: draw(pools[name]) for name in names}


@st.composite
def scheduler_headers(draw: st.DrawFn) -> tuple[dict[str, bytes], bool]:
    """``X-CloudScheduler-*`` headers, and whether the beat endpoint must refuse them."""
    headers: dict[str, bytes] = {}
    malformed = False
    kind = draw(st.sampled_from(["absent", "good", "good", "naive", "bad", "edge"]))
    if kind != "absent":
        headers["X-CloudScheduler-ScheduleTime"] = draw(
            {"good": iso(aware), "naive": iso(naive), "bad": bad_iso.filter(bool),
             "edge": edge.map(str.encode)}[kind])  # an empty one counts as absent
        malformed = kind in ("naive", "bad")
    kind = draw(st.sampled_from(["absent", "good", "bad"]))
    if kind == "good":
        headers["X-CloudScheduler-JobName"] = draw(st.text(
            string.ascii_letters + string.digits + "_-", min_size=1, max_size=500).map(
            str.encode))
    elif kind == "bad":
        headers["X-CloudScheduler-JobName"] = draw(st.one_of(
            st.just(b""), st.just(b"a" * 501),
            header_text("./ ~!@a").filter(lambda v: JOB_ID.fullmatch(v) is None)))
        malformed = True
    headers["X-CloudScheduler"] = b"true"
    return headers, malformed


# Bodies that a task's schema accepts, by task.
small_int = st.integers(-10**20, 10**20)
VALID_BODIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "fuzz.add": st.fixed_dictionaries({"x": small_int}, optional={"y": small_int}),
    "fuzz.greet": st.fixed_dictionaries(
        {"name": st.text(max_size=20)},
        optional={"greeting": st.text(max_size=10),
                  "mode": st.sampled_from(["plain", "loud"]),
                  "ratio": st.one_of(st.none(), st.floats(allow_nan=False))}),
    "fuzz.order": st.fixed_dictionaries({
        "item": st.fixed_dictionaries({"name": st.text(max_size=50)},
                                      optional={"qty": small_int,
                                                "tags": st.lists(st.text(max_size=5))}),
        "when": st.one_of(iso(aware), iso(naive)).map(bytes.decode),
        "ids": st.lists(small_int, max_size=5)}),
    "fuzz.var": st.fixed_dictionaries({}, optional={
        "args": st.lists(small_int, max_size=4),
        "kwargs": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)}),
    "fuzz.aio": st.fixed_dictionaries({}, optional={"s": st.text(max_size=20),
                                                    "flag": st.booleans()}),
    "fuzz.bound": st.fixed_dictionaries({"n": small_int}),
    "fuzz.sink": st.fixed_dictionaries({}, optional={
        "args": st.lists(json_values, max_size=3),
        "kwargs": st.dictionaries(st.text(max_size=5), json_values, max_size=3)}),
}


def padded(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head = b'{"x":1,"pad":"'
    return head + b"a" * (size - len(head) - 2) + b'"}'


@st.composite
def bodies(draw: st.DrawFn, task: str | None) -> tuple[bytes | tuple[bytes, ...], bool]:
    """A body (bytes, or chunks sent without a length) and whether it is over 1 MB."""
    kinds = ["valid"] * 6 + ["json"] * 3 + ["bytes", "invalid", "nested", "encoding",
                                            "empty"] * 2 + ["big", "limit"] + ["nan"] * 2 \
        + ["surrogate"] * 2
    kind = draw(st.sampled_from(kinds))
    if kind == "valid":
        name = task if task in VALID_BODIES else draw(st.sampled_from(TASKS))
        return json.dumps(draw(VALID_BODIES[name])).encode(), False
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), False
    if kind == "bytes":
        return draw(st.binary(max_size=200)), False
    if kind == "invalid":
        return draw(st.sampled_from([b"{", b'{"x": }', b"{'x': 1}", b"[1,]", b"\x00",
                                     b'{"x": 1}garbage', b'{"x": 1', b"nul",
                                     b'{"x": 1, "x": 2}', b'{"x": ' + b"9" * 4000 + b"}",
                                     b'{"x": ' + b"9" * 5000 + b"}", b'{"x": 1e308}',
                                     b'{"x": -0.0}', b'{"x": 1.0}', b'{"x": true}'])), False
    if kind == "nested":
        depth = draw(st.sampled_from([50, 900, 1100, 5000, 100_000]))
        return draw(st.sampled_from([b"[" * depth + b"]" * depth,
                                     b'{"x":' * depth + b"1" + b"}" * depth])), False
    if kind == "encoding":
        value = draw(VALID_BODIES.get(task, json_values))
        text = json.dumps(value, ensure_ascii=False)
        return draw(st.sampled_from([
            text.encode("utf-16"), text.encode("utf-32"), text.encode("utf-8-sig"),
            text.encode("latin-1", "replace"), b'{"x": "\xff\xfe"}', b"\xff\xfe\x00{"])), False
    if kind == "empty":
        return b"", False
    if kind == "surrogate":
        return draw(st.sampled_from([b'"\\ud800"', b'{"x": "\\udfff"}', b'{"name": "\\ud800"}',
                                     b'{"s": "a\\udc00b"}', b'{"args": ["\\ud83d"]}'])), False
    if kind == "nan":
        return draw(st.sampled_from([b'{"x": NaN}', b'{"ratio": Infinity, "name": "n"}',
                                     b'{"x": -Infinity}', b'{"x": 1e999}'])), False
    size = MAX_BODY + draw(st.sampled_from([1, 4096])) if kind == "big" else MAX_BODY
    body = padded(size)
    if draw(st.booleans()):  # chunked: the guard counts as it reads
        return (body[:65536], body[65536:]), size > MAX_BODY
    return body, size > MAX_BODY


CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                 "application/vnd.api+json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "", "json", "application/jsonx",
                 "text/json", "application/json;", "*/*"]


@dataclass
class Raw:
    path: str  # as sent: httpx encodes it
    target: str  # "task", "beat", "other" or "outside" (the prefix), from the decoded path
    name: str
    headers: dict[str, bytes]
    token: str
    meta: Meta
    scheduler_malformed: bool
    body: bytes | tuple[bytes, ...]  # a tuple: chunks, sent without Content-Length
    oversize: bool


def audience_path(path: str, base_url: str) -> str:
    """The path the worker checks a token's audience against: the decoded path, as routed
    (the URL the sender built from the task name, not a re-escaped one)."""
    return httpx.URL(base_url + path).path


def classify(decoded: str) -> tuple[str, str]:
    if not decoded.startswith(PREFIX + "/"):  # "/_tasks/../x" is sent as "/x"
        return "outside", decoded
    rest = decoded.removeprefix(PREFIX + "/")
    if rest in TASKS:
        return "task", rest
    if rest.startswith("beat/") and "/" not in rest[5:] and rest[5:]:
        return "beat", rest[5:]
    return "other", rest


@st.composite
def raw_requests(draw: st.DrawFn, base_url: str) -> Raw:
    kind = draw(st.sampled_from(["task"] * 5 + ["beat"] * 2 + ["unknown", "odd"]))
    if kind == "task":
        path = f"{PREFIX}/{draw(st.sampled_from(TASKS))}"
    elif kind == "beat":
        entry = draw(st.one_of(st.sampled_from([*ENTRIES, "gone"]),
                               st.text(SAFE_NAME, min_size=1, max_size=20)))
        path = f"{PREFIX}/beat/{entry}"
    elif kind == "unknown":
        path = f"{PREFIX}/{draw(st.text(SAFE_NAME, min_size=1, max_size=30))}"
    else:
        odd = st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"],
                            exclude_characters="?#")
        path = f"{PREFIX}/" + draw(st.one_of(st.text(odd, max_size=20), st.sampled_from(
            ["", ".", "..", "../x", "./fuzz.add", "fuzz.add/", "/fuzz.add", "fuzz.add%2F",
             "%2e%2e/x", "beat", "beat/", "beat/tick/x", "beat/%2F", "fuzz.add%00", "FUZZ.ADD",
             "fuzz.add ", "%F0%9F%92%A5", "%ff", "fuzz.add;x=1", "a" * 2000])))
    decoded = httpx.URL(base_url + path).path
    target, name = classify(decoded)
    meta = draw(celery_metadata())
    headers = dict(meta.headers)
    headers.update(draw(cloudtasks_headers()))
    scheduler, scheduler_malformed = draw(scheduler_headers())
    headers.update(scheduler)
    content_type = draw(st.sampled_from(["application/json"] * 10 + CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type.encode()
    body, oversize = draw(bodies(name if target == "task" else None))
    token = draw(st.sampled_from(["valid"] * 6 + ["none", "garbage", "other-path", "expired",
                                                   "future", "issuer", "email", "unverified",
                                                   "scheme", "alg"]))
    return Raw(path, target, name, headers, token, meta, scheduler_malformed, body, oversize)


def authorization(served: Served, raw: Raw, audience: str) -> tuple[bytes | None, int | None]:
    """The ``Authorization`` value of ``raw`` and the status it must get (None if valid)."""
    now = int(served.app.now().timestamp())
    kind = raw.token
    if kind == "valid":
        return f"Bearer {served.token(audience)}".encode(), None
    if kind == "none":
        return None, 401
    if kind == "garbage":
        return b"Bearer not.a-token.at-all", 401
    if kind == "other-path":
        return f"Bearer {served.token(PREFIX + '/fuzz.sink-other')}".encode(), 401
    if kind == "expired":
        return f"Bearer {served.token(audience, iat=now - 7200, exp=now - 3600)}".encode(), 401
    if kind == "future":
        return f"Bearer {served.token(audience, iat=now + 3600, exp=now + 7200)}".encode(), 401
    if kind == "issuer":
        return f"Bearer {served.token(audience, iss='https://evil.example')}".encode(), 401
    if kind == "email":
        return f"Bearer {served.token(audience, email='x@evil.example')}".encode(), 403
    if kind == "unverified":
        return f"Bearer {served.token(audience, email_verified=False)}".encode(), 403
    if kind == "scheme":
        return f"Basic {served.token(audience)}".encode(), 401
    header = jwt.encode({"aud": served.url + audience}, "s" * 32, algorithm="HS256")
    return f"Bearer {header}".encode(), 401


def check_raw(served: Served, raw: Raw) -> None:
    """Send ``raw`` and check the invariants of its answer."""
    value, refused = authorization(served, raw, audience_path(raw.path, served.url))
    headers = dict(raw.headers)
    if value is not None:
        headers["Authorization"] = value
    ran, sent, errors = len(served.ran), served.sent(), served.errors.count
    body = raw.body if isinstance(raw.body, bytes) else iter(raw.body)
    # Large: a body the worker may answer before reading it all, or a header block beyond
    # what uvicorn's HTTP parser takes (16 KB: it answers 400 and closes at once). Either
    # way the client, still writing, may see the connection reset instead of the answer.
    head = sum(len(str(k)) + len(v if isinstance(v, bytes) else str(v))
               for k, v in headers.items())
    large = isinstance(raw.body, tuple) or len(raw.body) >= MAX_BODY or head > 8192
    # A connection per request: what one request leaves on a connection (a body the server
    # answered early and did not read, a connection it closed after a malformed request)
    # never decides the next request's fate.
    headers["Connection"] = "close"
    try:
        response = served.client.post(raw.path, content=body, headers=headers)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        # A large request (above) answered early: nothing ran or was sent.
        if not large:
            raise
        assert (len(served.ran) - ran, served.sent() - sent) == (0, 0), raw.path
        return
    status = served.settled(response, errors)
    ran, sent = len(served.ran) - ran, served.sent() - sent
    detail = (raw.path, status, response.text[:300], raw.headers, raw.token,
              raw.body[:200] if isinstance(raw.body, bytes) else "(chunked)")
    assert status < 500, detail
    if large and status == 400 and response.text == "Invalid HTTP request received.":
        # uvicorn's own parser refused the request (a header block beyond its limit) before
        # any app saw it: nothing ran or was sent.
        assert (ran, sent) == (0, 0), detail
        return
    if raw.target == "outside":  # no worker route: FastAPI's 404 (307 for "/_tasks")
        assert status in (307, 404), detail
        assert (ran, sent) == (0, 0), detail
        return
    assert response.headers["content-type"] == "application/json", detail
    response.json()
    assert ran in (0, 1), detail
    if refused is not None:  # no valid token: refused first, nothing runs or is sent
        assert status == refused, detail
        assert (ran, sent) == (0, 0), detail
        return
    assert status not in (401, 403), detail
    if raw.oversize:
        assert status == 413, detail
    if raw.target == "task":
        if raw.meta.malformed:
            assert status in (400, 413, 415, 422), detail
            assert ran == 0, detail
        if ran:
            assert status == 200, detail
            assert response.json()["state"] == "SUCCESS", detail
        elif status == 200:
            assert response.json()["state"] in ("REVOKED", "PENDING"), detail
            assert raw.meta.expired or raw.meta.relayed or raw.meta.naive, detail
        else:
            assert status in (400, 413, 415, 422), detail
        if not (raw.meta.malformed or raw.meta.naive or raw.oversize) and status == 200:
            assert ran == (0 if raw.meta.expired or raw.meta.relayed else 1), detail
    elif raw.target == "beat":
        assert ran == 0, detail
        assert status in (200, 400, 404, 413, 415), detail
        if raw.scheduler_malformed:
            assert status in (400, 413, 415), detail
        if status != 200:
            assert sent == 0, detail
    else:
        assert ran == 0, detail
        assert status in (400, 404, 413, 415), detail
        assert sent == 0, detail


# Hypothesis warns when it builds the text of a large example (a body of hundreds of kB), which
# it does only on some runs; that is about its report, not about the worker.
@pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")
def test_raw_requests(served: Served) -> None:
    """Random paths, headers, content types, bodies and tokens: never a 5xx, and nothing runs
    without a valid token or with malformed metadata."""
    count = 0

    @fuzz_settings(FLOORS["raw"])
    @given(raw=raw_requests(served.url))
    def run(raw: Raw) -> None:
        nonlocal count
        check_raw(served, raw)
        count += 1
        served.transport.pop()  # what the worker sent was counted: keep memory flat

    run()
    assert count >= FLOORS["raw"], count


# -- the library bugs the fuzzers found ---------------------------------------------------------


def bug(name: str, *values: Any) -> Any:
    return pytest.param(*values, id=name)


GOOD = {"X-Celery-Task-Id": "t-1", "Content-Type": "application/json"}
BODY = b'{"x": 1}'
LATER = (datetime.now(UTC) + timedelta(days=400)).replace(tzinfo=None).isoformat()


@pytest.mark.parametrize(("path", "headers", "body", "statuses", "runs"), [
    # runs: whether the task runs when the answer is 200.
    # Either reading the naive time as UTC (expired: 200, skipped) or refusing it (400) is fine.
    bug("naive-expires", "/fuzz.add", {"X-Celery-Expires": "2020-01-01T00:00:00"}, BODY,
        {200, 400}, False),
    # Relayed as a UTC time (200, sent on) or refused (400); it must not run now either way.
    bug("naive-relay-eta", "/fuzz.add", {"X-Celery-ETA": LATER, "X-Celery-Relay": "1"}, BODY,
        {200, 400}, False),
    bug("superscript-retries", "/fuzz.add", {"X-Celery-Retries": b"\xb2"}, BODY, {400}, False),
    # The X-CloudTasks-* headers are read leniently: an unreadable one does not stop the task.
    bug("superscript-cloudtasks-count", "/fuzz.add",
        {"X-CloudTasks-QueueName": "q", "X-CloudTasks-TaskRetryCount": b"\xb9"}, BODY,
        {200}, True),
    bug("huge-cloudtasks-eta", "/fuzz.add",
        {"X-CloudTasks-QueueName": "q", "X-CloudTasks-TaskETA": "1e20"}, BODY, {200}, True),
    bug("nested-metadata-json", "/fuzz.add", {"X-Celery-Link": "[" * 3000}, BODY,
        {400}, False),
    bug("nested-metadata-json", "/fuzz.add", {"X-Celery-Headers": '{"a":' * 3000}, BODY,
        {400}, False),
    # Refused as malformed (400) or fired as the given time (200): no 5xx either way.
    bug("beat-schedule-time-range", "/beat/tick",
        {"X-CloudScheduler-ScheduleTime": "9999-12-31T23:59:59-01:00"}, b"", {200, 400}, False),
    bug("beat-schedule-time-range", "/beat/tick",
        {"X-CloudScheduler-ScheduleTime": "0001-01-01T00:00:00+01:00"}, b"", {200, 400}, False),
    bug("ill-typed-link", "/fuzz.add", {"X-Celery-Link": '[{"task":"fuzz.sink","args":5}]'},
        BODY, {400}, False),
    bug("ill-typed-link", "/fuzz.add",
        {"X-Celery-Link": '[{"task":"fuzz.sink","options":{"countdown":"soon"}}]'}, BODY,
        {400}, False),
    # Refused as malformed JSON (400), or answered 422 with a detail that encodes.
    bug("nan-json-body", "/fuzz.add", {}, b'{"x": NaN}', {400, 422}, False),
    bug("nan-json-body", "/fuzz.order", {}, b'{"x": Infinity}', {400, 422}, False),
    # Refused as malformed (400), or run with an answer that encodes (200, run once).
    bug("lone-surrogate-json", "/fuzz.greet", {}, b'{"name": "\\ud800"}', {200, 400}, True),
    bug("lone-surrogate-json", "/fuzz.add", {}, b'{"x": "\\udfff"}', {400, 422}, False),
])
def test_found_by_fuzzing(served: Served, path: str, headers: dict[str, Any], body: bytes,
                          statuses: set[int], runs: bool) -> None:
    """The requests the fuzzers found bugs with, each answered without a 5xx, and run only
    when its metadata is good."""
    path = PREFIX + path
    ran, errors = len(served.ran), served.errors.count
    response = served.client.post(
        path, content=body,
        headers={**GOOD, **auth_headers(served.app, served.issuer, path), **headers})
    status = served.settled(response, errors)
    assert status in statuses, (status, response.text)
    assert len(served.ran) - ran == int(runs and status == 200)
