"""celery_gcp.contrib.pytest: Celery's pytest fixtures, run by pytester on a user's test files
written the way Celery's docs write them (in a subprocess each: a user's own pytest run)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = 'pytest_plugins = ("celery_gcp.contrib.pytest",)\n'


@pytest.fixture(autouse=True)
def _workers_verify_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The user's runs take the production path: the emulator signs, the worker checks.
    monkeypatch.setenv("CELERY_GCP_TASK_AUTH", "oidc")


def run(pytester: pytest.Pytester, *args: str, **files: str) -> pytest.RunResult:
    pytester.makepyfile(**files)
    pytester.syspathinsert()
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_the_worker_runs_tasks_sent_by_delay_and_get_returns_the_result(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, conftest=CONFTEST, test_user='''
        import pytest

        @pytest.fixture(scope="session")
        def celery_config():
            return {"task_default_queue": "tests"}

        def test_create_task(celery_app, celery_worker):
            @celery_app.task
            def mul(x, y):
                return x * y

            celery_worker.reload()
            assert mul.delay(4, 4).get(timeout=10) == 16
            assert mul.delay(2, 5).get(timeout=10) == 10

        def test_a_task_registered_after_the_start_is_served(celery_app, celery_worker):
            @celery_app.task
            def hello(name: str) -> str:
                return f"hello {name}"

            assert hello.delay("you").get(timeout=10) == "hello you"
    ''')
    result.assert_outcomes(passed=2)


def test_the_marker_overrides_the_config_and_the_app_records_without_a_worker(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, conftest=CONFTEST, test_user='''
        import pytest
        from celery_gcp import current_app

        @pytest.fixture(scope="session")
        def celery_config():
            return {"task_default_queue": "tests", "result_backend": "cache+memory://"}

        @pytest.mark.celery(result_backend=None, task_default_queue="marked")
        def test_marked(celery_app):
            assert celery_app.conf.task_default_queue == "marked"
            assert celery_app.backend is None

        def test_unmarked(celery_app):
            assert celery_app.conf.task_default_queue == "tests"
            assert celery_app.backend is not None

        def test_records(celery_app):
            @celery_app.task
            def add(x: int, y: int) -> int:
                return x + y

            add.delay(1, 2)
            [message] = celery_app.transport.pop()
            assert (message.task, message.queue) == ("test_user.add", "tests")

        def test_depends_on_current_app(celery_app, depends_on_current_app):
            assert current_app.main == celery_app.main
    ''', test_markers='''
        def test_marker_is_registered(pytestconfig):
            assert any(line.startswith("celery(") for line in pytestconfig.getini("markers"))
    ''')
    result.assert_outcomes(passed=5)


def test_session_app_and_worker_with_includes(pytester: pytest.Pytester) -> None:
    result = run(pytester, conftest=CONFTEST + '''
import pytest

@pytest.fixture(scope="session")
def celery_includes():
    return ["user_tasks"]

@pytest.fixture(scope="session")
def celery_parameters():
    return {"strict_typing": False}
''', user_tasks='''
        from celery_gcp import shared_task

        @shared_task
        def add(x: int, y: int) -> int:
            return x + y
    ''', test_user='''
        def test_one(celery_session_app, celery_session_worker):
            from user_tasks import add
            assert celery_session_app.strict_typing is False
            assert add.delay(1, 2).get(timeout=10) == 3

        def test_two(celery_session_worker):
            from user_tasks import add
            assert add.delay(3, 4).get(timeout=10) == 7
    ''')
    result.assert_outcomes(passed=2)


def test_a_manual_clock_and_drain_run_countdowns_and_retries_at_once(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, conftest=CONFTEST, test_user='''
        import time

        def test_drain(celery_app, celery_emulator, celery_worker, celery_drain):
            ran = []

            @celery_app.task(bind=True, max_retries=2)
            def flaky(self, n: int) -> int:
                ran.append((n, self.request.retries))
                if self.request.retries < 2:
                    raise self.retry(countdown=600)
                return n

            @celery_app.task
            def later(n: int) -> None:
                ran.append((n, "later"))

            start = celery_emulator.clock.now()
            wall = time.monotonic()
            later.apply_async((7,), countdown=3 * 3600)
            result = flaky.delay(1)
            celery_drain()
            assert sorted(ran, key=str) == sorted([(1, 0), (1, 1), (1, 2), (7, "later")], key=str)
            assert result.get(timeout=5) == 1
            assert celery_emulator.clock.now() >= start + 3 * 3600
            assert time.monotonic() - wall < 30
            assert celery_emulator.pending() == 0
    ''')
    result.assert_outcomes(passed=1)


def test_the_app_trap(pytester: pytest.Pytester) -> None:
    result = run(pytester, conftest=CONFTEST, test_user='''
        import pytest
        from celery_gcp import current_app

        @pytest.fixture(scope="session")
        def use_celery_app_trap():
            return True

        def test_trapped(celery_app):
            with pytest.raises(RuntimeError, match="Test depends on current_app"):
                current_app.conf
    ''')
    result.assert_outcomes(passed=1)


def test_the_plugin_is_not_loaded_unless_asked(pytester: pytest.Pytester) -> None:
    test = '''
        def test_app(celery_app):
            assert celery_app.conf.broker_url == "memory://"
    '''
    unasked = run(pytester, test_user=test)
    unasked.assert_outcomes(errors=1)
    unasked.stdout.fnmatch_lines(["*fixture 'celery_app' not found*"])
    asked = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "celery_gcp.contrib.pytest")
    asked.assert_outcomes(passed=1)
