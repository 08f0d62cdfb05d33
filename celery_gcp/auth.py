"""Caller verification: only Cloud Tasks and Cloud Scheduler may run a task.

Both attach ``Authorization: Bearer <ID token>`` when the task or job names a service account
(``gcp_service_account``). With ``task_auth="oidc"`` (the default) every task and beat request
must carry such a token, and it must be:

* signed (RS256) by a key of ``task_oidc_certs_url`` (Google's, or the emulator's), which are
  fetched once and kept as long as their ``Cache-Control: max-age`` says, never per request;
* issued by ``accounts.google.com``, unexpired (by the app's clock, 60 s of leeway);
* for the audience ``task_oidc_audience``, or else ``task_base_url`` + the request's path: the
  URL the sender signs for. Never the request's ``Host`` or forwarded headers, which a caller
  controls;
* for a verified ``email`` in ``task_oidc_allowed_emails`` (default: ``gcp_service_account``).

A missing or invalid token is answered 401, an identity that is not allowed 403; neither the
token nor its claims are logged. ``task_auth="none"`` turns this off, for a private Cloud Run
service that already requires IAM (a warning is logged when the router is built).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["GOOGLE_CERTS_URL", "AuthError", "Caller", "KeyCache", "Verifier", "keys_from_certs"]

logger = logging.getLogger("celery_gcp.auth")

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
LEEWAY = 60.0  # seconds of clock skew allowed on exp / iat
# A key id the cache does not know makes it fetch again, at most this often (a caller
# choosing random key ids must not make every request fetch).
REFETCH_INTERVAL = 30.0
DEFAULT_MAX_AGE = 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")
_MAX_TOKEN = 8192


class AuthError(Exception):
    """A request that may not run a task: ``status`` 401 (no valid token) or 403 (not
    allowed). ``reason`` is safe to log and to answer: it holds nothing of the token."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def keys_from_certs(document: Mapping[str, str]) -> dict[str, Any]:
    """Public keys by key id, from a v1 certificate document ``{kid: PEM certificate}``."""
    from cryptography import x509

    return {kid: x509.load_pem_x509_certificate(pem.encode()).public_key()
            for kid, pem in document.items()}


class KeyCache:
    """The signing keys of one certificate URL, fetched when missing or expired."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: dict[str, Any] = {}
        self.expires = 0.0  # monotonic
        self.fetched = -REFETCH_INTERVAL
        self._lock = asyncio.Lock()

    def install(self, keys: Mapping[str, Any], max_age: float = DEFAULT_MAX_AGE) -> None:
        """Use ``keys`` (kid -> public key) for ``max_age`` seconds (tests, pre-warming)."""
        self.keys = dict(keys)
        self.expires = time.monotonic() + max_age
        self.fetched = time.monotonic()

    async def key(self, kid: str) -> Any | None:
        """The public key ``kid``, fetching the document if it is stale or lacks ``kid``."""
        now = time.monotonic()
        key = self.keys.get(kid) if now < self.expires else None
        if key is not None:
            return key
        async with self._lock:  # one fetch for every request waiting on it
            now = time.monotonic()
            stale = now >= self.expires
            if stale or (kid not in self.keys and now - self.fetched >= REFETCH_INTERVAL):
                await self._fetch()
        return self.keys.get(kid)

    async def _fetch(self) -> None:
        import httpx

        self.fetched = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                keys = keys_from_certs(response.json())
        except Exception as exc:
            # Keep the keys we had: better than refusing every caller while Google is slow.
            logger.error("could not fetch the token signing keys from %s: %r", self.url, exc)
            return
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        max_age = float(match.group(1)) if match else DEFAULT_MAX_AGE
        self.install(keys, max_age)


@dataclass(frozen=True)
class Caller:
    """Who a verified request came from."""

    email: str
    subject: str


class Verifier:
    """Checks the ``Authorization`` header of task and beat requests for one app."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._caches: dict[str, KeyCache] = {}

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a token (``task_auth``)."""
        mode = str(self.app.conf.get("task_auth") or "oidc").lower()
        if mode not in ("oidc", "none"):
            raise ImproperlyConfigured(f"task_auth={mode!r}: use 'oidc' (the default) or 'none'")
        return mode == "oidc"

    def cache(self) -> KeyCache:
        """The key cache of the configured certificate URL."""
        url = str(self.app.conf.get("task_oidc_certs_url") or GOOGLE_CERTS_URL)
        cache = self._caches.get(url)
        if cache is None:
            cache = self._caches[url] = KeyCache(url)
        return cache

    def allowed(self) -> frozenset[str]:
        """The service accounts whose tokens may run tasks."""
        conf = self.app.conf
        emails = conf.get("task_oidc_allowed_emails")
        if emails is None:
            emails = [conf.gcp_service_account] if conf.gcp_service_account else []
        if isinstance(emails, str):
            emails = [emails]
        return frozenset(emails)

    def audience(self, path: str) -> str:
        """The audience a token for ``path`` must have."""
        conf = self.app.conf
        if conf.task_oidc_audience:
            return str(conf.task_oidc_audience)
        if not conf.task_base_url:
            raise AuthError(401, "this worker cannot check token audiences: set task_base_url "
                                 "(or task_oidc_audience)")
        return f"{str(conf.task_base_url).rstrip('/')}{path}"

    def problems(self) -> list[str]:
        """What keeps verification from working, for a startup message."""
        if not self.enabled:
            return []
        if not self.allowed():
            return ["no caller is allowed: set gcp_service_account (the identity Cloud Tasks "
                    "and Cloud Scheduler sign as) or task_oidc_allowed_emails"]
        return []

    async def verify(self, authorization: str | None, path: str) -> Caller:
        """The caller of a request with this ``Authorization`` header for ``path``; raises
        :class:`AuthError`."""
        import jwt

        if not authorization or not authorization[:7].lower() == "bearer ":
            raise AuthError(401, "missing bearer token (Authorization: Bearer <OIDC token>)")
        token = authorization[7:].strip()
        if len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise AuthError(401, "malformed token")
        try:
            header = json.loads(_b64decode(token.split(".", 1)[0]))
        except ValueError:
            raise AuthError(401, "malformed token") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(
                header.get("kid"), str):
            raise AuthError(401, "token is not an RS256 token with a key id")
        key = await self.cache().key(header["kid"])
        if key is None:
            raise AuthError(401, "token signed by an unknown key")
        audience = self.audience(path)
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=audience,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["exp", "iat", "iss", "aud"]})
        except jwt.InvalidAudienceError:
            raise AuthError(401, "token is for another audience") from None
        except jwt.PyJWTError:
            raise AuthError(401, "invalid token (signature or claims)") from None
        now = self.app.now().timestamp()  # the app's clock, which tests may control
        if not isinstance(claims["exp"], int | float) or claims["exp"] + LEEWAY < now:
            raise AuthError(401, "token expired")
        if not isinstance(claims["iat"], int | float) or claims["iat"] - LEEWAY > now:
            raise AuthError(401, "token issued in the future")
        if claims["iss"] not in ISSUERS:
            raise AuthError(401, "token not issued by Google")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise AuthError(403, "token has no verified email")
        if email not in self.allowed():
            raise AuthError(403, "the caller's identity is not allowed to run tasks")
        return Caller(email, str(claims.get("sub", "")))


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
