"""The emulator's OIDC tokens verify with google-auth exactly as a production verifier would.

The published documents are served by a real HTTP server on 127.0.0.1 and fetched by
``google.oauth2.id_token.verify_token`` through a real google-auth transport.

The v3 (JWKS) format needs the ``PyJWT`` package inside google-auth (a test dependency);
``test_jwks_key_verifies_token`` also checks the JWK Set directly.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import load_pem_x509_certificate
from google.auth import crypt, exceptions, jwt
from google.auth.transport import Request
from google.auth.transport import _http_client as http_client_transport
from google.auth.transport import requests as requests_transport
from google.oauth2 import id_token

from celery_gcp.emulator.oidc import (
    CACHE_CONTROL,
    CERTS_V1_PATH,
    ISSUER,
    JWKS_PATH,
    TokenIssuer,
    effective_audience,
    subject_for,
)

FORMATS = [pytest.param("v1", id="v1-x509"), pytest.param("v3", id="v3-jwks")]

EMAIL = "invoker@my-project.iam.gserviceaccount.com"
AUDIENCE = "https://worker.example.com/tasks/add"


# --------------------------------------------------------------------------- fixtures


@dataclass
class CertServer:
    """A real HTTP server publishing one issuer's documents at Google's paths."""

    base_url: str
    documents: dict[str, Any] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def publish(self, issuer: TokenIssuer) -> None:
        self.documents[CERTS_V1_PATH] = issuer.certs_v1()
        self.documents[JWKS_PATH] = issuer.jwks()

    def url(self, fmt: str) -> str:
        return self.base_url + (CERTS_V1_PATH if fmt == "v1" else JWKS_PATH)


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    """One issuer with a freshly generated key (key generation is the slow part)."""
    return TokenIssuer()


@pytest.fixture(scope="module")
def other_issuer() -> TokenIssuer:
    """A second, unrelated issuer: its tokens must not verify against the first one's keys."""
    return TokenIssuer()


@pytest.fixture
def cert_server(issuer: TokenIssuer) -> Iterator[CertServer]:
    """Serve ``issuer``'s v1 and v3 documents over HTTP on an ephemeral port."""
    state = CertServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            document = state.documents.get(self.path)
            if document is None:
                self.send_error(404)
                return
            body = json.dumps(document).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Cache-Control", CACHE_CONTROL)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    state.publish(issuer)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def request_() -> Iterator[Request]:
    """google-auth's requests transport (``requests`` comes with google-api-core)."""
    with requests.Session() as session:
        yield requests_transport.Request(session=session)


def verify(
    token: str, request: Request, server: CertServer, fmt: str, audience: str | None = AUDIENCE
) -> dict[str, Any]:
    """Verify exactly as a production verifier would."""
    return dict(id_token.verify_token(token, request, audience=audience, certs_url=server.url(fmt)))


def rejection(fmt: str, reason: str) -> tuple[type[Exception], str | None]:
    """The exception (and message pattern) google-auth raises for a bad token, per format."""
    if fmt == "v1":
        messages = {
            "audience": "wrong audience",
            "expired": "Token expired",
            "unknown_kid": "not found",
            "signature": "Could not verify token signature",
        }
        return exceptions.GoogleAuthError, messages[reason]
    jwt_exceptions = importlib.import_module("jwt.exceptions")  # PyJWT, optional
    classes: dict[str, type[Exception]] = {
        "audience": jwt_exceptions.InvalidAudienceError,
        "expired": jwt_exceptions.ExpiredSignatureError,
        "unknown_kid": jwt_exceptions.PyJWKClientError,
        "signature": jwt_exceptions.InvalidSignatureError,
    }
    return classes[reason], None


def unverified_claims(token: str) -> dict[str, Any]:
    return decode(token, verify=False)


def decode(token: str, **kwargs: Any) -> dict[str, Any]:
    """Typed wrapper of ``google.auth.jwt.decode``."""
    return dict(jwt.decode(token, **kwargs))  # type: ignore[no-untyped-call]


def decode_header(token: str) -> dict[str, Any]:
    """Typed wrapper of ``google.auth.jwt.decode_header``."""
    return dict(jwt.decode_header(token))  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------- verification


@pytest.mark.parametrize("fmt", FORMATS)
def test_token_verifies_with_google_auth(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    before = int(time.time())
    token = issuer.mint(EMAIL, AUDIENCE)
    claims = verify(token, request_, cert_server, fmt)
    after = int(time.time())

    assert cert_server.hits == [cert_server.url(fmt).removeprefix(cert_server.base_url)]
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["email"] == EMAIL
    assert claims["email_verified"] is True
    assert claims["sub"] == subject_for(EMAIL)
    assert claims["azp"] == claims["sub"]
    assert before <= claims["iat"] <= after
    assert claims["exp"] == claims["iat"] + 3600
    assert set(claims) == {"iss", "aud", "email", "email_verified", "sub", "azp", "iat", "exp"}


def test_token_verifies_with_stdlib_transport(issuer: TokenIssuer, cert_server: CertServer) -> None:
    """google-auth's http.client transport (no ``requests`` needed) works as well."""
    token = issuer.mint(EMAIL, AUDIENCE)
    claims = verify(token, http_client_transport.Request(), cert_server, "v1")
    assert claims["email"] == EMAIL


def test_verify_oauth2_token_issuer_check_accepts_claims(issuer: TokenIssuer) -> None:
    """The ``iss`` is one google-auth's ``verify_oauth2_token`` accepts for Google tokens."""
    from google.oauth2.id_token import _GOOGLE_ISSUERS

    assert unverified_claims(issuer.mint(EMAIL, AUDIENCE))["iss"] in _GOOGLE_ISSUERS


def test_header(issuer: TokenIssuer) -> None:
    header = decode_header(issuer.mint(EMAIL, AUDIENCE))
    assert header == {"alg": "RS256", "typ": "JWT", "kid": issuer.kid}


def test_jwks_key_verifies_token(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request
) -> None:
    """Without PyJWT: the served JWK rebuilds the key that signs the tokens and is in the cert."""
    response = request_(cert_server.url("v3"), method="GET")
    assert response.status == 200
    assert response.headers["Cache-Control"] == CACHE_CONTROL
    document = json.loads(response.data)
    (jwk,) = document["keys"]
    assert {k: jwk[k] for k in ("kid", "kty", "alg", "use")} == {
        "kid": issuer.kid,
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
    }
    assert set(jwk) == {"kid", "kty", "alg", "use", "n", "e"}
    for member in ("n", "e"):
        assert "=" not in jwk[member]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", jwk[member])

    def b64_int(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    public_key = rsa.RSAPublicNumbers(b64_int(jwk["e"]), b64_int(jwk["n"])).public_key()
    assert public_key.key_size == 2048
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    certificate = load_pem_x509_certificate(issuer.certs_v1()[issuer.kid].encode())
    assert (
        certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public_pem
    )

    claims = decode(issuer.mint(EMAIL, AUDIENCE), certs={jwk["kid"]: public_pem}, audience=AUDIENCE)
    assert claims["email"] == EMAIL


def test_certs_v1_document(issuer: TokenIssuer) -> None:
    document = issuer.certs_v1()
    assert list(document) == [issuer.kid]
    assert re.fullmatch(r"[0-9a-f]{40}", issuer.kid)
    pem = document[issuer.kid]
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    certificate = load_pem_x509_certificate(pem.encode())
    assert certificate.subject == certificate.issuer
    assert certificate.not_valid_before_utc.timestamp() < time.time()
    assert certificate.not_valid_after_utc.timestamp() > time.time() + 365 * 86400
    json.dumps(document)
    json.dumps(issuer.jwks())


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_audience_rejected(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    token = issuer.mint(EMAIL, "https://other.example.com/")
    error, match = rejection(fmt, "audience")
    with pytest.raises(error, match=match):
        verify(token, request_, cert_server, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_expired_token_rejected(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    two_hours_ago = TokenIssuer(issuer.private_key_pem(), clock=lambda: time.time() - 7200)
    token = two_hours_ago.mint(EMAIL, AUDIENCE)
    claims = unverified_claims(token)
    assert claims["exp"] == claims["iat"] + 3600 < time.time()
    error, match = rejection(fmt, "expired")
    with pytest.raises(error, match=match):
        verify(token, request_, cert_server, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_short_lifetime_expires(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    ten_seconds_ago = TokenIssuer(issuer.private_key_pem(), clock=lambda: time.time() - 10)
    token = ten_seconds_ago.mint(EMAIL, AUDIENCE, lifetime=5)
    claims = unverified_claims(token)
    assert claims["exp"] - claims["iat"] == 5
    error, match = rejection(fmt, "expired")
    with pytest.raises(error, match=match):
        verify(token, request_, cert_server, fmt)
    # The same clock with the default lifetime is still valid.
    assert verify(ten_seconds_ago.mint(EMAIL, AUDIENCE), request_, cert_server, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_issuers_token_rejected(
    other_issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    token = other_issuer.mint(EMAIL, AUDIENCE)
    error, match = rejection(fmt, "unknown_kid")
    with pytest.raises(error, match=match):
        verify(token, request_, cert_server, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_forged_kid_rejected(
    issuer: TokenIssuer,
    other_issuer: TokenIssuer,
    cert_server: CertServer,
    request_: Request,
    fmt: str,
) -> None:
    """Another key claiming the published kid fails the signature check."""
    forger = crypt.RSASigner.from_string(  # type: ignore[no-untyped-call]
        other_issuer.private_key_pem(), key_id=issuer.kid
    )
    genuine = unverified_claims(issuer.mint(EMAIL, AUDIENCE))
    token = jwt.encode(forger, genuine).decode()  # type: ignore[no-untyped-call]
    assert decode_header(token)["kid"] == issuer.kid
    error, match = rejection(fmt, "signature")
    with pytest.raises(error, match=match):
        verify(token, request_, cert_server, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tampered_payload_rejected(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    header, _, signature = issuer.mint(EMAIL, AUDIENCE).split(".")
    claims = unverified_claims(issuer.mint(EMAIL, AUDIENCE))
    claims["email"] = "admin@my-project.iam.gserviceaccount.com"
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    error, match = rejection(fmt, "signature")
    with pytest.raises(error, match=match):
        verify(f"{header}.{payload}.{signature}", request_, cert_server, fmt)


# --------------------------------------------------------------------------- key persistence


@pytest.mark.parametrize("fmt", FORMATS)
def test_reloaded_key_verifies_against_published_certs(
    issuer: TokenIssuer, cert_server: CertServer, request_: Request, fmt: str
) -> None:
    """A restarted emulator with the saved key: same kid, old documents still verify."""
    pem = issuer.private_key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    reloaded = TokenIssuer(pem)
    assert reloaded.kid == issuer.kid
    assert reloaded.private_key_pem() == pem
    assert reloaded.jwks() == issuer.jwks()
    # cert_server still publishes the *original* issuer's documents.
    claims = verify(reloaded.mint(EMAIL, AUDIENCE), request_, cert_server, fmt)
    assert claims["email"] == EMAIL
    # And the other way round: the reloaded issuer's certificate verifies the original's tokens.
    cert_server.publish(reloaded)
    assert verify(issuer.mint(EMAIL, AUDIENCE), request_, cert_server, fmt)


def test_pkcs1_pem_accepted(issuer: TokenIssuer) -> None:
    private_key = serialization.load_pem_private_key(issuer.private_key_pem(), password=None)
    pkcs1 = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert TokenIssuer(pkcs1).kid == issuer.kid


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "data" / "oidc-key.pem"
    created = TokenIssuer.load_or_create(path)
    assert path.read_bytes() == created.private_key_pem()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["oidc-key.pem"]
    loaded = TokenIssuer.load_or_create(path)
    assert loaded.kid == created.kid
    assert decode(loaded.mint(EMAIL, AUDIENCE), certs=created.certs_v1(), audience=AUDIENCE)


def test_fresh_issuers_have_distinct_keys(issuer: TokenIssuer, other_issuer: TokenIssuer) -> None:
    assert issuer.kid != other_issuer.kid
    assert issuer.private_key_pem() != other_issuer.private_key_pem()


@pytest.mark.parametrize(
    "make_pem",
    [
        pytest.param(lambda: b"not a key", id="garbage"),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            id="ec-key",
        ),
        pytest.param(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            id="rsa-1024",
        ),
        pytest.param(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
            id="encrypted",
        ),
    ],
)
def test_bad_keys_rejected(make_pem: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError, match="key"):
        TokenIssuer(make_pem())


# --------------------------------------------------------------------------- claims details


def test_clock_sets_iat_and_exp(issuer: TokenIssuer) -> None:
    fixed = TokenIssuer(issuer.private_key_pem(), clock=lambda: 1_700_000_000.75)
    claims = unverified_claims(fixed.mint(EMAIL, AUDIENCE, lifetime=120))
    assert (claims["iat"], claims["exp"]) == (1_700_000_000, 1_700_000_120)


def test_subject_is_stable_and_numeric() -> None:
    sub = subject_for(EMAIL)
    assert re.fullmatch(r"1[0-9]{20}", sub)
    assert subject_for(EMAIL) == sub
    assert subject_for(EMAIL.upper()) == sub
    assert subject_for("someone-else@my-project.iam.gserviceaccount.com") != sub


def test_effective_audience() -> None:
    url = "https://worker.example.com/tasks/add?x=1"
    assert effective_audience("", url) == url
    assert effective_audience(None, url) == url
    assert effective_audience("custom-aud", url) == "custom-aud"


@pytest.mark.parametrize(
    ("email", "audience", "lifetime"),
    [("", AUDIENCE, 3600.0), (EMAIL, "", 3600.0), (EMAIL, AUDIENCE, 0.0)],
)
def test_mint_rejects_bad_arguments(
    issuer: TokenIssuer, email: str, audience: str, lifetime: float
) -> None:
    with pytest.raises(ValueError, match="must"):
        issuer.mint(email, audience, lifetime=lifetime)


def test_cache_control() -> None:
    directives = [d.strip() for d in CACHE_CONTROL.split(",")]
    assert "public" in directives
    (max_age,) = [d for d in directives if d.startswith("max-age=")]
    assert int(max_age.removeprefix("max-age=")) > 0
