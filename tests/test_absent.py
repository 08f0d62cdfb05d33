"""Celery features left out on purpose say so, with what to do instead and the guide's
section, from one table (celery_gcp/absent.py); other missing names stay plain errors."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import celery
import pytest

import celery_gcp
from celery_gcp import Celery
from celery_gcp.absent import ABSENT, GUIDE
from celery_gcp.exceptions import (
    CeleryGcpError,
    NotSupportedAttributeError,
    NotSupportedError,
    NotSupportedImportError,
)

ROOT = Path(__file__).resolve().parents[1]
APP_ROWS = sorted(name for name in ABSENT if name.startswith("app."))
MODULE_ROWS = sorted(name for name in ABSENT if not name.startswith("app.") and (
    importlib.util.find_spec("celery_gcp" + name.removeprefix("celery")) is not None))
NAME_ROWS = sorted(set(ABSENT) - set(APP_ROWS) - set(MODULE_ROWS))


def anchors() -> set[str]:
    """GitHub's heading anchors of the migration guide."""
    headings = re.findall(r"^#+ (.+)$", (ROOT / GUIDE).read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_row_names_a_section_of_the_guide_and_a_real_celery_feature() -> None:
    sections = anchors()
    for name, row in ABSENT.items():
        assert row.section in sections, (name, row.section)
        assert row.instead, name
    for name in APP_ROWS:
        assert hasattr(celery.Celery, name.removeprefix("app.")), name
    for name in MODULE_ROWS:
        assert importlib.util.find_spec(name) is not None, name
    for name in NAME_ROWS:
        assert name.count(".") == 1, name
        assert hasattr(celery, name.removeprefix("celery.")), name
    assert {"app.control", "app.connection", "app.connection_for_write",
            "app.producer_or_acquire"} <= set(APP_ROWS)
    assert {"celery.contrib.abortable", "celery.bin"} <= set(MODULE_ROWS)
    assert NAME_ROWS


@pytest.mark.parametrize("name", APP_ROWS)
def test_an_absent_app_attribute_says_so(name: str) -> None:
    app = Celery("absent", broker_url="memory://")
    attribute = name.removeprefix("app.")
    with pytest.raises(NotSupportedAttributeError) as caught:
        getattr(app, attribute)
    error = caught.value
    assert isinstance(error, AttributeError)
    assert isinstance(error, NotSupportedError)
    assert isinstance(error, CeleryGcpError)
    assert str(error).startswith(f"{name} is not supported by celery_gcp: ")
    assert f"(see {GUIDE}#{ABSENT[name].section})" in str(error)
    assert not hasattr(app, attribute)
    assert getattr(app, attribute, "default") == "default"


def test_connections_are_refused_naming_the_alternative() -> None:
    app = Celery("absent-connection", broker_url="memory://")
    for attribute in ("connection", "connection_for_write", "connection_for_read",
                      "producer_or_acquire"):
        with pytest.raises(NotSupportedAttributeError, match=r"send with \.delay\(\)"):
            getattr(app, attribute)()


def test_a_name_celery_never_had_is_a_plain_attribute_error() -> None:
    app = Celery("plain", broker_url="memory://")
    with pytest.raises(AttributeError) as caught:
        app.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    assert type(caught.value) is AttributeError
    assert str(caught.value) == "'Celery' object has no attribute 'no_such_thing'"
    with pytest.raises(AttributeError) as module_caught:
        celery_gcp.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    assert type(module_caught.value) is AttributeError
    with pytest.raises(ImportError) as import_caught:
        exec("from celery_gcp import no_such_thing", {})
    assert not isinstance(import_caught.value, NotSupportedError)


@pytest.mark.parametrize("name", NAME_ROWS)
def test_an_absent_top_level_name_says_so_on_import(name: str) -> None:
    attribute = name.removeprefix("celery.")
    with pytest.raises(NotSupportedImportError, match=f"^{re.escape(name)} is not supported"):
        exec(f"from celery_gcp import {attribute}", {})


@pytest.mark.parametrize("name", MODULE_ROWS)
def test_an_absent_module_says_so_on_import(name: str) -> None:
    module = "celery_gcp" + name.removeprefix("celery")
    with pytest.raises(NotSupportedImportError) as caught:
        importlib.import_module(module)
    assert caught.value.name == module
    assert f"(see {GUIDE}#{ABSENT[name].section})" in str(caught.value)
    assert module not in sys.modules  # a failed import leaves nothing half-made


def test_celery_top_level_names_that_exist_here_import() -> None:
    from celery_gcp import (  # noqa: F401
        chunks,
        current_task,
        maybe_signature,
        subtask,
        xmap,
        xstarmap,
    )


def test_the_message_reaches_a_user_running_python() -> None:
    proc = subprocess.run([sys.executable, "-c", "import celery_gcp.contrib.abortable"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert ("celery_gcp.exceptions.NotSupportedImportError: celery.contrib.abortable is not "
            "supported by celery_gcp") in proc.stderr
