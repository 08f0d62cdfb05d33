"""Helpers for tests: deliver recorded messages to a worker over HTTP, as Cloud Tasks would.

Example::

    app = Celery("proj", broker_url="memory://")
    api = FastAPI(); api.include_router(app.router)

    add.delay(2, 3)
    with httpx.Client(base_url="http://127.0.0.1:8000") as client:
        for message in app.transport.pop():
            response = deliver(client, app, message)
            assert response.status_code == 200
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from . import gcp
from .utils.serving import GRACE, stoppable_server

if TYPE_CHECKING:
    from .app import Celery
    from .emulator.oidc import TokenIssuer
    from .message import Message

__all__ = ["adeliver", "auth_headers", "deliver", "drain", "serve", "task_path",
           "trusted_issuer"]


def task_path(app: Celery, task_name: str) -> str:
    """The path of a task's endpoint: ``{task_endpoint_prefix}/{name}``."""
    return f"{app.conf.task_endpoint_prefix.rstrip('/')}/{task_name}"


def trusted_issuer(app: Celery) -> TokenIssuer:
    """A new signing key that ``app``'s worker trusts, for tests of a worker that verifies
    callers (``task_auth="oidc"``): its key is installed in the app's verifier directly, for
    the certificate URL configured now. Sign requests with :func:`auth_headers`.
    """
    from .auth import keys_from_certs
    from .emulator.oidc import TokenIssuer

    issuer = TokenIssuer(clock=lambda: app.now().timestamp())
    app.verifier.cache().install(keys_from_certs(issuer.certs_v1()))
    return issuer


def auth_headers(app: Celery, issuer: TokenIssuer, path: str,
                 email: str | None = None) -> dict[str, str]:
    """``Authorization`` as Cloud Tasks sends it for ``path``: a token of ``issuer`` for the
    task URL (``task_base_url`` + path, or ``task_oidc_audience``) and ``email`` (default: the
    app's ``gcp_service_account``)."""
    audience = app.conf.task_oidc_audience or f"{gcp.base_url(app)}{path}"
    token = issuer.mint(email or app.conf.gcp_service_account, audience)
    return {"Authorization": f"Bearer {token}"}


def _request(app: Celery, message: Message,
             issuer: TokenIssuer | None) -> tuple[str, str, dict[str, str]]:
    """The method, path (with query) and headers of a message's delivery."""
    method, path = "POST", task_path(app, message.task)
    if message.target is not None:  # a route's message: its own method and path
        method, path = message.target.method, message.target.path
    headers = message.http_headers()
    if issuer is not None:
        headers.update(auth_headers(app, issuer, gcp.routed_path(path)))
    return method, path, headers


def deliver(client: httpx.Client, app: Celery, message: Message,
            issuer: TokenIssuer | None = None) -> httpx.Response:
    """Send ``message`` to its task endpoint (or its route), with the body and headers a
    worker receives (signed by ``issuer``, from :func:`trusted_issuer`, when the worker
    verifies callers)."""
    method, path, headers = _request(app, message, issuer)
    return client.request(method, path, content=message.body, headers=headers)


async def adeliver(client: httpx.AsyncClient, app: Celery, message: Message,
                   issuer: TokenIssuer | None = None) -> httpx.Response:
    """Async :func:`deliver`."""
    method, path, headers = _request(app, message, issuer)
    return await client.request(method, path, content=message.body, headers=headers)


def drain(client: httpx.Client, app: Celery, *, honour_eta: bool = False,
          timeout: float = 60.0, issuer: TokenIssuer | None = None,
          ) -> list[tuple[Message, httpx.Response]]:
    """Deliver the app's recorded messages, and those their runs send, until none is left.

    With ``honour_eta`` each message waits for its ETA, as Cloud Tasks would make it wait;
    a message due later than ``timeout`` seconds from the start raises ``TimeoutError``.
    """
    from .transport import MemoryTransport

    transport = app.transport
    if not isinstance(transport, MemoryTransport):
        raise TypeError("drain() needs the memory transport: broker_url='memory://'")
    deadline = time.monotonic() + timeout
    delivered: list[tuple[Message, httpx.Response]] = []
    pending: list[Message] = []
    while True:
        pending += transport.pop()
        if not pending:
            return delivered
        pending.sort(key=lambda m: m.eta.timestamp() if m.eta else 0.0)
        message = pending.pop(0)
        if honour_eta and message.eta is not None:
            wait = message.eta.timestamp() - time.time()
            if time.monotonic() + wait > deadline:
                raise TimeoutError(f"task {message.task}[{message.id}] is due after the timeout")
            time.sleep(max(0.0, wait))  # waiting for the ETA is the point here
        delivered.append((message, deliver(client, app, message, issuer)))


@contextmanager
def serve(asgi_app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn (on a free loopback port by default); yields its URL.

    The socket is bound and listening before the server thread starts, so requests made right
    away wait in the accept queue instead of failing. On exit the server stops at once: idle
    kept-alive connections are closed, requests in flight finish (for up to 10 s), and the
    thread is joined.
    """
    import uvicorn

    # IPPROTO_TCP, so that asyncio turns Nagle off on accepted connections: with proto 0 it
    # does not, and every answer on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = stoppable_server(uvicorn.Config(asgi_app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        thread.join(timeout=GRACE + 5)
        sock.close()
