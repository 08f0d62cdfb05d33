"""`-A` finds apps as Celery's find_app does, and says what it found when it finds none."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from celery_gcp.cli import main

Layout = Callable[[dict[str, str]], None]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Layout]:
    """``project({"path.py": source})`` writes a project and makes it the working directory
    (where `-A` imports from, as Celery's); its modules are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)

    def write(files: dict[str, str]) -> None:
        for path, source in files.items():
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(source))

    yield write
    for name in set(sys.modules) - before:
        if not name.startswith(("celery_gcp", "fastapi", "starlette", "pydantic")):
            del sys.modules[name]
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def registered(app: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-A", app, "inspect", "registered"])
    return result.exit_code, result.output


def test_celery_equals_current_app_is_found(project: Layout) -> None:
    project({"tut_app.py": """
        from celery_gcp import Celery, current_app
        Celery("tut")
        celery = current_app

        @celery.task
        def ping() -> str:
            return "pong"
    """})
    code, output = registered("tut_app")
    assert code == 0, output
    assert "tut_app.ping\tPOST /_tasks/tut_app.ping" in output


def test_any_celery_instance_in_the_module_is_found(project: Layout) -> None:
    project({"named_app.py": """
        from celery_gcp import Celery
        from fastapi import FastAPI
        app = FastAPI()
        celery_app = Celery("named")

        @celery_app.task
        def job() -> None: ...
    """})
    code, output = registered("named_app")
    assert code == 0, output
    assert "named_app.job" in output


def test_django_layout_proj_celery_is_found_from_the_package(project: Layout) -> None:
    project({
        "djproj/__init__.py": "",
        "djproj/celery.py": """
            from celery_gcp import Celery
            app = Celery("djproj")

            @app.task
            def debug_task() -> None: ...
        """,
    })
    code, output = registered("djproj")
    assert code == 0, output
    assert "djproj.celery.debug_task" in output


def test_module_dot_attribute_and_colon_forms(project: Layout) -> None:
    project({"dotted.py": """
        from celery_gcp import Celery
        worker_app = Celery("dotted")
        other = Celery("other")

        @other.task
        def only_other() -> None: ...
    """})
    assert registered("dotted:other")[0] == 0
    code, output = registered("dotted.other")
    assert code == 0, output
    assert "dotted.only_other" in output


def test_nothing_found_says_what_was_passed_looked_at_and_found(project: Layout) -> None:
    project({"no_app.py": """
        from fastapi import FastAPI
        app = FastAPI()
        settings = {"x": 1}
    """})
    code, output = registered("no_app")
    assert code == 2
    assert "module 'no_app' has no Celery app (from -A no_app" in output
    assert "no_app.app, no_app.celery" in output
    assert "app (a FastAPI)" in output
    assert "settings" in output
    assert "pass -A module:attribute" in output


def test_a_named_attribute_that_is_not_an_app_does_not_suggest_naming_one(
        project: Layout) -> None:
    project({"wrong_attr.py": "from fastapi import FastAPI\napi = FastAPI()\n"})
    code, output = registered("wrong_attr:api")
    assert code == 2
    assert "-A wrong_attr:api is a FastAPI, not a Celery app" in output
    assert "module:attribute" not in output
    code, output = registered("wrong_attr:nope")
    assert code == 2
    assert "module 'wrong_attr' has no attribute 'nope'" in output
    assert "api" in output
    assert "module:attribute" not in output


def test_unknown_module_and_a_module_that_raises_are_one_line(project: Layout) -> None:
    project({"boom_app.py": "raise RuntimeError('settings missing:\\n DATABASE_URL')\n",
             "dep_app.py": "import not_installed_dependency_xyz\n"})
    code, output = registered("no_such_module_xyz")
    assert code == 2
    assert "no module named 'no_such_module_xyz' (from -A no_such_module_xyz)" in output
    code, output = registered("boom_app")
    assert code == 2
    assert ("importing module 'boom_app' (from -A boom_app) failed: RuntimeError: settings "
            "missing: DATABASE_URL") in output
    code, output = registered("dep_app")
    assert code == 2
    assert ("importing module 'dep_app' (from -A dep_app) failed: ModuleNotFoundError: "
            "No module named 'not_installed_dependency_xyz'") in output
    for text in (output,):
        assert "Traceback" not in text
