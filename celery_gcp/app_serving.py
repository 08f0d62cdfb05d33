"""The worker side of the app: ``app.router`` (the task endpoints), ``app.TaskRoute``,
``app.verifier`` (who may call them) and ``app.asgi_app()`` (``celery-gcp worker``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from .app_settings import AppSettings

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from .app import Celery
    from .auth import Verifier
    from .fastapi.taskroute import TaskRoute

__all__ = ["AppServing"]


class AppServing(AppSettings):
    """What a worker serves of the app. A base of :class:`~celery_gcp.Celery`, which sets
    these attributes."""

    _router: APIRouter | None
    _task_route: type[TaskRoute] | None
    _verifier: Verifier | None

    @property
    def router(self) -> APIRouter:
        """The FastAPI router with one POST endpoint per task; include it in your app."""
        if self._router is None:
            from .utils.cloud_logging import structured

            app = cast("Celery", self)
            if structured(app):  # on Cloud Run: JSON lines for Cloud Logging from the start
                from .utils.cloud_logging import setup_logging

                setup_logging(app)
            from .worker.endpoints import build_router

            self._router = build_router(app)
        return self._router

    @property
    def TaskRoute(self) -> type[TaskRoute]:
        """A route class whose routes are tasks of this app::

            router = APIRouter(route_class=app.TaskRoute)

        Each endpoint gets ``.delay``, ``.apply_async`` and ``.s`` with this app's routing,
        retries, signals and outcome table (see :mod:`celery_gcp.fastapi.taskroute`).
        """
        if self._task_route is None:
            from .fastapi.taskroute import route_class

            self._task_route = route_class(cast("Celery", self))
        return self._task_route

    @property
    def verifier(self) -> Verifier:
        """Checks that task and beat requests come from Cloud Tasks / Cloud Scheduler."""
        if self._verifier is None:
            from .auth import Verifier

            self._verifier = Verifier(cast("Celery", self))
        return self._verifier

    def asgi_app(self, *, docs: bool | None = None) -> FastAPI:
        """A FastAPI app that serves only this app's task endpoints (``celery-gcp worker``).

        It serves ``/openapi.json``, ``/docs`` and ``/redoc`` only if ``docs`` (default: the
        ``worker_docs`` setting, off) is true: they list every task's name, arguments and
        docstring to anyone who can reach the URL, without a token.
        """
        from fastapi import FastAPI

        if docs is None:
            docs = bool(self.conf.get("worker_docs"))
        # Without an OpenAPI URL, FastAPI serves neither /docs nor /redoc.
        api = FastAPI(title=f"{self.main or 'celery_gcp'} tasks",
                      openapi_url="/openapi.json" if docs else None)
        api.include_router(self.router)
        return api
