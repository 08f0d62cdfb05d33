"""Sending one HTTP request on behalf of a task or a job, as Cloud Tasks / Scheduler do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import Clock
from .faults import Faults

if TYPE_CHECKING:
    import aiohttp

    from .oidc import TokenIssuer

__all__ = ["Attempt", "HttpSender"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one dispatch ended: the HTTP status (``None`` without a response) and why."""

    status: int | None
    reason: str
    latency: float

    @property
    def succeeded(self) -> bool:
        """Only a 2xx answer is success."""
        return self.status is not None and 200 <= self.status < 300


TOKEN_LIFETIME = 3600.0
TOKEN_RENEWAL = 300.0  # a new token once the one in use has less than this to live


class HttpSender:
    """Sends dispatch requests through one shared HTTP client, honouring faults and deadlines."""

    def __init__(self, faults: Faults, issuer: TokenIssuer, clock: Clock) -> None:
        self._faults = faults
        self._issuer = issuer
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        # (email, audience) -> (token, when it stops being handed out). As Google does, a token
        # is reused while it has a while to live: minting (an RSA signature) is not per request.
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def _token(self, email: str, audience: str) -> str:
        now = self._clock.now()
        kept = self._tokens.get((email, audience))
        if kept is not None and kept[1] > now:
            return kept[0]
        token = self._issuer.mint(email, audience, lifetime=TOKEN_LIFETIME)
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[(email, audience)] = (token, now + TOKEN_LIFETIME - TOKEN_RENEWAL)
        return token

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                   deadline: float, oidc: tuple[str, str] | None = None) -> Attempt:
        """Send one request; it counts as failed without a 2xx answer within ``deadline`` s.

        The deadline runs on the emulator's clock, so a test with a manual clock can let a hung
        request time out at once. ``oidc`` is ``(service_account_email, audience)``; an empty
        audience means the URL.
        """
        start = time.monotonic()
        out = dict(headers)
        if oidc is not None:
            email, audience = oidc
            out["Authorization"] = f"Bearer {self._token(email, audience or url)}"
        fault = self._faults.take_dispatch(url)
        if fault is not None and not fault.hang:
            return Attempt(fault.status, f"HTTP {fault.status} (injected)",
                           time.monotonic() - start)
        request: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.Event().wait() if fault is not None  # an injected hang never answers
            else self._request(method, url, out, body))
        timer = asyncio.ensure_future(self._clock.sleep_until(self._clock.now() + deadline))
        try:
            await asyncio.wait({request, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not request.done():
                request.cancel()
        latency = time.monotonic() - start
        if request.cancelled() or not request.done():
            return Attempt(None, f"DEADLINE_EXCEEDED after {deadline:g}s", latency)
        error = request.exception()
        if isinstance(error, OSError | _client_errors()):
            return Attempt(None, f"UNAVAILABLE: {type(error).__name__}: {error}", latency)
        if error is not None:
            raise error
        status: int = request.result()
        return Attempt(status, f"HTTP {status}", latency)

    async def _request(self, method: str, url: str, headers: dict[str, str],
                       body: bytes) -> int:
        async with self.session.request(method, url, headers=headers, data=body,
                                        allow_redirects=False) as response:
            await response.read()
            return response.status

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP client session, created on first use inside the running loop.

        aiohttp, not httpx: dispatching is the emulator's hot path, and aiohttp's client costs
        a fraction of the CPU per request (measured in benchmarks/emulator.py).
        """
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=None), trust_env=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP client session."""
        if self._session is not None:
            await self._session.close()


def _client_errors() -> type[Exception]:
    import aiohttp

    return aiohttp.ClientError
