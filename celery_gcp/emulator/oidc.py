"""OIDC ID tokens for the local Cloud Tasks / Cloud Scheduler emulator.

Cloud Tasks and Cloud Scheduler attach ``Authorization: Bearer <JWT>`` to an
HTTP request whose task or job carries an ``oidc_token`` (a service account
email and an optional audience).  The token is a Google-signed ID token.  The
emulator cannot sign with Google's keys, so it signs with its own RSA key
(RS256) and publishes the public half in the two formats Google's certificate
endpoints use:

* v1 (``https://www.googleapis.com/oauth2/v1/certs``): a JSON object mapping
  each key id to a PEM X.509 certificate, see :meth:`TokenIssuer.certs_v1`;
* v3 (``https://www.googleapis.com/oauth2/v3/certs``): a JWK Set, see
  :meth:`TokenIssuer.jwks`.

A verifier such as ``google.oauth2.id_token.verify_token(..., certs_url=...)``
pointed at either endpoint accepts the emulator's tokens unchanged.  (For the
v3/JWKS format google-auth needs the optional ``PyJWT`` package; the v1
format needs nothing beyond google-auth itself.)

Serving those documents over HTTP is up to the caller: the methods here return
JSON-able dicts, and :data:`CACHE_CONTROL` is the ``Cache-Control`` header
value to send with them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

__all__ = [
    "CACHE_CONTROL",
    "CERTS_V1_PATH",
    "ISSUER",
    "JWKS_PATH",
    "TokenIssuer",
    "effective_audience",
    "subject_for",
]

#: The ``iss`` claim of every token, as in Google-signed ID tokens.
ISSUER = "https://accounts.google.com"

#: Path Google serves the v1 (kid -> PEM certificate) document at; a suggestion
#: for the emulator's HTTP server.
CERTS_V1_PATH = "/oauth2/v1/certs"

#: Path Google serves the v3 (JWK Set) document at; a suggestion for the
#: emulator's HTTP server.
JWKS_PATH = "/oauth2/v3/certs"

#: ``Cache-Control`` header value for both certificate documents.  Google uses
#: a max-age of several hours; the emulator's key changes whenever it restarts
#: without a data dir, so verifiers are told to refetch after five minutes.
#: How long clients may keep the key documents (``Cache-Control`` and ``Expires`` agree).
CACHE_SECONDS = 300
CACHE_CONTROL = f"public, max-age={CACHE_SECONDS}, must-revalidate, no-transform"

_KEY_SIZE = 2048
_PUBLIC_EXPONENT = 65537
_CERT_COMMON_NAME = "celery-gcp Cloud Tasks emulator"
_CERT_VALIDITY = datetime.timedelta(days=3650)


def subject_for(service_account_email: str) -> str:
    """Return the stable ``sub`` claim used for a service account.

    Google gives each service account a 21-digit numeric unique id; the
    emulator derives one deterministically from the email so the same account
    always gets the same ``sub`` (and ``azp``), across restarts too.
    """
    digest = hashlib.sha256(service_account_email.strip().lower().encode("utf-8")).digest()
    return "1" + str(int.from_bytes(digest, "big"))[:20]


def effective_audience(audience: str | None, target_url: str) -> str:
    """Return the ``aud`` claim Cloud Tasks / Scheduler would use.

    An ``oidc_token`` whose audience is unset or empty gets the target URL of
    the task or job as its audience.
    """
    return audience or target_url


def _b64url_uint(value: int) -> str:
    """Encode a non-negative integer as unpadded base64url (JWK ``n``/``e``)."""
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Load an unencrypted PEM (PKCS#1 or PKCS#8) RSA private key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"OIDC signing key must be RSA, got {type(key).__name__}")
    if key.key_size < _KEY_SIZE:
        raise ValueError(f"OIDC signing key must be at least {_KEY_SIZE} bits, got {key.key_size}")
    return key


class TokenIssuer:
    """Mints RS256 ID tokens and publishes the matching public keys.

    Args:
        private_key_pem: An unencrypted PEM RSA private key (PKCS#1 or PKCS#8,
            at least 2048 bits), e.g. one saved earlier with
            :meth:`private_key_pem`.  When ``None`` a new 2048-bit key is
            generated.
        clock: Returns the current time in seconds since the epoch; used for
            ``iat``/``exp`` and the certificate's validity.  Tests pass a fake.

    The key id (``kid``) is derived from the public key, so an issuer reloaded
    from the same PEM has the same ``kid`` and its tokens verify against the
    documents published before the restart.  Instances are immutable after
    construction and safe to share between threads.
    """

    def __init__(
        self,
        private_key_pem: bytes | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Load or generate the signing key and build its certificate."""
        if private_key_pem is None:
            self._key = rsa.generate_private_key(
                public_exponent=_PUBLIC_EXPONENT, key_size=_KEY_SIZE
            )
        else:
            self._key = _load_private_key(private_key_pem)
        self._clock = clock
        self._pem = self._key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
        public_der = self._key.public_key().public_bytes(
            encoding=serialization.Encoding.DER,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        # Google's kids are 40 hex digits; a SHA-1 of the public key matches that shape.
        self._kid = hashlib.sha1(public_der, usedforsecurity=False).hexdigest()
        self._signer = crypt.RSASigner.from_string(  # type: ignore[no-untyped-call]
            self._pem, key_id=self._kid
        )
        self._cert_pem = (
            self._build_certificate().public_bytes(serialization.Encoding.PEM).decode("ascii")
        )

    @classmethod
    def load_or_create(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> TokenIssuer:
        """Return an issuer whose key is kept in the PEM file at ``path``.

        If the file exists its key is loaded; otherwise a key is generated and
        written there (owner read/write only, atomically), so an emulator
        restarted with the same data dir keeps its ``kid`` and its tokens stay
        verifiable.
        """
        target = Path(path)
        if target.exists():
            return cls(target.read_bytes(), clock=clock)
        issuer = cls(clock=clock)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".oidc-key-", dir=target.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(issuer.private_key_pem())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return issuer

    @property
    def kid(self) -> str:
        """The key id put in each token's header and in the published documents."""
        return self._kid

    def private_key_pem(self) -> bytes:
        """Return the signing key as unencrypted PKCS#8 PEM, for saving to a data dir."""
        return self._pem

    def mint(
        self,
        service_account_email: str,
        audience: str,
        *,
        lifetime: float = 3600.0,
    ) -> str:
        """Return a signed ID token for ``service_account_email``.

        Args:
            service_account_email: The ``oidc_token.service_account_email`` of
                the task or job; becomes the ``email`` claim.
            audience: The ``aud`` claim.  Cloud Tasks uses the target URL when
                the task's audience is empty: resolve that with
                :func:`effective_audience` before calling.
            lifetime: Seconds from ``iat`` to ``exp``.

        Returns:
            The compact JWT, ready for ``Authorization: Bearer <token>``.

        Raises:
            ValueError: If the email or audience is empty or the lifetime is
                not positive.
        """
        if not service_account_email:
            raise ValueError("service_account_email must not be empty")
        if not audience:
            raise ValueError("audience must not be empty (use the target URL)")
        if lifetime <= 0:
            raise ValueError(f"lifetime must be positive, got {lifetime!r}")
        now = int(self._clock())
        subject = subject_for(service_account_email)
        payload: dict[str, Any] = {
            "aud": audience,
            "azp": subject,
            "email": service_account_email,
            "email_verified": True,
            "exp": now + int(lifetime),
            "iat": now,
            "iss": ISSUER,
            "sub": subject,
        }
        token: bytes = jwt.encode(self._signer, payload)  # type: ignore[no-untyped-call]
        return token.decode("ascii")

    def mint_access(self, service_account_email: str, scope: str, *,
                    lifetime: float = 3600.0) -> str:
        """An OAuth access token for ``service_account_email`` with ``scope`` (an
        ``oauth_token``'s). Google's are opaque; this one is a JWT signed like the ID tokens
        (``scope``, ``email``, ``exp`` claims), so a test can read what it grants."""
        if not service_account_email:
            raise ValueError("service_account_email must not be empty")
        now = int(self._clock())
        subject = subject_for(service_account_email)
        payload: dict[str, Any] = {
            "azp": subject, "email": service_account_email, "exp": now + int(lifetime),
            "iat": now, "iss": ISSUER, "scope": scope, "sub": subject,
        }
        token: bytes = jwt.encode(self._signer, payload)  # type: ignore[no-untyped-call]
        return token.decode("ascii")

    def certs_v1(self) -> dict[str, str]:
        """Return the v1 certificate document: ``{kid: PEM X.509 certificate}``."""
        return {self._kid: self._cert_pem}

    def jwks(self) -> dict[str, Any]:
        """Return the v3 certificate document, a JWK Set with the public key."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kid": self._kid,
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    def _build_certificate(self) -> x509.Certificate:
        """Build a self-signed certificate carrying the public key."""
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, _CERT_COMMON_NAME),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, self._kid),
            ]
        )
        now = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        not_before = now - datetime.timedelta(days=1)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + _CERT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
