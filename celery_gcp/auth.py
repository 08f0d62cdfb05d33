"""Caller verification: only Cloud Tasks and Cloud Scheduler may run a task.

Both attach ``Authorization: Bearer <ID token>`` when the task or job names a service account
(``gcp_service_account``). With ``task_auth="oidc"`` (the default) every task and beat request
must carry such a token, and it must be:

* signed (RS256) by a key of ``task_oidc_certs_url`` (Google's, or the emulator's), which are
  fetched once and kept as long as their ``Cache-Control: max-age`` says, never per request
  (one fetch at a time; while fetches fail, the last keys are kept for an hour past expiry);
* issued by ``accounts.google.com``, unexpired and not before its ``nbf`` (by the app's
  clock, 60 s of leeway);
* for the audience ``task_oidc_audience``, or else ``task_base_url`` + the request's path: the
  URL the sender signs for. Never the request's ``Host`` or forwarded headers, which a caller
  controls;
* for a verified ``email`` in ``task_oidc_allowed_emails`` (default: ``gcp_service_account``).

A missing, malformed or invalid token is answered 401, an identity that is not allowed 403,
and a request that cannot be checked for want of keys 503; neither the token nor its claims
are logged. ``task_auth="none"`` turns this off, for a private Cloud Run
service that already requires IAM (a warning is logged when the router is built).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import functools
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .exceptions import AuthError, ImproperlyConfigured

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["GOOGLE_CERTS_URL", "AuthError", "Caller", "KeyCache", "Verifier", "keys_from_certs"]

logger = logging.getLogger("celery_gcp.auth")

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
LEEWAY = 60.0  # seconds of clock skew allowed on exp / iat / nbf
# A key id the cache does not know, or a certs URL that fails, makes it fetch again at most
# this often (a caller choosing random key ids must not make every request fetch).
REFETCH_INTERVAL = 30.0
#: The longest a request waits for a fetch of the keys in flight (counted from its start).
FETCH_WAIT = 5.0
#: The longest a fetch of the keys may take.
FETCH_TIMEOUT = 10.0
#: How long past their expiry the keys fetched last stay in use while fetches fail.
STALE_GRACE = 3600.0
DEFAULT_MAX_AGE = 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")
_MAX_TOKEN = 8192
_SIGNED_KEPT = 1024
# Three base64url parts (no padding): urlsafe_b64decode alone would skip other characters.
_COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def keys_from_certs(document: Mapping[str, str]) -> dict[str, Any]:
    """Public keys by key id, from a v1 certificate document ``{kid: PEM certificate}``."""
    from cryptography import x509

    return {kid: x509.load_pem_x509_certificate(pem.encode()).public_key()
            for kid, pem in document.items()}


class KeyCache:
    """The signing keys of one certificate URL.

    The document is fetched when it is missing or past its ``max-age``, and when a token names
    a key id it lacks (at most every :data:`REFETCH_INTERVAL`). One fetch is in flight at a
    time, and a request waits for it at most :data:`FETCH_WAIT` seconds from its start. While
    fetches fail (one every :data:`REFETCH_INTERVAL`), the keys fetched last stay in use for
    :data:`STALE_GRACE` seconds past their expiry; with no usable keys, requests get 503.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: dict[str, Any] = {}
        self.expires = 0.0  # monotonic
        self.fetched = -REFETCH_INTERVAL  # when the last fetch started (monotonic)
        self.failing = False  # whether the last fetch failed
        self._fetch_task: asyncio.Task[None] | None = None

    def install(self, keys: Mapping[str, Any], max_age: float = DEFAULT_MAX_AGE) -> None:
        """Use ``keys`` (kid -> public key) for ``max_age`` seconds (tests, pre-warming)."""
        self.keys = dict(keys)
        self.expires = time.monotonic() + max_age
        self.fetched = time.monotonic()
        self.failing = False

    def known(self, kid: str) -> Any | None:
        """The public key ``kid`` if the cached document is fresh and has it (no I/O)."""
        return self.keys.get(kid) if time.monotonic() < self.expires else None

    def usable(self) -> bool:
        """Whether there are keys to check tokens with: fresh, or within the grace."""
        return bool(self.keys) and time.monotonic() < self.expires + STALE_GRACE

    async def key(self, kid: str) -> Any | None:
        """The public key ``kid`` (``None``: not in the document), fetching the document if
        it is stale or lacks ``kid``; raises :class:`AuthError` (503) with no usable keys."""
        key = self.known(kid)
        if key is not None:
            return key
        fetch = self._fetch_for()
        if fetch is not None:
            # Bounded from the fetch's start: requests arriving while it hangs do not each
            # wait the whole bound again.
            wait = self.fetched + FETCH_WAIT - time.monotonic()
            if wait > 0:
                await asyncio.wait({fetch}, timeout=wait)
        if not self.usable():
            raise AuthError(503, "the token signing keys could not be fetched: try again later")
        return self.keys.get(kid)

    def _fetch_for(self) -> asyncio.Task[None] | None:
        """The fetch in flight, or a new one if one is due, or ``None``."""
        loop = asyncio.get_running_loop()
        task = self._fetch_task
        if task is not None and not task.done() and task.get_loop() is loop:
            return task  # one fetch for every request that needs it
        now = time.monotonic()
        # A stale document is fetched again at once unless the last fetch failed; otherwise
        # (an unknown key id, a failing URL) at most every REFETCH_INTERVAL.
        stale = now >= self.expires
        if now - self.fetched < REFETCH_INTERVAL and (self.failing or not stale):
            return None
        self.fetched = now
        self._fetch_task = loop.create_task(self._fetch())
        return self._fetch_task

    async def _fetch(self) -> None:
        import httpx

        try:
            async with (asyncio.timeout(FETCH_TIMEOUT),
                        httpx.AsyncClient(timeout=FETCH_TIMEOUT) as client):
                response = await client.get(self.url)
                response.raise_for_status()
                keys = keys_from_certs(response.json())
        except Exception as exc:
            self.failing = True
            kept = ("keeping the keys fetched before for up to "
                    f"{self.expires + STALE_GRACE - time.monotonic():.0f} s"
                    if self.usable() else "no usable keys: task requests get 503")
            logger.error("could not fetch the token signing keys from %s (%r); %s; next try "
                         "in %.0f s", self.url, exc, kept, REFETCH_INTERVAL)
            return
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        max_age = float(match.group(1)) if match else DEFAULT_MAX_AGE
        self.install(keys, max_age)


class _Settings(NamedTuple):
    enabled: bool
    cache: KeyCache
    allowed: frozenset[str]
    audience: str | None  # task_oidc_audience
    base_url: str | None  # task_base_url, no trailing slash


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
        self._version = -1
        self._settings: _Settings | None = None
        # Tokens whose signature was checked, with their key id and claims (callers reuse a
        # token until it expires): a hit skips the RSA check while that key is still trusted,
        # never the claim checks.
        self._signed: collections.OrderedDict[str, tuple[str, dict[str, Any]]] = (
            collections.OrderedDict())

    def settings(self) -> _Settings:
        """The verification settings, read again whenever ``app.conf`` changes."""
        conf = self.app.conf
        if self._settings is None or self._version != conf.version:
            mode = str(conf.get("task_auth") or "oidc").lower()
            if mode not in ("oidc", "none"):
                raise ImproperlyConfigured(
                    f"task_auth={mode!r}: use 'oidc' (the default) or 'none'")
            url = str(conf.get("task_oidc_certs_url") or GOOGLE_CERTS_URL)
            cache = self._caches.get(url)
            if cache is None:
                cache = self._caches[url] = KeyCache(url)
            emails = conf.get("task_oidc_allowed_emails")
            if emails is None:
                emails = [conf.gcp_service_account] if conf.gcp_service_account else []
            elif isinstance(emails, str):
                emails = [emails]
            base = conf.task_base_url
            self._settings = _Settings(
                mode == "oidc", cache, frozenset(emails),
                str(conf.task_oidc_audience) if conf.task_oidc_audience else None,
                str(base).rstrip("/") if base else None)
            self._version = conf.version
            self._signed.clear()  # the trusted keys may have changed
        return self._settings

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a token (``task_auth``)."""
        return self.settings().enabled

    def cache(self) -> KeyCache:
        """The key cache of the configured certificate URL."""
        return self.settings().cache

    def allowed(self) -> frozenset[str]:
        """The service accounts whose tokens may run tasks."""
        return self.settings().allowed

    def audience(self, path: str) -> str:
        """The audience a token for ``path`` must have."""
        settings = self.settings()
        if settings.audience is not None:
            return settings.audience
        if settings.base_url is None:
            raise AuthError(401, "this worker cannot check token audiences: set task_base_url "
                                 "(or task_oidc_audience)")
        return settings.base_url + path

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
        if not authorization or authorization[:7].lower() != "bearer ":
            raise AuthError(401, "missing bearer token (Authorization: Bearer <OIDC token>)")
        token = authorization[7:].strip()
        settings = self.settings()
        seen = self._signed.get(token)
        if seen is not None and settings.cache.known(seen[0]) is not None:
            claims = seen[1]  # signed by a key still trusted: checked before
        else:
            claims = await self._check_signature(token, settings.cache)
        audience = claims.get("aud")
        expected = self.audience(path)
        if audience != expected and not (isinstance(audience, list) and expected in audience):
            raise AuthError(401, "token is for another audience")
        _check_times(claims, self.app.now().timestamp())  # the app's clock (tests set it)
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer not in ISSUERS:
            raise AuthError(401, "token not issued by Google")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise AuthError(403, "token has no verified email")
        if email not in settings.allowed:
            raise AuthError(403, "the caller's identity is not allowed to run tasks")
        return Caller(email, str(claims.get("sub", "")))

    async def _check_signature(self, token: str, cache: KeyCache) -> dict[str, Any]:
        """The claims of ``token`` once its RS256 signature checks out with a trusted key."""
        if len(token) > _MAX_TOKEN or not _COMPACT_JWT.fullmatch(token):
            raise AuthError(401, "malformed token")
        head, body, signature = token.split(".")
        header = _json_part(head)
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise AuthError(401, "token is not an RS256 token with a key id")
        key = cache.known(kid) or await cache.key(kid)
        if key is None:
            raise AuthError(401, "token signed by an unknown key")
        if not _signed(key, f"{head}.{body}".encode("ascii"), _b64decode(signature)):
            raise AuthError(401, "invalid token signature")
        claims = _json_part(body)
        self._signed[token] = (kid, claims)
        if len(self._signed) > _SIGNED_KEPT:
            self._signed.popitem(last=False)
        return claims


def _signed(key: Any, data: bytes, signature: bytes) -> bool:
    # RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 3.3), checked by cryptography.
    rsa_key, pkcs1, sha256, invalid = _rs256()
    if not isinstance(key, rsa_key):
        return False
    try:
        key.verify(signature, data, pkcs1, sha256)
    except invalid:
        return False
    return True


@functools.cache
def _rs256() -> tuple[type[Any], Any, Any, type[Exception]]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    return rsa.RSAPublicKey, padding.PKCS1v15(), hashes.SHA256(), InvalidSignature


def _json_part(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part).decode("utf-8"))  # JSON is UTF-8 (RFC 8259)
    except (ValueError, RecursionError):
        raise AuthError(401, "malformed token") from None
    if not isinstance(value, dict):
        raise AuthError(401, "malformed token")
    return value


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    """Refuse a token outside its validity: ``exp`` and ``iat`` required, ``nbf`` if given."""
    expires, issued = _seconds(claims.get("exp")), _seconds(claims.get("iat"))
    not_before = _seconds(claims.get("nbf", 0))
    if expires is None or issued is None or not_before is None:
        raise AuthError(401, "invalid token: exp and iat (and nbf, if given) must be numbers")
    if expires + LEEWAY < now:
        raise AuthError(401, "token expired")
    if issued - LEEWAY > now:
        raise AuthError(401, "token issued in the future")
    if not_before - LEEWAY > now:
        raise AuthError(401, "token not valid yet (nbf)")


def _seconds(value: Any) -> float | None:
    """A time claim as a finite float, else ``None``: a NaN compares false with everything,
    so it would pass every check."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return seconds if math.isfinite(seconds) else None


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error:  # e.g. a part of 4n+1 characters, which no bytes encode to
        raise AuthError(401, "malformed token") from None
