"""The task side of the app: ``@app.task``, registering tasks, finalizing the app (its
``imports`` / ``include`` and discovered modules) and ``add_periodic_task``."""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from .annotations import annotate
from .app_settings import AppSettings
from .contrib.django.fixup import no_apps_reason
from .exceptions import CeleryGcpWarning
from .registry import TaskRegistry, check_task_name, make_task
from .signals import Signal, import_modules
from .utils.imports import django_app_packages, import_related

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .app import Celery
    from .canvas import Signature
    from .contrib.django.fixup import DjangoFixup
    from .task import Task

__all__ = ["AppTasks"]

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("celery_gcp")


class AppTasks(AppSettings):
    """The task registry's side of the app, and ``beat_schedule`` entries added in code.

    A base of :class:`~celery_gcp.Celery`, which sets these attributes.
    """

    _tasks: TaskRegistry
    _finalized: bool
    _pending_autodiscover: list[tuple[Any, str]]
    _router: APIRouter | None
    _django: DjangoFixup | None
    on_after_finalize: Signal

    @overload
    def task(self, fun: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(self, *, bind: Literal[True], name: str | None = None,
             base: type[Task[Any, Any]] | None = None,
             **options: Any) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...
    @overload
    def task(self, *, bind: Literal[False] = False, name: str | None = None,
             base: type[Task[Any, Any]] | None = None,
             **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, *args: Any, **options: Any) -> Any:
        """Turn a function into a task: ``@app.task`` or ``@app.task(bind=True, ...)``."""
        if len(args) == 1 and callable(args[0]) and not options:
            return self._task_from_fun(args[0])
        if args:
            raise TypeError("argument 1 to @task() must be a callable")

        def decorate(fun: Callable[..., Any]) -> Task[Any, Any]:
            return self._task_from_fun(fun, **options)

        return decorate

    def _task_from_fun(self, fun: Callable[..., Any], name: str | None = None,
                       base: type[Task[Any, Any]] | None = None, bind: bool = False,
                       **options: Any) -> Task[Any, Any]:
        name = name or self.gen_task_name(fun.__name__, fun.__module__)
        if name in self._tasks:
            return self._tasks[name]
        task = make_task(cast("Celery", self), fun, name, base or self.Task, bind, options)
        self._register(task)
        return task

    def register_task(self, task: Task[Any, Any] | type[Task[Any, Any]]) -> Task[Any, Any]:
        """Register a class-based task (an instance, or a class to instantiate)."""
        if isinstance(task, type):
            task = task()
        cls = type(task)
        if not getattr(cls, "name", None):
            cls.name = self.gen_task_name(cls.__name__, cls.__module__)
        check_task_name(cls.name)
        cls.app = cast("Celery", self)
        self._register(task)
        return task

    def _register(self, task: Task[Any, Any]) -> None:
        self._tasks[task.name] = task
        if self._finalized:
            annotate(task, self.conf.task_annotations)
        if self._router is not None:
            from .worker.endpoints import add_task_route

            logger.warning(
                "task %r was registered after app.router was built; a FastAPI app that "
                "included the router earlier does not serve it. Import task modules first.",
                task.name,
            )
            add_task_route(self._router, cast("Celery", self), task)

    def gen_task_name(self, name: str, module: str) -> str:
        """Celery's default task name: ``module.name`` (``main.name`` for ``__main__``)."""
        if module == "__main__" and self.main:
            return f"{self.main}.{name}"
        return f"{module}.{name}" if module else name

    @property
    def tasks(self) -> TaskRegistry:
        """The registered tasks; reading it finalizes the app."""
        if not self._finalized:
            self.finalize(auto=True)
        return self._tasks

    def finalize(self, auto: bool = False) -> None:
        """Import ``imports``/``include`` and discovered modules; fire ``on_after_finalize``."""
        if self._finalized:
            return
        self._finalized = True
        if self._django is not None:
            self._django.setup()  # before any task module imports Django models
        conf = self.conf
        for module in (*(conf.imports or ()), *(conf.include or ())):
            importlib.import_module(module)
        self._run_autodiscover()
        for task in self._tasks.values():
            annotate(task, conf.task_annotations)
        if import_modules.receivers:
            import_modules.send(sender=self)
        self.on_after_finalize.send(sender=self)

    def autodiscover_tasks(
        self,
        packages: Iterable[str] | Callable[[], Iterable[str]] | None = None,
        related_name: str | None = "tasks",
        force: bool = False,
    ) -> None:
        """Import ``{package}.{related_name}`` for each package, at finalize (now if ``force``).

        ``packages`` may be a callable returning the list (Django: ``lambda:
        settings.INSTALLED_APPS``); with none given, Django's ``INSTALLED_APPS`` when Django is
        configured.
        """
        self._pending_autodiscover.append((packages, related_name or "tasks"))
        if force or self._finalized:
            self._run_autodiscover()

    def _run_autodiscover(self) -> None:
        pending, self._pending_autodiscover = self._pending_autodiscover, []
        for packages, related_name in pending:
            names = packages() if callable(packages) else packages
            if names is None:
                names = django_app_packages()
                if not names:
                    warnings.warn(f"autodiscover_tasks() found no Django apps: "
                                  f"{no_apps_reason()}", CeleryGcpWarning, stacklevel=3)
            for package in names:
                import_related(package, related_name)

    def add_periodic_task(self, schedule: Any, sig: Signature, args: Sequence[Any] = (),
                          kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                          **options: Any) -> str:
        """Add an entry to ``beat_schedule`` (as Celery does); returns its key.

        ``enabled=``, ``sub_minute=`` and ``job=`` set those keys of the entry (see
        :mod:`celery_gcp.beat`); other options are the entry's ``apply_async`` options.
        A crontab that can never run is refused here.

        Example::

            @app.on_after_configure.connect
            def setup(sender, **kwargs):
                sender.add_periodic_task(crontab(minute=0, hour=7), report.s("daily"))
        """
        from .schedules import crontab, maybe_schedule

        checked = maybe_schedule(schedule, app=self)  # stored as given, as Celery does
        if isinstance(checked, crontab):
            checked.cron()  # raises ScheduleError for one that can never run
        key = name or repr(sig)
        entry: dict[str, Any] = {
            "schedule": schedule, "task": sig.task, "args": tuple(sig.args or args),
            "kwargs": dict(sig.kwargs or kwargs or {}),
        }
        for own in ("enabled", "sub_minute", "job"):
            if own in options:
                entry[own] = options.pop(own)
        entry["options"] = {**sig.options, **options}
        schedule_table = dict(self.conf.beat_schedule or {})
        schedule_table[key] = entry
        self.conf.beat_schedule = schedule_table
        return key
