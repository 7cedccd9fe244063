"""Trusting CDS clients: verify the JWT each call carries in `Authorization: Bearer <JWT>`.

Checks, in order (any failure raises AuthenticationFailed with a reason fit for the log; the
token itself is never logged or put in an exception):

1. a compact JWS of base64url JSON objects; header `alg` in the allow-list (asymmetric only:
   never `none`, never HMAC), `kid` present, `typ` is `JWT`, no `crit` extensions;
2. `iss` is a trusted issuer;
3. the key: a token naming a `jku` that is not allow-listed for its issuer is refused; the key
   comes from the issuer's configured JWK Set (inline or file), else from its allow-listed
   `jku` URL(s) (cached; refetched on an unknown kid, at most once per refresh interval);
4. the signature over the token's first two segments, exactly as sent, with the key's type,
   curve and size fit for `alg` (PyJWT's algorithm objects; every claim used is read from the
   very segments the signature covers);
5. `aud` equals the URL the client called; `exp`, `iat` (and `nbf` if sent) within a small
   leeway; a bounded lifetime; `jti` present; `tenant` in the issuer's allow-list if it has one;
6. `jti` not seen before within the token's lifetime (`replay.py`; when its cache is full,
   the call is refused with 503 rather than a live jti forgotten).

Spec: https://cds-hooks.hl7.org/2.0/#trusting-cds-clients
"""

import asyncio
import base64
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard

import httpx
import jwt
import orjson
from jwt.algorithms import Algorithm
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds_hooks.errors import AuthenticationFailed
from cds_hooks.replay import InMemoryReplayCache, ReplayCache

__all__ = [
    "ALLOWED_ALGORITHMS",
    "CallerIdentity",
    "JwksFetcher",
    "JwtPolicy",
    "JwtVerifier",
    "TrustedIssuer",
    "bearer_token",
    "keys_by_kid",
]

log = logging.getLogger(__name__)

# Spec: ES384 and RS384 recommended; symmetric algorithms and `none` SHALL NOT be used.
ALLOWED_ALGORITHMS = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512")
_KTY_OF = {"ES": "EC", "RS": "RSA"}


class TrustedIssuer(BaseModel):
    """One CDS client we trust: its `iss`, where its keys are, and optionally its tenants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None
    jku: tuple[str, ...] = ()
    tenants: tuple[str, ...] | None = None
    # FHIR base URLs this client's calls may name as fhirServer; empty: any public server.
    fhir_servers: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_keys(self) -> "TrustedIssuer":
        if self.jwks is None and self.jwks_file is None and not self.jku:
            raise ValueError(f"issuer {self.iss!r} needs jwks, jwks_file or an allow-listed jku")
        return self

    def static_keys(self) -> dict[str, dict[str, Any]]:
        """kid -> JWK from the inline set and the file; raises ValueError if unreadable."""
        keys = keys_by_kid(self.jwks) if self.jwks is not None else {}
        if self.jwks_file is not None:
            try:
                keys |= keys_by_kid(orjson.loads(self.jwks_file.read_bytes()))
            except (OSError, orjson.JSONDecodeError) as error:
                raise ValueError(f"cannot read JWK Set file {self.jwks_file}: {error}") from None
        return keys


def keys_by_kid(jwks: Any) -> dict[str, dict[str, Any]]:
    """kid -> JWK for a JWK Set document; keys without a kid cannot be selected and are skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("a JWK Set is an object with a 'keys' array")
    return {
        key["kid"]: key
        for key in jwks["keys"]
        if isinstance(key, dict) and isinstance(key.get("kid"), str)
    }


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


@dataclass(frozen=True)
class CallerIdentity:
    """The verified CDS client of one call. Safe to log."""

    iss: str
    kid: str
    tenant: str | None = None
    fhir_servers: tuple[str, ...] = ()


@dataclass
class _CachedSet:
    keys: dict[str, dict[str, Any]]
    fetched_at: float


@dataclass
class JwksFetcher:
    """JWK Sets fetched from allow-listed `jku` URLs, cached, refreshed at a bounded rate."""

    http: httpx.AsyncClient
    policy: JwtPolicy
    clock: Callable[[], float] = time.time
    _cache: dict[str, _CachedSet] = field(default_factory=dict)
    _last_try: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def key(self, url: str, kid: str) -> dict[str, Any] | None:
        cached = self._cache.get(url)
        now = self.clock()
        fresh = cached is not None and now - cached.fetched_at < self.policy.jwks_cache_ttl
        if fresh and cached is not None and kid in cached.keys:
            return cached.keys[kid]
        # Stale, first use, or an unknown kid (the client may have rotated its keys). Every
        # fetch after the first waits out the refresh interval, failed fetches included, so
        # tokens with made-up kids cannot make us hammer the client's key server.
        if self._may_refresh(url, now):
            async with self._locks.setdefault(url, asyncio.Lock()):
                if self._may_refresh(url, now):  # another call may have just refreshed
                    await self._refresh(url)
        cached = self._cache.get(url)
        return cached.keys.get(kid) if cached else None

    def _may_refresh(self, url: str, now: float) -> bool:
        last = self._last_try.get(url, -math.inf)
        return last < now and now - last >= self.policy.jwks_refresh_interval

    async def _refresh(self, url: str) -> None:
        self._last_try[url] = self.clock()
        try:
            response = await self.http.get(url, timeout=self.policy.jwks_timeout)
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            if len(response.content) > self.policy.jwks_max_bytes:
                raise ValueError("JWK Set over the size limit")
            keys = keys_by_kid(orjson.loads(response.content))
        except (httpx.HTTPError, ValueError) as error:
            # Keep any keys we had: a transient failure should not lock every client out.
            log.warning("JWK Set at %s could not be fetched: %s", url, error)
            return
        self._cache[url] = _CachedSet(keys, self.clock())


def bearer_token(authorization: str | Sequence[str] | None) -> str:
    """The token of an `Authorization: Bearer <token>` header: its value, or every value sent.

    More than one Authorization header is refused: the field is a singleton (RFC 9110 5.3),
    and a proxy reading the other one would disagree with us about who is calling.
    """
    if not isinstance(authorization, str) and authorization is not None:
        if len(authorization) > 1:
            raise AuthenticationFailed(f"{len(authorization)} Authorization headers")
        authorization = authorization[0] if authorization else None
    if not authorization:
        raise AuthenticationFailed("no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Authorization is not a Bearer token")
    return token.strip()


# A compact JWS: three base64url segments (the last empty for alg none, refused by name below).
# Anything else is refused before any decoding.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_MAX_TOKEN_CHARS = 16 * 1024


class _Jws(NamedTuple):
    """A compact JWS taken apart: `signed` is what `signature` signs, and `header` and `claims`
    are decoded from exactly those bytes."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signed: bytes
    signature: bytes


def _parse(token: str) -> _Jws:
    """A compact JWS, not yet verified: its header and claims only say which key to check
    the signature with, until `_check_signature` has verified it.

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
    return _Jws(header, claims, signed, signature)


@dataclass(frozen=True)
class _PreparedKey:
    """A JWK made ready to verify one algorithm's signatures (building it costs more than a
    verification, so it is kept per JWK)."""

    jwk: dict[str, Any]
    algorithm: Algorithm
    key: Any


# JWK members of private keys (RFC 7518 6.2.2 and 6.3.2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


def _prepare(jwk: dict[str, Any], alg: str, which: str) -> _PreparedKey:
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
    return _PreparedKey(jwk, loaded.Algorithm, key)


def _shown(value: object, limit: int) -> str:
    """A caller-sent value fit for a log line: strings cut to `limit`, anything else by type
    (a deeply nested list would not even survive `str`)."""
    return repr(value[:limit]) if isinstance(value, str) else f"of type {type(value).__name__}"


def _base64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


class JwtVerifier:
    """Verifies CDS client JWTs against the trusted issuers; see the module docstring."""

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        *,
        http: httpx.AsyncClient,
        policy: JwtPolicy | None = None,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy or JwtPolicy()
        self._issuers = {issuer.iss: issuer for issuer in issuers}
        self._static = {issuer.iss: issuer.static_keys() for issuer in issuers}
        self._replay = (
            replay_cache if replay_cache is not None else InMemoryReplayCache(clock=clock)
        )
        self._jwks = JwksFetcher(http, self.policy, clock)
        self._clock = clock
        self._prepared: dict[tuple[str, str, str], _PreparedKey] = {}

    async def verify(self, token: str, audience: str) -> CallerIdentity:
        """Verify `token` for a call to `audience` (the URL called); returns who called."""
        jws = _parse(token)
        header, claims = jws.header, jws.claims
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if not isinstance(alg, str) or alg not in self.policy.algorithms:
            raise AuthenticationFailed(f"alg {_shown(alg, 20)} is not allowed")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed("the token header has no kid")
        if not isinstance(typ, str) or typ.upper() != "JWT":  # REQUIRED by the spec, fixed value
            raise AuthenticationFailed("the token header typ is missing or not JWT")
        if "crit" in header or "b64" in header:
            # RFC 7515 4.1.11: extensions marked critical must be understood; we use none.
            raise AuthenticationFailed("the token header names extensions (crit or b64)")
        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthenticationFailed(f"issuer {_shown(iss, 200)} is not trusted")

        jwk = await self._find_key(issuer, kid, header.get("jku"))
        self._check_signature(jws, jwk, issuer.iss, kid, alg)
        tenant = self._check_claims(claims, issuer, audience)
        jti = claims["jti"]
        if not await self._replay.first_use(
            f"{issuer.iss}\n{jti}", claims["exp"] + self.policy.leeway
        ):
            raise AuthenticationFailed(f"jti replayed (issuer {issuer.iss})")
        return CallerIdentity(
            iss=issuer.iss, kid=kid, tenant=tenant, fhir_servers=issuer.fhir_servers
        )

    async def _find_key(self, issuer: TrustedIssuer, kid: str, jku: Any) -> dict[str, Any]:
        if jku is not None and jku not in issuer.jku:
            raise AuthenticationFailed(
                f"jku {_shown(jku, 200)} is not allow-listed for {issuer.iss}"
            )
        static = self._static[issuer.iss].get(kid)
        if static is not None:
            return static  # configured keys need no fetch, whatever jku the token names
        for url in (jku,) if jku is not None else issuer.jku:
            key = await self._jwks.key(url, kid)
            if key is not None:
                return key
        raise AuthenticationFailed(f"kid {kid[:100]!r} is not a known key of {issuer.iss}")

    def _check_signature(
        self, jws: _Jws, jwk: dict[str, Any], iss: str, kid: str, alg: str
    ) -> None:
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
            raise AuthenticationFailed(f"key {kid[:100]!r} of {iss} is not for {alg} signatures")
        if jwk.get("kty") != _KTY_OF[alg[:2]]:
            raise AuthenticationFailed(f"key {kid[:100]!r} of {iss} is not a key for {alg}")
        cached = self._prepared.get((iss, kid, alg))
        if cached is not None and cached.jwk is jwk:
            prepared = cached
        else:
            prepared = _prepare(jwk, alg, f"key {kid[:100]!r} of {iss}")
            self._prepared[(iss, kid, alg)] = prepared
        if not prepared.algorithm.verify(jws.signed, prepared.key, jws.signature):
            raise AuthenticationFailed(f"bad signature (issuer {iss}, kid {kid[:100]!r})")

    def _check_claims(
        self, claims: dict[str, Any], issuer: TrustedIssuer, audience: str
    ) -> str | None:
        now, leeway = self._clock(), self.policy.leeway
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and _same_url(a, audience) for a in auds):
            raise AuthenticationFailed(f"aud does not match the URL called ({audience})")
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", now)
        if not (_is_number(exp) and _is_number(iat) and _is_number(nbf)):
            raise AuthenticationFailed("the token lacks a numeric exp or iat")
        if now > exp + leeway:
            raise AuthenticationFailed("the token has expired")
        if iat > now + leeway or nbf > now + leeway:
            raise AuthenticationFailed("the token is not yet valid")
        if exp - iat > self.policy.max_lifetime:
            raise AuthenticationFailed("the token's lifetime is longer than allowed")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthenticationFailed("the token has no jti")
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthenticationFailed("the tenant claim is not a string")
        if issuer.tenants is not None and tenant is None:
            raise AuthenticationFailed(f"the token has no tenant, which {issuer.iss} requires")
        if issuer.tenants is not None and tenant not in issuer.tenants:
            raise AuthenticationFailed(
                f"tenant {str(tenant)[:100]!r} is not allowed for {issuer.iss}"
            )
        return tenant


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
