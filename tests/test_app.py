"""The app: task declaration, names, options, shared tasks, discovery, finalize, transports."""

from __future__ import annotations

from typing import Any

import pytest

from celery_gcp import Celery, Task, current_app, get_current_app, shared_task
from celery_gcp.exceptions import (
    CeleryGcpWarning,
    ImproperlyConfigured,
    NotRegistered,
)
from celery_gcp.transport import MemoryTransport


def test_task_with_and_without_parentheses(app: Celery) -> None:
    @app.task
    def plain(x: int) -> int:
        return x

    @app.task()
    def empty_parens(x: int) -> int:
        return x

    @app.task(name="custom.name")
    def named(x: int) -> int:
        return x

    assert plain.name == "tests.test_app.plain"
    assert empty_parens.name == "tests.test_app.empty_parens"
    assert named.name == "custom.name"
    assert app.tasks["custom.name"] is named
    assert plain(3) == 3
    assert isinstance(plain, Task)


def test_main_module_names_use_app_main(app: Celery) -> None:
    assert app.gen_task_name("add", "__main__") == "proj.add"
    assert app.gen_task_name("add", "pkg.tasks") == "pkg.tasks.add"


def test_registering_the_same_name_twice_returns_the_first(app: Celery) -> None:
    @app.task(name="dup")
    def first() -> int:
        return 1

    @app.task(name="dup")
    def second() -> int:
        return 2

    assert second is first


def test_positional_non_callable_is_a_type_error(app: Celery) -> None:
    with pytest.raises(TypeError, match="must be a callable"):
        app.task("name")


def test_task_name_must_fit_a_path_segment(app: Celery) -> None:
    with pytest.raises(ImproperlyConfigured, match="endpoint path segment"):
        @app.task(name="a/b")
        def bad() -> None: ...


def test_default_options_match_celery(app: Celery) -> None:
    @app.task
    def t() -> None: ...

    assert t.max_retries == 3
    assert t.default_retry_delay == 180
    assert t.retry_backoff is False
    assert t.retry_backoff_max == 600
    assert t.retry_jitter is True
    assert t.typing is True
    assert t.autoretry_for == ()


def test_options_and_unknown_keywords_become_attributes(app: Celery) -> None:
    @app.task(max_retries=None, default_retry_delay=5, autoretry_for=[KeyError],
              rate_limit="10/s", ignore_result=True, acks_late=True, custom_flag="yes")
    def t() -> None: ...

    assert t.max_retries is None
    assert t.default_retry_delay == 5
    assert t.autoretry_for == (KeyError,)
    assert t.rate_limit == "10/s"
    assert t.ignore_result is True
    assert t.acks_late is True
    assert t.custom_flag == "yes"  # type: ignore[attr-defined]


def test_soft_time_limit_is_accepted_with_a_warning(app: Celery) -> None:
    with pytest.warns(CeleryGcpWarning, match="soft_time_limit"):
        @app.task(soft_time_limit=10)
        def t() -> None: ...
    assert t.soft_time_limit == 10


def test_bind_gives_self(app: Celery) -> None:
    @app.task(bind=True)
    def whoami(self: Task[Any, Any]) -> str:
        return self.name

    assert whoami() == "tests.test_app.whoami"


def test_base_and_task_cls(app: Celery) -> None:
    class Base(Task[Any, Any]):
        flavour = "base"

    @app.task(base=Base)
    def t() -> str:
        return "x"

    assert isinstance(t, Base)
    assert t.flavour == "base"  # type: ignore[attr-defined]

    other = Celery("other", task_cls=Base, broker_url="memory://")

    @other.task
    def u() -> None: ...

    assert isinstance(u, Base)
    assert u.app is other


def test_task_cls_by_name() -> None:
    app = Celery("p", task_cls="celery_gcp.task:Task")
    assert issubclass(app.Task, Task)


def test_class_based_task(app: Celery) -> None:
    class Multiply(app.Task):  # type: ignore[name-defined,misc]
        name = "multiply"

        def run(self, x: int, y: int) -> int:
            return x * y

    task = app.register_task(Multiply())
    assert app.tasks["multiply"] is task
    assert task(3, 4) == 12
    task.delay(2, 5)
    assert app.transport.sent[-1].body == b'{"x":2,"y":5}'  # type: ignore[attr-defined]


def test_missing_task_raises_not_registered(app: Celery) -> None:
    with pytest.raises(NotRegistered):
        app.tasks["nope"]
    with pytest.raises(KeyError):
        app.tasks["nope"]


def test_shared_task_is_bound_to_every_app() -> None:
    @shared_task
    def shared_double(x: int) -> int:
        return x * 2

    first = Celery("first", broker_url="memory://")
    second = Celery("second", broker_url="memory://")
    name = "tests.test_app.shared_double"
    assert name in first.tasks
    assert name in second.tasks
    assert first.tasks[name] is not second.tasks[name]
    # The shared object resolves to the current app's task (the last created).
    assert get_current_app() is second
    shared_double.delay(4)
    assert second.transport.sent[0].task == name  # type: ignore[attr-defined]
    assert first.transport.sent == []  # type: ignore[attr-defined]
    assert shared_double(5) == 10


def test_shared_task_with_options() -> None:
    @shared_task(bind=True, name="shared.bound", max_retries=7)
    def bound(self: Task[Any, Any]) -> int | None:
        return self.max_retries

    app = Celery("x")
    assert app.tasks["shared.bound"].max_retries == 7
    assert bound() == 7


def test_current_app_proxy() -> None:
    app = Celery("current-one")
    assert current_app.main == "current-one"
    Celery("not-current", set_as_current=False)
    assert get_current_app() is app


def test_autodiscover_tasks_imports_related_modules() -> None:
    app = Celery("disc", broker_url="memory://")
    app.autodiscover_tasks(["tests.discover_pkg.app_one", "tests.discover_pkg.app_two"])
    assert "tests.discover_pkg.app_one.tasks.discovered" in app.tasks


def test_autodiscover_with_a_callable_and_force() -> None:
    app = Celery("disc2", broker_url="memory://")
    app.autodiscover_tasks(lambda: ["tests.discover_pkg.app_one"], force=True)
    assert "tests.discover_pkg.app_one.tasks.discovered" in app._tasks


def test_autodiscover_reraises_errors_inside_a_tasks_module(tmp_path: Any,
                                                            monkeypatch: Any) -> None:
    package = tmp_path / "broken_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("import module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = Celery("disc3")
    with pytest.raises(ModuleNotFoundError, match="module_that_does_not_exist"):
        app.autodiscover_tasks(["broken_pkg"], force=True)


def test_include_and_imports_are_imported_at_finalize() -> None:
    app = Celery("inc", include=["tests.discover_pkg.imported_tasks"])
    assert "imported.via_setting" in app.tasks
    app2 = Celery("imp", imports=["tests.discover_pkg.imported_tasks"])
    assert "imported.via_setting" in app2.tasks


def test_on_after_finalize_fires_and_can_add_periodic_tasks() -> None:
    app = Celery("fin", broker_url="memory://")

    @app.task
    def ping() -> str:
        return "pong"

    @app.on_after_finalize.connect
    def setup(sender: Celery, **kwargs: Any) -> None:
        sender.add_periodic_task(10.0, ping.s(), name="ping every 10")

    assert app.conf.beat_schedule == {}
    app.finalize()
    entry = app.conf.beat_schedule["ping every 10"]
    assert entry["task"] == ping.name
    assert entry["schedule"] == 10.0


def test_memory_broker_selects_the_recording_transport(app: Celery) -> None:
    assert isinstance(app.transport, MemoryTransport)


def test_leftover_broker_url_is_ignored_with_one_warning() -> None:
    app = Celery("proj", broker="redis://user:secret@localhost:6379/0", task_always_eager=True)

    @app.task
    def t() -> None: ...

    with pytest.warns(CeleryGcpWarning, match="is ignored") as record:
        transport = app.transport
        assert app.transport is transport
    assert len(record) == 1
    assert "secret" not in str(record[0].message)
    # Eager mode still runs: the ignored broker is never an error.
    assert t.delay().state == "SUCCESS"


def test_sending_without_project_or_url_says_what_to_set(monkeypatch: Any) -> None:
    for variable in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUD_TASKS_EMULATOR_HOST",
                     "CELERY_GCP_TASK_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    app = Celery("proj")

    @app.task
    def t() -> None: ...

    with pytest.raises(ImproperlyConfigured, match="GOOGLE_CLOUD_PROJECT") as info:
        t.delay()
    assert "CLOUD_TASKS_EMULATOR_HOST" in str(info.value)
    app.conf.gcp_project = "my-project"
    with pytest.raises(ImproperlyConfigured, match="task_base_url"):
        t.delay()


def test_time_limit_outside_the_dispatch_deadline_range_is_refused(app: Celery) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"time_limit=5 .*15 s to 30 min"):
        @app.task(time_limit=5)
        def short() -> None: ...
    with pytest.raises(ImproperlyConfigured, match="time_limit=3600"):
        @app.task(time_limit=3600)
        def long() -> None: ...

    @app.task(time_limit=900)
    def fine() -> None: ...

    assert fine.time_limit == 900
