"""The wire format: X-Celery-* headers and the JSON body, and what a worker refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from celery_gcp.exceptions import MessageDecodeError
from celery_gcp.message import Message


def full_message() -> Message:
    return Message(
        task="proj.add", id="abc", body=b'{"x":1}', retries=2, queue="high_priority",
        eta=datetime(2030, 1, 1, tzinfo=UTC), expires=datetime(2030, 1, 2, tzinfo=UTC),
        root_id="root", parent_id="parent",
        link=({"task": "proj.cb", "args": [1]},), link_error=({"task": "proj.err"},),
        headers={"tenant": "acme"},
    )


def test_http_round_trip() -> None:
    message = full_message()
    headers = {k.lower(): v for k, v in message.http_headers().items()}
    assert Message.from_http("proj.add", _ci(headers), message.body) == message
    assert headers["content-type"] == "application/json"
    assert headers["x-celery-eta"] == "2030-01-01T00:00:00+00:00"
    assert all(v.isascii() for v in headers.values())


def test_minimal_message_sends_only_what_it_has() -> None:
    headers = Message(task="t", id="i", body=b"{}").http_headers()
    assert set(headers) == {"Content-Type", "X-Celery-Version", "X-Celery-Task-Id",
                            "X-Celery-Retries"}


@pytest.mark.parametrize(("header", "value", "problem"), [
    ("x-celery-retries", "-1", "non-negative integer"),
    ("x-celery-retries", "two", "non-negative integer"),
    ("x-celery-eta", "not a date", "ISO 8601"),
    ("x-celery-expires", "2030-13-01", "ISO 8601"),
    ("x-celery-link", "{not json", "must be JSON"),
    ("x-celery-link", '{"task": "x"}', "JSON list of signatures"),
    ("x-celery-link-error", '[{"no": "task"}]', "JSON list of signatures"),
    ("x-celery-headers", "[1]", "JSON object"),
    ("x-celery-version", "2", "reads version 1"),
])
def test_malformed_metadata_is_refused(header: str, value: str, problem: str) -> None:
    headers = {"x-celery-task-id": "abc", header: value}
    with pytest.raises(MessageDecodeError, match=problem):
        Message.from_http("t", _ci(headers), b"{}")


def test_missing_task_id_is_refused() -> None:
    with pytest.raises(MessageDecodeError, match="X-Celery-Task-Id"):
        Message.from_http("t", _ci({}), b"{}")


def test_arguments_reads_the_body() -> None:
    assert Message(task="t", id="i", body=b'{"a":1}').arguments() == {"a": 1}
    with pytest.raises(MessageDecodeError):
        Message(task="t", id="i", body=b"[1]").arguments()


def _ci(headers: dict[str, str]) -> dict[str, str]:
    from starlette.datastructures import Headers

    return Headers(headers=headers)  # type: ignore[return-value]
