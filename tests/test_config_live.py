"""config_from_object sources are read through, as in Celery: a value set on the settings
object after the app loaded (a Django test's ``settings.CELERY_TASK_ALWAYS_EAGER = True``) is
what the next ``.delay()`` sees."""

from __future__ import annotations

import types
from typing import Any

from django.conf import LazySettings

from celery_gcp import Celery, EagerResult
from celery_gcp.transport import MemoryTransport


def _app_with_add(source: Any, namespace: str | None = None) -> tuple[Celery, Any]:
    app = Celery("proj", set_as_current=False)
    app.config_from_object(source, namespace=namespace)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app, add


def _sent(app: Celery) -> int:
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    return len(transport.sent)


def _runs_eagerly(app: Celery, add: Any) -> bool:
    before = _sent(app)
    result = add.delay(2, 3)
    if isinstance(result, EagerResult):
        assert result.get() == 5
        assert _sent(app) == before
        return True
    assert _sent(app) == before + 1
    return False


def test_django_settings_set_after_the_app_loaded_make_tasks_eager() -> None:
    settings = LazySettings()
    settings.configure(CELERY_BROKER_URL="memory://", SECRET_KEY="test", INSTALLED_APPS=[])
    app, add = _app_with_add(settings, namespace="CELERY")
    assert not _runs_eagerly(app, add)  # loaded, and sending
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert _runs_eagerly(app, add)
    assert app.conf.task_always_eager is True
    del settings.CELERY_TASK_ALWAYS_EAGER
    assert not _runs_eagerly(app, add)


def test_a_module_and_a_class_are_read_through_with_old_names() -> None:
    module = types.ModuleType("live_settings")
    module.broker_url = "memory://"  # type: ignore[attr-defined]
    app, add = _app_with_add(module)
    assert not _runs_eagerly(app, add)
    module.task_always_eager = True  # type: ignore[attr-defined]
    assert _runs_eagerly(app, add)

    class Config:
        BROKER_URL = "memory://"
        CELERY_ALWAYS_EAGER = False

    app, add = _app_with_add(Config)
    assert not _runs_eagerly(app, add)
    Config.CELERY_ALWAYS_EAGER = True
    assert _runs_eagerly(app, add)
    assert app.conf.CELERY_ALWAYS_EAGER is True


def test_a_namespaced_source_reads_old_names_and_its_own_name_wins() -> None:
    class Settings:
        BROKER_URL = "memory://"
        CELERYBEAT_SCHEDULE = {"a": {}}
        CELERY_ALWAYS_EAGER = True
        CELERY_TASK_DEFAULT_QUEUE = "namespaced"
        CELERY_DEFAULT_QUEUE = "old"

    app = Celery("proj", set_as_current=False)
    app.config_from_object(Settings, namespace="CELERY")
    assert app.conf.broker_url == "memory://"
    assert app.conf.beat_schedule == {"a": {}}
    assert app.conf.task_always_eager is True
    assert app.conf.task_default_queue == "namespaced"


def test_a_dict_source_and_one_added_after_load_are_live_and_writes_win() -> None:
    source: dict[str, Any] = {"broker_url": "memory://"}
    app, add = _app_with_add(source)
    assert not _runs_eagerly(app, add)
    source["task_always_eager"] = True
    assert _runs_eagerly(app, add)
    app.conf.task_always_eager = False  # app.conf writes win over the source, as in Celery
    assert not _runs_eagerly(app, add)

    later: dict[str, Any] = {"task_default_queue": "later"}
    app.config_from_object(later)
    assert app.conf.task_default_queue == "later"
    later["task_default_queue"] = "changed"
    assert app.conf.task_default_queue == "changed"
    assert add.apply_async((1, 2)).id == app.transport.sent[-1].id  # type: ignore[attr-defined]
    assert app.transport.sent[-1].queue == "changed"  # type: ignore[attr-defined]


def test_the_version_moves_only_when_a_source_changes() -> None:
    module = types.ModuleType("versioned_settings")
    module.CELERY_TASK_DEFAULT_QUEUE = "q"  # type: ignore[attr-defined]
    app = Celery("proj", set_as_current=False)
    app.config_from_object(module, namespace="CELERY")
    conf = app.conf
    version = conf.version
    assert conf.version == version
    module.UNRELATED = 1  # type: ignore[attr-defined]  # read again, the same settings
    assert conf.version == version
    module.CELERY_TASK_DEFAULT_QUEUE = "r"  # type: ignore[attr-defined]
    assert conf.version == version + 1
    assert conf.task_default_queue == "r"


def test_an_object_with_computed_settings_is_read_through() -> None:
    class Computed:
        queue = "first"

        def __dir__(self) -> list[str]:
            return ["task_default_queue"]

        @property
        def task_default_queue(self) -> str:
            return Computed.queue

    app = Celery("proj", set_as_current=False)
    app.config_from_object(Computed())
    assert app.conf.task_default_queue == "first"
    Computed.queue = "second"
    assert app.conf.task_default_queue == "second"


def test_pickled_app_keeps_the_source_values_as_they_are() -> None:
    import pickle

    source: dict[str, Any] = {"task_default_queue": "q"}
    app = Celery("proj", set_as_current=False)
    app.config_from_object(source)
    _ = app.conf.task_default_queue
    source["task_default_queue"] = "now"
    copy = pickle.loads(pickle.dumps(app))
    assert copy.conf.task_default_queue == "now"
