"""The settings side of the app: ``app.conf`` and its sources, the app's time zone, and
pickling an app (by its settings, as Celery does)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .config import PendingSettings, Settings, defaults, detect_mixed_names
from .config_sources import Source
from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .app import Celery
    from .signals import Signal
    from .task import Task

__all__ = ["AppSettings"]


class AppSettings:
    """``app.conf`` as in Celery, the configuration sources, and ``app.timezone``.

    The base of :class:`~celery_gcp.Celery`, which sets these attributes.
    """

    main: str | None
    namespace: str | None
    strict_typing: bool
    _task_cls: Any
    Task: type[Task[Any, Any]]  # app.Task (declared here: AppTasks' annotations name the class)
    _preconf: dict[str, Any]
    _sources: list[tuple[Any, str | None, bool]]
    _conf: Settings | None
    on_configure: Signal
    on_after_configure: Signal

    @property
    def conf(self) -> Settings:
        """The settings, as in Celery: writes before the first read are kept; the first read
        loads every source and fires ``on_after_configure``."""
        if self._conf is None:
            return PendingSettings(self._preconf, self._load_conf, lambda: self._conf)
        return self._conf

    def _load_conf(self) -> Settings:
        if self._conf is None:
            self.on_configure.send(sender=self)
            sources: list[Source] = []
            # As Celery: one style of names across the sources and the app's arguments (a
            # namespaced source always uses the new names).
            names = set(self._preconf)
            for obj, namespace, silent in self._sources:
                source = Source(obj, namespace)
                try:
                    values = source.read()
                except ImportError:
                    if not silent:
                        raise
                    continue
                if not namespace:
                    names |= values.keys()
                sources.append(source)
            detect_mixed_names(names)
            # The sources stay live: app.conf reads through to them, as Celery's does.
            self._conf = Settings(self._preconf, defaults(), sources)
            self.on_after_configure.send(sender=self, source=self._conf)
        return self._conf

    @property
    def configured(self) -> bool:
        """Whether the settings were loaded."""
        return self._conf is not None

    def config_from_object(self, obj: Any, silent: bool = False, force: bool = False,
                           namespace: str | None = None) -> None:
        """Read settings from an object, module, dict or ``"module[:attr]"`` name.

        ``namespace="CELERY"`` reads Django-style ``CELERY_*`` names, as in Celery. As in
        Celery the source is read when the settings are first used (so a Django settings
        module is not touched at import time); afterwards, at once. As in Celery the object is
        kept and read through: a value set on it later (``settings.CELERY_TASK_ALWAYS_EAGER =
        True`` in a test) is what ``app.conf`` and the next send see. Writes to ``app.conf``
        win over it.
        """
        namespace = namespace if namespace is not None else self.namespace
        if self._conf is None:
            self._sources.append((obj, namespace, silent))
            return
        source = Source(obj, namespace)
        try:
            values = source.read()
        except ImportError:
            if not silent:
                raise
            return
        if not namespace:
            detect_mixed_names(set(values))
        self._conf.add_source(source)

    def config_from_envvar(self, variable_name: str, silent: bool = False,
                           force: bool = False) -> bool:
        """Read settings from the module named by an environment variable."""
        import os

        module_name = os.environ.get(variable_name)
        if not module_name:
            if silent:
                return False
            raise ImproperlyConfigured(
                f"environment variable {variable_name!r} is not set: set it to the dotted "
                "name of a settings module"
            )
        self.config_from_object(module_name, silent=silent)
        return True

    @property
    def timezone(self) -> tzinfo:
        """The app's time zone (``timezone`` setting; UTC by default).

        Assigning it (``app.timezone = "Europe/Paris"``, or a :class:`~zoneinfo.ZoneInfo`) sets
        the ``timezone`` setting, so naive ETAs, schedules and the Cloud Scheduler jobs of
        ``beat_schedule`` all follow it.
        """
        name = self.conf.timezone
        return ZoneInfo(name) if name else UTC

    @timezone.setter
    def timezone(self, value: str | tzinfo | None) -> None:
        self.conf.timezone = _zone_name(value)

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        return datetime.now(UTC)

    def aware(self, value: datetime) -> datetime:
        """``value`` with a time zone: a naive datetime is read in the app's time zone."""
        return value if value.tzinfo is not None else value.replace(tzinfo=self.timezone)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its name and settings, as in Celery: unpickling makes a new app (not the
        current one) with the same settings, whose only tasks are the shared ones."""
        if self._conf is not None:
            changes, sources = self._conf.changes, []
        else:
            changes, sources = dict(self._preconf), list(self._sources)
        return _unpickle_app, (type(self), {
            "main": self.main, "changes": changes, "task_cls": self._task_cls,
            "namespace": self.namespace, "strict_typing": self.strict_typing,
        }, sources)


def _zone_name(value: str | tzinfo | None) -> str | None:
    """The ``timezone`` setting for ``value``: a tz database name (``None``: UTC)."""
    if value is None:
        return None
    if isinstance(value, ZoneInfo):
        return value.key
    if value is UTC:
        return "UTC"
    name = value if isinstance(value, str) else getattr(value, "zone", None)  # pytz zones
    if not isinstance(name, str):
        raise ImproperlyConfigured(
            f"app.timezone = {value!r}: give a tz database name such as 'Europe/Paris' or a "
            "ZoneInfo; Cloud Scheduler runs periodic tasks in a named zone, not a fixed offset"
        )
    from . import cron  # Cloud Scheduler's names; croniter is loaded only here

    return "UTC" if cron.zone(name) is UTC else name


def _unpickle_app(cls: type[Celery], arguments: dict[str, Any],
                  sources: list[tuple[Any, str | None, bool]]) -> Celery:
    app = cls(set_as_current=False, **arguments)
    app._sources.extend(sources)
    return app
