"""app.conf: Celery's settings behaviour, old names, sources, and the Google Cloud defaults."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from celery_gcp import Celery
from celery_gcp.config import defaults
from celery_gcp.exceptions import ImproperlyConfigured


@pytest.fixture
def settings_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("proj_settings")
    module.CELERY_TASK_ALWAYS_EAGER = True  # type: ignore[attr-defined]
    module.CELERY_BROKER_URL = "memory://"  # type: ignore[attr-defined]
    module.DEBUG = True  # type: ignore[attr-defined]
    module.task_default_queue = "plain"  # type: ignore[attr-defined]
    sys.modules["proj_settings"] = module
    yield module
    del sys.modules["proj_settings"]


def test_attribute_and_item_access_and_update() -> None:
    app = Celery("proj", task_default_queue="q1")
    assert app.conf.task_default_queue == "q1"
    assert app.conf["task_default_queue"] == "q1"
    app.conf.update(task_default_queue="q2", timezone="Europe/Paris")
    assert app.conf.task_default_queue == "q2"
    app.conf.task_default_queue = "q3"
    assert app.conf["task_default_queue"] == "q3"
    app.conf["custom_setting"] = 1
    assert app.conf.custom_setting == 1
    assert "custom_setting" in app.conf
    with pytest.raises(AttributeError, match="no setting named 'nope'"):
        _ = app.conf.nope


def test_defaults_match_celery() -> None:
    conf = Celery("proj").conf
    assert conf.task_default_queue == "celery"
    assert conf.task_always_eager is False
    assert conf.task_acks_on_failure_or_timeout is True
    assert conf.enable_utc is True
    # A known Celery setting without meaning here still reads (as None), as in Celery.
    assert conf.worker_concurrency is None


def test_old_names_read_and_write_the_new_keys() -> None:
    app = Celery("proj", CELERY_ALWAYS_EAGER=True, CELERYBEAT_SCHEDULE={"a": {}})
    assert app.conf.task_always_eager is True
    assert app.conf.beat_schedule == {"a": {}}
    assert app.conf.CELERY_ALWAYS_EAGER is True
    app.conf.BROKER_URL = "memory://"
    assert app.conf.broker_url == "memory://"


def test_mixing_old_and_new_names_raises_with_renames() -> None:
    app = Celery("proj", CELERY_ALWAYS_EAGER=True, task_default_queue="q", timezone="UTC")
    with pytest.raises(ImproperlyConfigured) as info:
        _ = app.conf.task_default_queue  # the first read loads the settings
    assert "'CELERY_ALWAYS_EAGER'" in str(info.value)
    assert "'task_always_eager'" in str(info.value)


def test_same_setting_in_both_styles_is_not_a_conflict() -> None:
    app = Celery("proj", CELERY_ALWAYS_EAGER=True, task_always_eager=True)
    assert app.conf.task_always_eager is True


def test_config_from_object_mixing_in_a_module_raises() -> None:
    source = {"BROKER_URL": "memory://", "task_always_eager": True}
    app = Celery("proj")
    app.config_from_object(source)
    with pytest.raises(ImproperlyConfigured, match="BROKER_URL"):
        _ = app.conf.task_default_queue
    loaded = Celery("proj")
    _ = loaded.conf.task_default_queue
    with pytest.raises(ImproperlyConfigured, match="BROKER_URL"):
        loaded.config_from_object(source)


def test_mixing_across_a_source_and_the_app_arguments_raises() -> None:
    app = Celery("proj", task_default_queue="q", timezone="UTC")
    app.config_from_object({"CELERY_ALWAYS_EAGER": True})
    with pytest.raises(ImproperlyConfigured, match="CELERY_ALWAYS_EAGER"):
        _ = app.conf.task_default_queue


def test_sources_are_read_when_settings_are_first_used() -> None:
    class Lazy:
        reads = 0

        def __dir__(self) -> list[str]:
            Lazy.reads += 1
            return ["task_default_queue"]

        task_default_queue = "lazy"

    app = Celery("proj")
    app.config_from_object(Lazy())
    assert Lazy.reads == 0
    assert app.conf.task_default_queue == "lazy"


def test_config_from_object_namespace(settings_module: types.ModuleType) -> None:
    app = Celery("proj")
    app.config_from_object("proj_settings", namespace="CELERY")
    assert app.conf.task_always_eager is True
    assert app.conf.broker_url == "memory://"
    # Without the prefix, names are not read in namespace mode (Django's convention).
    assert app.conf.task_default_queue == "celery"
    assert "debug" not in app.conf


def test_config_from_object_module_attr_and_objects(settings_module: types.ModuleType) -> None:
    class Config:
        task_default_queue = "from-class"

    settings_module.Config = Config  # type: ignore[attr-defined]
    app = Celery("proj")
    app.config_from_object("proj_settings:Config")
    assert app.conf.task_default_queue == "from-class"
    app2 = Celery("proj")
    app2.config_from_object(Config)
    assert app2.conf.task_default_queue == "from-class"
    app3 = Celery("proj")
    app3.config_from_object(settings_module)
    assert app3.conf.task_default_queue == "plain"


def test_config_from_object_after_load_updates() -> None:
    app = Celery("proj")
    assert app.conf.task_default_queue == "celery"
    app.config_from_object({"task_default_queue": "later"})
    assert app.conf.task_default_queue == "later"


def test_config_from_object_missing_module() -> None:
    app = Celery("proj")
    app.config_from_object("no_such_settings_module")
    with pytest.raises(ImportError):
        _ = app.conf.task_default_queue
    quiet = Celery("proj")
    quiet.config_from_object("no_such_settings_module", silent=True)
    assert quiet.conf.task_default_queue == "celery"


def test_config_from_envvar(monkeypatch: pytest.MonkeyPatch,
                            settings_module: types.ModuleType) -> None:
    monkeypatch.setenv("PROJ_SETTINGS", "proj_settings")
    app = Celery("proj")
    assert app.config_from_envvar("PROJ_SETTINGS")
    assert app.conf.task_default_queue == "plain"
    with pytest.raises(ImproperlyConfigured, match="PROJ_MISSING"):
        app.config_from_envvar("PROJ_MISSING")


def test_gcp_defaults_from_environment() -> None:
    env = {
        "GOOGLE_CLOUD_PROJECT": "my-project",
        "CELERY_GCP_LOCATION": "europe-west1",
        "CELERY_GCP_TASK_BASE_URL": "https://worker.example",
        "CELERY_GCP_SERVICE_ACCOUNT": "tasks@my-project.iam.gserviceaccount.com",
    }
    conf = defaults(env)
    assert conf["gcp_project"] == "my-project"
    assert conf["gcp_location"] == "europe-west1"
    assert conf["task_base_url"] == "https://worker.example"
    assert conf["gcp_service_account"] == "tasks@my-project.iam.gserviceaccount.com"
    assert conf["task_endpoint_prefix"] == "/_tasks"
    assert conf["task_auth"] == "oidc"
    bare = defaults({})
    assert bare["gcp_project"] is None
    assert bare["gcp_location"] == "us-central1"
    assert defaults({"GCLOUD_PROJECT": "old"})["gcp_project"] == "old"


def test_on_after_configure_fires_once_at_first_access() -> None:
    app = Celery("proj")
    app.config_from_object({"task_default_queue": "q"})
    seen = []

    @app.on_after_configure.connect
    def setup(sender: Celery, **kwargs: object) -> None:
        seen.append(sender.conf.task_default_queue)

    assert seen == []
    _ = app.conf.timezone
    _ = app.conf.timezone
    assert seen == ["q"]


def test_namespace_given_to_the_app_is_the_default(settings_module: types.ModuleType) -> None:
    app = Celery("proj", namespace="CELERY")
    app.config_from_object("proj_settings")
    assert app.conf.task_always_eager is True


def test_strict_typing_false_is_every_tasks_default() -> None:
    app = Celery("proj", strict_typing=False, broker_url="memory://")

    @app.task
    def loose(x: int) -> None: ...

    @app.task(typing=True)
    def strict(x: int) -> None: ...

    assert loose.typing is False
    loose.delay("not an int")  # type: ignore[arg-type]
    assert strict.typing is True


def test_constructor_changes_and_config_source() -> None:
    app = Celery("proj", changes={"task_default_queue": "a"},
                 config_source={"timezone": "Europe/Paris"})
    assert app.conf.task_default_queue == "a"
    assert app.conf.timezone == "Europe/Paris"


def test_writes_before_the_first_read_are_kept_as_in_celery() -> None:
    app = Celery("proj")
    configured: list[str] = []

    conf = app.conf
    conf.update(task_default_queue="q")
    conf.timezone = "Europe/Paris"
    conf["task_serializer"] = "json"
    assert conf.setdefault("task_default_queue", "other") == "q"
    assert not app.configured  # nothing read yet: on_after_configure has not fired

    @app.on_after_configure.connect
    def setup(sender: Celery, source: Any, **kwargs: Any) -> None:
        configured.append(source.task_default_queue)

    assert app.conf.timezone == "Europe/Paris"  # the first read loads, then fires the signal
    assert configured == ["q"]
    conf.task_default_queue = "later"  # an early handle writes through once loaded
    assert app.conf.task_default_queue == "later"
