"""The emulator's HTTP side: its OIDC signing keys (as Google publishes them) and a status view.

``/oauth2/v1/certs`` (kid -> PEM certificate) and ``/oauth2/v3/certs`` (JWKS) serve the keys in
the formats of Google's certificate endpoints, so google-auth verifies the emulator's tokens
unchanged when pointed there; ``/.well-known/openid-configuration`` names the issuer and the
JWKS, so any OIDC library can find the keys, and the key documents carry ``Expires`` as well as
``Cache-Control``, as Google's do. ``/status`` is a read-only JSON view of queues, tasks, jobs and
the latest dispatches, with ``pending`` (:meth:`EmulatorServer.pending`): 0 when idle.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from .server import EmulatorServer

__all__ = ["web_app"]

_TASKS_SHOWN = 100


def web_app(server: EmulatorServer) -> Starlette:
    """The HTTP app of ``server``."""
    from .oidc import CACHE_CONTROL, CACHE_SECONDS, ISSUER

    def headers() -> dict[str, str]:
        expires = formatdate(time.time() + CACHE_SECONDS, usegmt=True)
        return {"Cache-Control": CACHE_CONTROL, "Expires": expires}

    async def certs_v1(request: Request) -> JSONResponse:
        return JSONResponse(server.issuer.certs_v1(), headers=headers())

    async def certs_v3(request: Request) -> JSONResponse:
        return JSONResponse(server.issuer.jwks(), headers=headers())

    async def discovery(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "issuer": ISSUER, "jwks_uri": f"{base}/oauth2/v3/certs",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["aud", "azp", "email", "email_verified", "exp", "iat", "iss",
                                 "sub"],
        }, headers=headers())

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(status_view(server))

    return Starlette(routes=[
        Route("/oauth2/v1/certs", certs_v1),
        Route("/oauth2/v3/certs", certs_v3),
        Route("/.well-known/openid-configuration", discovery),
        Route("/status", status),
        Route("/", status),
    ])


def status_view(server: EmulatorServer) -> dict[str, Any]:
    """Queues (with their first tasks), jobs and recent dispatches, as plain JSON."""
    queues = []
    for runner in server.tasks.queues.values():
        queue = MessageToDict(runner.pb)
        entries = sorted(runner.tasks.values(), key=lambda e: e.due)[:_TASKS_SHOWN]
        queue["taskCount"] = len(runner.tasks)
        queue["tasks"] = []
        for e in entries:
            pb = e.pb
            queue["tasks"].append({"name": e.name, "scheduleTime": e.due,
                                   "running": bool(e.running),
                                   "dispatchCount": pb.dispatch_count,
                                   "responseCount": pb.response_count})
        queues.append(queue)
    jobs = []
    for job in server.scheduler.jobs.values():
        view = MessageToDict(job.pb)
        view["executionsInFlight"] = job.executions()
        jobs.append(view)
    return {"queues": queues, "jobs": jobs, "pending": server.pending(),
            "recentDispatches": list(server.core.recent)}
