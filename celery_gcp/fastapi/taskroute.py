"""``app.TaskRoute``: FastAPI routes that are Celery tasks of an app.

Example::

    app = Celery("proj", task_base_url="https://worker-abc.a.run.app")
    router = APIRouter(route_class=app.TaskRoute, prefix="/orders")

    @router.post("/{order_id}/charge")
    @task_options(autoretry_for=(PaymentDown,), max_retries=5, queue="payments")
    def charge(order_id: int, amount: Amount, db: Session = Depends(get_db)) -> Receipt: ...

    charge.delay(7, amount={"cents": 500})           # POST /orders/7/charge, via Cloud Tasks
    charge.apply_async((7,), {"amount": ...}, countdown=60)
    chain(charge.s(7, amount=...), notify.s())

Each route is registered as a task of the app (named ``module.function`` unless
``task_options(name=...)``), so the app's routing (``task_routes``, ``queue``), signals,
``autoretry_for`` / ``max_retries``, ``expires``, links and the worker's outcome table apply.
A call is sent as the route's own request (built as ``.delay()`` of the route builders builds
it); a delivery is checked like any task request (the caller's token, JSON body, metadata)
and runs as a task run. The same route still answers plain HTTP calls (without task
metadata) as an ordinary endpoint.

A retry re-sends the request that was delivered (path, query, header and cookie parameters,
body), so parameters of the route's dependencies survive it; a retry with new arguments
builds a new request from them.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from starlette.requests import Request

from ..exceptions import ImproperlyConfigured
from ..message import HttpTarget, Message
from ..platform import RELAY_HEADER
from ..task import Task
from ..worker.delivery import Admitted, DeliveryRoute, admitted, result_response
from ..worker.eager import refuse_eager_dependencies
from ..worker.outcomes import Outcome
from ..worker.run import RunResult, TaskRun, run_async, run_sync
from .builtroute import BuiltRoute, claimed_by, refuse_second_route

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["RouteTask", "TaskRoute", "task_options"]

F = TypeVar("F", bound=Callable[..., Any])
_OPTIONS = "__celery_gcp_task_options__"
_ENDPOINT = "__celery_gcp_endpoint__"
_RELAY = RELAY_HEADER.lower()
_METHODS = ("delay", "adelay", "apply_async", "aapply_async", "s", "si", "signature")


def task_options(**options: Any) -> Callable[[F], F]:
    """Celery task options of an ``app.TaskRoute`` endpoint (those of ``@app.task``: ``name``,
    ``queue``, ``max_retries``, ``autoretry_for``, ``retry_backoff``, ``expires``,
    ``time_limit``, ...). Put it below the route decorator."""

    def decorate(fn: F) -> F:
        setattr(fn, _OPTIONS, dict(options))
        return fn

    return decorate


# The run in progress: (task, args, kwargs, message), so a retry can re-send the request.
_RUNNING: contextvars.ContextVar[tuple[Task[..., Any], tuple[Any, ...], dict[str, Any],
                                       Message] | None] = contextvars.ContextVar(
    "celery_gcp_route_run", default=None)


# Set while a route's task runs eagerly (apply / task_always_eager).
_EAGER: contextvars.ContextVar[bool] = contextvars.ContextVar("celery_gcp_eager", default=False)


class RouteTask(Task[..., Any]):
    """The task of one ``app.TaskRoute`` route: calls are sent as the route's request."""

    served_by_route: ClassVar[bool] = True
    route: ClassVar[TaskRoute]

    def encode_call(self, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> tuple[bytes, HttpTarget | None]:
        """The route's request for this call (the delivered one, for a retry of it); in
        eager mode, the arguments by name, as any task's."""
        if _EAGER.get():
            # Before binding: a dependency's own parameters (a header) are sent with a route's
            # call, but are no task arguments; the reason it cannot run eagerly comes first.
            refuse_eager_dependencies(self)
            return super().encode_call(args, kwargs)
        running = _RUNNING.get()
        if running is not None and running[0] is self and running[1:3] == (
                tuple(args), dict(kwargs)):
            return running[3].body, running[3].target
        route = type(self).route
        path, headers, body = route.call.request(args, kwargs, self._names())
        # task_base_url is where the app is served: the whole path under it is sent.
        return body, HttpTarget(path="".join(route.places[0]) + path, method=route.call.method,
                                headers=headers, relay=True)

    def _names(self) -> list[str]:
        """The endpoint's parameters that are sent, in order (not FastAPI's dependencies)."""
        names: list[str] | None = self.__dict__.get("_sent_names")
        if names is None:
            names = self.__dict__["_sent_names"] = list(self.arguments.signature.parameters)
        return names

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        """Run the endpoint here as a task (``task_always_eager``); a route with FastAPI
        dependencies cannot run eagerly (they need a request)."""
        token = _EAGER.set(True)
        try:
            return super().apply(*args, **kwargs)
        finally:
            _EAGER.reset(token)

    async def aapply(self, *args: Any, **kwargs: Any) -> Any:
        """Async :meth:`apply`."""
        token = _EAGER.set(True)
        try:
            return await super().aapply(*args, **kwargs)
        finally:
            _EAGER.reset(token)


class TaskRoute(BuiltRoute, DeliveryRoute):
    """A route class whose endpoints are tasks of ``celery_app`` (use ``app.TaskRoute``)."""

    celery_app: ClassVar[Celery]

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        endpoint = getattr(endpoint, _ENDPOINT, endpoint)  # an include re-makes the route
        owner = claimed_by(endpoint, "delay")
        if owner is not None and not (isinstance(owner, TaskRoute)
                                      and owner.celery_app is self.celery_app):
            refuse_second_route(path, endpoint, "delay", owner)
        options = dict(getattr(endpoint, _OPTIONS, {}))
        app = self.celery_app
        name = options.get("name") or app.gen_task_name(endpoint.__name__, endpoint.__module__)
        existing = app.tasks.get(name)
        if existing is not None and getattr(type(existing), "__wrapped__", None) is not endpoint:
            raise ImproperlyConfigured(
                f"route {path}: the task name {name!r} is taken by another task; give this "
                "endpoint its own with @task_options(name=...)")
        task = app._task_from_fun(endpoint, base=RouteTask, **options)
        assert isinstance(task, RouteTask)
        self.task = task
        self.delivered_task = task
        super().__init__(path, _runner(task, endpoint), **kwargs)
        type(task).route = self
        for method in _METHODS:
            setattr(endpoint, method, getattr(task, method))
        setattr(endpoint, "name", task.name)  # noqa: B010 - as Celery's task.name

    def is_delivery(self, request: Request) -> bool:
        """A request with task metadata; a plain HTTP call of the route is not one."""
        headers = request.headers
        return "x-celery-task-id" in headers or _RELAY in headers

    def delivered_target(self, request: Request) -> HttpTarget:
        """The delivered request as a target, to send again for a retry or a relay hop."""
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw.decode("latin-1")
        if request.scope.get("query_string"):
            path += "?" + request.scope["query_string"].decode("latin-1")
        call = self.task.route.call
        names: Sequence[str] = [p.wire for p in call.params.values() if p.kind == "header"]
        headers = {n: request.headers[n] for n in names if n in request.headers}
        if "cookie" in request.headers and any(p.kind == "cookie" for p in call.params.values()):
            headers["Cookie"] = request.headers["cookie"]
        return HttpTarget(path=path, method=request.method, headers=headers, relay=True)


def _runner(task: RouteTask, endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The function FastAPI calls for the route: the endpoint, run as a task run when the
    request is a task delivery. It has the endpoint's signature, so FastAPI resolves the same
    parameters."""

    def split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        deps = {p.name for p in task.arguments.dependencies}
        return ({k: v for k, v in params.items() if k not in deps},
                {k: v for k, v in params.items() if k in deps})

    def start(delivery: Admitted, params: dict[str, Any]) -> tuple[TaskRun, Any]:
        values, deps = split(params)
        run = TaskRun(task, delivery.message, values, deps,
                      cloudtasks=delivery.cloudtasks).announce()
        token = _RUNNING.set((task, run.args, run.kwargs, delivery.message))
        return run, token

    if inspect.iscoroutinefunction(endpoint):
        @functools.wraps(endpoint)
        async def arun(**params: Any) -> Any:
            delivery = admitted()
            if delivery is None:
                return await endpoint(**params)
            run, token = start(delivery, params)
            try:
                return _finish(task, delivery.message, await run_async(run))
            finally:
                _RUNNING.reset(token)

        setattr(arun, _ENDPOINT, endpoint)
        return arun

    @functools.wraps(endpoint)
    def srun(**params: Any) -> Any:
        delivery = admitted()
        if delivery is None:
            return endpoint(**params)
        run, token = start(delivery, params)
        try:
            return _finish(task, delivery.message, run_sync(run))
        finally:
            _RUNNING.reset(token)

    setattr(srun, _ENDPOINT, endpoint)
    return srun


def _finish(task: RouteTask, message: Message, result: RunResult) -> Any:
    """The return value on success (FastAPI renders it with the route's response model),
    else the outcome table's answer."""
    if result.outcome is Outcome.SUCCESS:
        return result.retval
    return result_response(task, message, result)


def route_class(app: Celery) -> type[TaskRoute]:
    """The ``TaskRoute`` class of ``app`` (``app.TaskRoute``)."""
    return type("TaskRoute", (TaskRoute,), {"celery_app": app, "__module__": __name__})
