"""``celery-gcp migrate``: what it rewrites (and leaves alone), what it reports, its modes and
exit codes, run as a real subprocess on sample projects written in tmp dirs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from celery_gcp.migrate.run import migrate_file

from .samples import DJANGO, FASTAPI, write

ROOT = Path(__file__).resolve().parents[2]


def migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``celery-gcp migrate ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "celery_gcp.cli", "migrate", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def rewritten(source: str) -> str:
    return migrate_file(source.encode(), "m.py")[0].decode()


def test_write_rewrites_every_import_form_and_keeps_the_rest_byte_for_byte(
        tmp_path: Path) -> None:
    write(tmp_path, FASTAPI)
    out = migrate("--write", ".", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr  # findings need attention
    worker = (tmp_path / "app/worker.py").read_text()
    expected = FASTAPI["app/worker.py"]
    for old, new in (("import celery\n", "import celery_gcp\n"),
                     ("import celery.result as r", "import celery_gcp.result as r"),
                     ("from celery import Celery ,", "from celery_gcp import Celery ,"),
                     ("from celery.schedules import (", "from celery_gcp.schedules import ("),
                     ("celery.Celery(", "celery_gcp.Celery(")):
        expected = expected.replace(old, new)
    assert worker == expected  # comments, odd spacing and the parenthesised import kept
    tests = (tmp_path / "tests/test_worker.py").read_text()
    assert 'monkeypatch.setattr("celery_gcp.result.AsyncResult.get"' in tests
    assert 'mock.patch("celery_gcp.task.Task.retry"' in tests
    assert "from celery_gcp.exceptions import Retry" in tests
    # What celery_gcp has no home for is left as written, and reported.
    assert "from celery.contrib.abortable import AbortableTask" in tests
    assert (f"tests{os.sep}test_worker.py:4: no: celery.contrib.abortable.AbortableTask: "
            "not in celery_gcp, left as written;") in out.stdout
    assert (tmp_path / "app/broken.py").read_text() == "def oops(:\n"


def test_a_second_write_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path, FASTAPI)
    first = migrate("--write", ".", cwd=tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.py")}
    second = migrate("--write", ".", cwd=tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.py")} == before
    assert " 0 rewritten, " in second.stdout.splitlines()[-1]
    # The same uses are still reported on migrated code (celery_gcp names read as Celery's).
    assert first.stdout.splitlines()[:-1] == second.stdout.splitlines()[:-1]


def test_reports_each_use_with_file_line_status_and_the_guides_section(tmp_path: Path) -> None:
    write(tmp_path, FASTAPI)
    out = migrate(".", cwd=tmp_path).stdout
    worker, flows = f"app{os.sep}worker.py", f"app{os.sep}flows.py"
    for expected in (
            f"{worker}:9: no: task_soft_time_limit: never raised: check the elapsed time in the "
            "task yourself (guide: #time-limits-and-rate-limits)",
            f"{worker}:10: differs: beat_schedule: ",
            f"{worker}:13: no: soft_time_limit=: ",
            f"{worker}:19: differs: app.control.revoke: app.control does not exist: use "
            "AsyncResult(id).revoke() (guide: #revoke-control-and-inspect)",
            f"{flows}:6: no: celery.signals.worker_ready: never fires",
            f"{flows}:8: differs: celery.chord: needs result_backend",
            f"{flows}:9: differs: celery.group: ",
            f"app{os.sep}broken.py:1: error: not valid Python: "):
        assert any(line.startswith(expected) for line in out.splitlines()), (expected, out)
    assert f"{flows}:8: differs: celery.group" not in out  # one finding per feature and line


def test_django_layout_settings_with_old_and_namespaced_names(tmp_path: Path) -> None:
    write(tmp_path, DJANGO)
    out = migrate("--write", ".", cwd=tmp_path)
    settings = f"proj{os.sep}settings.py"
    lines = out.stdout.splitlines()
    for expected in (
            f"{settings}:3: differs: CELERY_BROKER_URL: remove it",
            f"{settings}:4: as-is: CELERY_ALWAYS_EAGER -> task_always_eager: nothing to do",
            f"{settings}:5: no: CELERY_TASK_SOFT_TIME_LIMIT: never raised",
            f"{settings}:6: as-is: CELERYBEAT_SCHEDULE -> beat_schedule: ",
            f"{settings}:6: differs: CELERYBEAT_SCHEDULE: one Cloud Scheduler job per entry",
            f"{settings}:7: no: celery.schedules.solar: beat sync refuses it",
            f"polls{os.sep}tasks.py:7: differs: acks_late=: no effect"):
        assert any(line.startswith(expected) for line in lines), (expected, out.stdout)
    assert (tmp_path / "proj/celery.py").read_text() == DJANGO["proj/celery.py"].replace(
        "from celery import Celery", "from celery_gcp import Celery")
    assert "from celery_gcp.schedules import crontab, solar" in (
        tmp_path / "proj/settings.py").read_text()


def test_diff_is_the_default_and_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path, DJANGO)
    out = migrate(str(tmp_path / "polls"), cwd=tmp_path)
    assert out.stdout.startswith(f"--- {tmp_path / 'polls' / 'tasks.py'}\n")
    assert "\n-from celery import shared_task\n" in out.stdout
    assert "\n+from celery_gcp import shared_task\n" in out.stdout
    assert (tmp_path / "polls/tasks.py").read_text() == DJANGO["polls/tasks.py"]
    assert out.returncode == 1  # acks_late= differs


def test_check_exit_codes(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text("from celery import shared_task\n\n\n@shared_task\ndef f():\n    pass\n")
    out = migrate("--check", str(clean), cwd=tmp_path)
    assert (out.returncode, out.stdout.splitlines()[0]) == (1, f"{clean}: would rewrite")
    assert clean.read_text().startswith("from celery import")
    assert migrate("--write", str(clean), cwd=tmp_path).returncode == 0  # nothing to attend
    assert migrate("--check", str(clean), cwd=tmp_path).returncode == 0
    # A reviewed line is not reported.
    reviewed = tmp_path / "reviewed.py"
    reviewed.write_text("from celery_gcp import group\ngroup([])  # celery-gcp: ok\n")
    assert migrate("--check", str(reviewed), cwd=tmp_path).returncode == 0


def test_a_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = migrate(str(tmp_path / "nope"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == f"migrate: {tmp_path / 'nope'}: no such file or directory\n"


def test_virtualenvs_git_and_caches_are_skipped(tmp_path: Path) -> None:
    for skipped in (".venv/lib/site-packages/x.py", ".git/hooks/y.py", "__pycache__/z.py",
                    "lib/site-packages/w.py"):
        write(tmp_path, {skipped: "from celery import Celery\n"})
    out = migrate("--check", ".", cwd=tmp_path)
    assert out.stdout.splitlines() == ["migrate: 0 file(s) scanned, 0 would be rewritten, "
                                       "0 finding(s) need attention, 0 for information"]
    assert out.returncode == 0


def test_this_repositorys_examples_have_nothing_to_rewrite() -> None:
    examples = [p for p in (ROOT / "examples").iterdir() if p.name != "celery_project"]
    out = migrate("--check", str(ROOT / "examples" / "quickstart"), cwd=ROOT)
    assert out.returncode == 0, out.stdout
    for example in examples:
        out = migrate("--check", str(example), cwd=ROOT)
        assert "would rewrite" not in out.stdout, out.stdout
        assert " 0 would be rewritten, " in out.stdout.splitlines()[-1]


def test_names_and_strings_that_are_not_celerys_are_untouched() -> None:
    source = ('import celeryx\nfrom mycelery import Celery\ncelery = "celery.result"\n'
              'def f(celery):\n    return celery.Celery\nprint("celery.result")\n')
    assert rewritten(source) == source


def test_import_celery_is_left_whole_when_a_name_read_through_it_is_not_in_celery_gcp(
        ) -> None:
    source = "import celery\n\nstep = celery.bootsteps.StartStopStep\napp = celery.Celery()\n"
    new, findings = migrate_file(source.encode(), "m.py")
    assert new.decode() == source  # rewriting it would break celery.bootsteps
    advice = ("there is no worker process to extend: add a celery_gcp.layers.Layer to "
              "app.layers (guide: #signals)")
    assert [str(f) for f in findings] == [
        f"m.py:1: no: celery.bootsteps: not in celery_gcp, left as written; {advice}",
        f"m.py:3: no: celery.bootsteps: {advice}"]


def test_kombu_imports_move_to_celery_gcp_kombu_where_it_has_them() -> None:
    source = ("from kombu import Queue, Exchange\n"
              "from kombu.exceptions import OperationalError\n"
              "from kombu import Connection\n")
    new = rewritten(source)
    # celery_gcp.kombu may not be installed yet; what is rewritten follows what it holds.
    home = importlib.util.find_spec("celery_gcp.kombu") is not None
    if home:
        assert "from celery_gcp.kombu import Queue, Exchange\n" in new
        assert "from celery_gcp.kombu.exceptions import OperationalError\n" in new
    else:
        assert new.splitlines()[:2] == source.splitlines()[:2]
    # kombu's Connection has no home in celery_gcp either way: left, and reported.
    assert new.splitlines()[2] == "from kombu import Connection"
    assert "kombu.Connection" in {f.feature for f in migrate_file(source.encode(), "m")[1]}


def test_importing_the_cli_does_not_load_libcst() -> None:
    out = subprocess.run([sys.executable, "-c", "import celery_gcp.cli, celery_gcp.app, sys; "
                          "import celery_gcp.migrate.features; print('libcst' in sys.modules)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "False\n", out.stderr


def test_more_import_forms_and_patch_targets() -> None:
    source = ('import celery.result\n'
              'import celery as c\n'
              'from celery import *\n'
              'from celery.app.task import Task\n'
              'from unittest.mock import patch\n'
              'x = celery.result.AsyncResult("id")\n'
              'patch.object(celery.result.AsyncResult, "get")\n'
              'patch.dict("celery.states.__dict__", {})\n'
              'app = c.Celery("p")\n')
    assert rewritten(source) == (
        'import celery_gcp.result\n'
        'import celery_gcp as c\n'
        'from celery_gcp import *\n'
        'from celery_gcp.task import Task\n'
        'from unittest.mock import patch\n'
        'x = celery_gcp.result.AsyncResult("id")\n'
        'patch.object(celery_gcp.result.AsyncResult, "get")\n'
        'patch.dict("celery_gcp.states.__dict__", {})\n'
        'app = c.Celery("p")\n')


def test_a_from_import_with_one_missing_name_is_left_whole_and_names_it() -> None:
    source = "from celery import Celery, bootsteps\n"
    new, findings = migrate_file(source.encode(), "m.py")
    assert new.decode() == source
    assert [(f.line, f.feature) for f in findings] == [(1, "celery.bootsteps")]


def test_line_endings_and_declared_encodings_are_kept_and_bad_bytes_reported(
        tmp_path: Path) -> None:
    declared = tmp_path / "declared.py"
    declared.write_bytes(
        b'# -*- coding: latin-1 -*-\r\nfrom celery import Celery\r\nx = "\xe9"\r\n')
    undeclared = tmp_path / "undeclared.py"
    undeclared.write_bytes(b'from celery import Celery\nx = "\xe9"\n')
    out = migrate("--write", ".", cwd=tmp_path)
    assert declared.read_bytes() == (
        b'# -*- coding: latin-1 -*-\r\nfrom celery_gcp import Celery\r\nx = "\xe9"\r\n')
    assert undeclared.read_bytes() == b'from celery import Celery\nx = "\xe9"\n'
    assert out.stdout.splitlines()[0].startswith(
        "undeclared.py:1: error: not valid Python: 'utf-8' codec can't decode byte 0xe9")
    assert out.returncode == 1


def test_an_attribute_read_anywhere_is_named_as_the_table_has_it() -> None:
    source = "app.AsyncResult('x').revoke()\nself.app.control.inspect()\n"
    findings = migrate_file(source.encode(), "m.py")[1]
    assert [(f.line, f.status, f.feature) for f in findings] == [
        (1, "differs", ".revoke"), (2, "no", "app.control")]
