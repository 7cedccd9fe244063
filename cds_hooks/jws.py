"""Compact JWS tokens, without any I/O: taking one apart, the algorithms and the policy a
token is held to, and making a JWK ready to verify a signature (`auth.py` does the checks in
order; `jwks.py` finds the keys).

>>> jws = parse_jws("eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlIn0.c2ln")
>>> jws.header, jws.claims, jws.signature
({'alg': 'ES384'}, {'iss': 'https://ehr.example'}, b'sig')

Spec: https://cds-hooks.hl7.org/2.0/#trusting-cds-clients and RFC 7515 (JWS).
"""

import base64
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import jwt
import orjson
from jwt.algorithms import Algorithm

from cds_hooks.errors import AuthenticationFailed

__all__ = [
    "ALLOWED_ALGORITHMS",
    "KEY_TYPE_OF",
    "Jws",
    "JwtPolicy",
    "PreparedKey",
    "parse_jws",
    "prepare_key",
]

# Spec: ES384 and RS384 recommended; symmetric algorithms and `none` SHALL NOT be used.
ALLOWED_ALGORITHMS = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512")
# The JWK `kty` each algorithm family needs.
KEY_TYPE_OF = {"ES": "EC", "RS": "RSA"}


@dataclass(frozen=True)
class JwtPolicy:
    algorithms: frozenset[str] = frozenset(ALLOWED_ALGORITHMS)
    leeway: float = 30.0
    max_lifetime: float = 3600.0
    jwks_cache_ttl: float = 3600.0
    jwks_refresh_interval: float = 60.0
    jwks_timeout: float = 5.0
    jwks_max_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        refused = self.algorithms - set(ALLOWED_ALGORITHMS)
        if refused:
            raise ValueError(f"JWT algorithms not allowed by CDS Hooks: {sorted(refused)}")


# A compact JWS: three base64url segments (the last empty for alg none, refused by name below).
# Anything else is refused before any decoding.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_MAX_TOKEN_CHARS = 16 * 1024


class Jws(NamedTuple):
    """A compact JWS taken apart: `signed` is what `signature` signs, and `header` and `claims`
    are decoded from exactly those bytes."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signed: bytes
    signature: bytes


def parse_jws(token: str) -> Jws:
    """A compact JWS, not yet verified: its header and claims only say which key to check
    the signature with, until its signature is verified (`auth.JwtVerifier`).

    (Decoding the token again in PyJWT cost more than verifying an RS384 signature, mostly in
    a character-by-character check that the pattern below already makes.)
    """
    if len(token) > _MAX_TOKEN_CHARS or not _COMPACT_JWS.fullmatch(token):
        raise AuthenticationFailed("the token is not a well-formed JWT")
    header_part, claims_part, signature_part = token.split(".")
    try:
        header = orjson.loads(_base64url(header_part))
        claims = orjson.loads(_base64url(claims_part))
        signature = _base64url(signature_part)
    except (ValueError, orjson.JSONDecodeError):  # binascii.Error is a ValueError
        raise AuthenticationFailed("the token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthenticationFailed("the token is not a well-formed JWT")
    signed = f"{header_part}.{claims_part}".encode("ascii")
    return Jws(header, claims, signed, signature)


@dataclass(frozen=True)
class PreparedKey:
    """A JWK made ready to verify one algorithm's signatures (building it costs more than a
    verification, so it is kept per JWK)."""

    jwk: dict[str, Any]
    algorithm: Algorithm
    key: Any


# JWK members of private keys (RFC 7518 6.2.2 and 6.3.2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


def prepare_key(jwk: dict[str, Any], alg: str, which: str) -> PreparedKey:
    """The key of `jwk` for `alg`, refused when it holds a private key, its curve does not match
    `alg`, or it is shorter than the algorithm's minimum (RSA: 2048 bits)."""
    if _PRIVATE_MEMBERS.intersection(jwk):
        # Whoever published it has given its signing key away: nothing it signs can be trusted.
        raise AuthenticationFailed(
            f"{which} is published with its private part: refused; the client must replace it"
        )
    try:
        loaded = jwt.PyJWK(jwk, algorithm=alg)
        key = loaded.Algorithm.prepare_key(loaded.key)
    except jwt.PyJWTError as error:
        raise AuthenticationFailed(f"{which} is unusable for {alg}: {error}") from None
    too_short = loaded.Algorithm.check_key_length(key)
    if too_short:
        raise AuthenticationFailed(f"{which} is refused: {too_short}")
    return PreparedKey(jwk, loaded.Algorithm, key)


def _base64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
