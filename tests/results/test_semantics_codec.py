"""The codec of stored results: Celery's JSON form of exceptions, rebuilt safely."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from celery_gcp.results.codec import decode_exception, decode_result, encode_result


class InventoryError(Exception):
    """A project's own error: found again by its module, which is imported."""


def test_codec_agrees_with_celerys_json_form() -> None:
    import celery
    from celery.backends.base import Backend

    oracle = Backend(app=celery.Celery(set_as_current=False), serializer="json")
    error = InventoryError("A-1 is out of stock")
    from celery_gcp.results.codec import encode_exception

    ours = encode_exception(error)
    theirs = oracle.prepare_exception(error, "json")
    assert (ours["exc_type"], ours["exc_module"], list(ours["exc_message"])) == (
        theirs["exc_type"], theirs["exc_module"], list(theirs["exc_message"]))
    rebuilt = oracle.exception_to_python(ours)
    assert type(rebuilt) is InventoryError
    assert str(rebuilt) == str(error)
    assert type(decode_exception(theirs)) is InventoryError


def test_codec_never_imports_a_module_named_by_stored_data(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    (tmp_path / "planted_module.py").write_text(
        "raise SystemExit('imported by stored data')\nclass Bad(Exception): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    exc = decode_exception({"exc_type": "Bad", "exc_module": "planted_module",
                            "exc_message": ["hi"]})
    assert "planted_module" not in sys.modules
    assert type(exc).__name__ == "Bad"
    assert str(exc) == "hi"
    assert isinstance(exc, Exception)
    # Not an exception class: never called, a generic exception instead.
    exc = decode_exception({"exc_type": "system", "exc_module": "os", "exc_message": ["rm"]})
    assert type(exc).__module__ == "os"
    assert type(exc) is not __import__("os").system


def test_results_are_stored_as_json_values() -> None:
    from datetime import UTC, datetime
    from uuid import UUID

    when = datetime(2030, 1, 2, tzinfo=UTC)
    value = encode_result({"at": when, "id": UUID(int=1), "rows": (1, 2)})
    assert value == {"at": "2030-01-02T00:00:00Z", "id": str(UUID(int=1)), "rows": [1, 2]}
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        encode_result(object())
    # A successful result that looks like an exception stays a value.
    looks = {"exc_type": "ValueError", "exc_message": ["x"], "exc_module": "builtins"}
    assert decode_result({"status": "SUCCESS", "result": looks}) == looks
    assert isinstance(decode_result({"status": "FAILURE", "result": looks}), ValueError)
