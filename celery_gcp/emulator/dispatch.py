"""Sending one HTTP request on behalf of a task or a job, as Cloud Tasks / Scheduler do.

A redirect (3xx with ``Location``) is followed within the attempt, as the services document
("not counted as a separate attempt"). A request that never reached the handler because the
kept-alive connection it went out on had just been closed by the server is sent once more on
a new connection, uncharged. A ``Retry-After`` on a 429 or 503 is read for the retry. Any
other failure, the emulator's own included, ends the attempt as failed: it is never lost.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from .clock import Clock, Expired
from .faults import Faults

if TYPE_CHECKING:
    import aiohttp

    from .oidc import TokenIssuer
    from .outgoing import Authorization

__all__ = ["Attempt", "HttpSender"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one dispatch ended: the HTTP status (``None`` without a response) and why;
    ``retry_after``: the seconds a 429 or 503 asked to wait (``Retry-After``)."""

    status: int | None
    reason: str
    latency: float
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        """Only a 2xx answer is success."""
        return self.status is not None and 200 <= self.status < 300


# A connection the server closed under the request: reset, or a broken pipe.
_RESET = frozenset({errno.ECONNRESET, errno.EPIPE})
TOKEN_LIFETIME = 3600.0
TOKEN_RENEWAL = 300.0  # a new token once the one in use has less than this to live


class HttpSender:
    """Sends dispatch requests through one shared HTTP client, honouring faults and deadlines."""

    def __init__(self, faults: Faults, issuer: TokenIssuer, clock: Clock) -> None:
        self._faults = faults
        self._issuer = issuer
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        # (kind, email, audience, scope) -> (token, when it stops being handed out). As Google
        # does, a token is reused while it has a while to live: minting (an RSA signature) is
        # not per request.
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    def _token(self, auth: Authorization, url: str) -> str:
        now = self._clock.now()
        key = (auth.kind, auth.email, auth.audience or url, auth.scope)
        kept = self._tokens.get(key)
        if kept is not None and kept[1] > now:
            return kept[0]
        if auth.kind == "oauth":
            token = self._issuer.mint_access(auth.email, auth.scope, lifetime=TOKEN_LIFETIME)
        else:
            token = self._issuer.mint(auth.email, auth.audience or url, lifetime=TOKEN_LIFETIME)
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[key] = (token, now + TOKEN_LIFETIME - TOKEN_RENEWAL)
        return token

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                   deadline: float, auth: Authorization | None = None) -> Attempt:
        """Send one request; it counts as failed without a 2xx answer within ``deadline`` s.

        The deadline runs on the emulator's clock, so a test with a manual clock can let a hung
        request time out at once. ``auth`` is the token to attach (an OIDC token whose empty
        audience means the URL, or an OAuth access token).
        """
        start = time.monotonic()
        out = dict(headers)
        if auth is not None:
            out["Authorization"] = f"Bearer {self._token(auth, url)}"
        fault = self._faults.take_dispatch(url)
        if fault is not None and not fault.hang:
            return Attempt(fault.status, f"HTTP {fault.status} (injected)",
                           time.monotonic() - start)
        work = _never() if fault is not None else self._request(method, url, out, body)
        try:
            status, retry_after = await self._clock.within(work, deadline)
        except Expired:
            return Attempt(None, f"DEADLINE_EXCEEDED after {deadline:g}s",
                           time.monotonic() - start)
        except (OSError, _client_errors()) as error:
            return Attempt(None, f"UNAVAILABLE: {type(error).__name__}: {error}",
                           time.monotonic() - start)
        except Exception as error:  # the emulator's own failure: still a failed attempt
            return Attempt(None, f"INTERNAL: {type(error).__name__}: {error}",
                           time.monotonic() - start)
        return Attempt(status, f"HTTP {status}", time.monotonic() - start, retry_after)

    async def _request(self, method: str, url: str, headers: dict[str, str],
                       body: bytes) -> tuple[int, float | None]:
        import aiohttp

        try:
            return await self._request_once(method, url, headers, body)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if isinstance(exc, aiohttp.ClientOSError) and exc.errno not in _RESET:
                raise
            # The server closed the kept-alive connection as the request went out on it
            # (uvicorn's keep-alive timeout): nothing reached the handler; a new connection.
            return await self._request_once(method, url, headers, body)

    async def _request_once(self, method: str, url: str, headers: dict[str, str],
                            body: bytes) -> tuple[int, float | None]:
        async with self.session.request(method, url, headers=headers, data=body,
                                        allow_redirects=True, max_redirects=10) as response:
            await response.read()
            retry_after = (_seconds(response.headers.get("Retry-After"), self._clock.now())
                           if response.status in (429, 503) else None)
            return response.status, retry_after

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


async def _never() -> tuple[int, float | None]:
    """An injected hang: a request that is never answered."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` value (seconds, or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _client_errors() -> type[Exception]:
    import aiohttp

    return aiohttp.ClientError
