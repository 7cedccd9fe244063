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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import httpx

from cds_hooks.errors import AuthenticationFailed
from cds_hooks.jwks import JwksFetcher, TrustedIssuer, keys_by_kid
from cds_hooks.jws import (
    ALLOWED_ALGORITHMS,
    KEY_TYPE_OF,
    Jws,
    JwtPolicy,
    PreparedKey,
    parse_jws,
    prepare_key,
)
from cds_hooks.replay import InMemoryReplayCache, ReplayCache

# The verifier and what configures it, in one import (the keys live in jwks.py, the token
# format and policy in jws.py).
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


@dataclass(frozen=True)
class CallerIdentity:
    """The verified CDS client of one call. Safe to log."""

    iss: str
    kid: str
    tenant: str | None = None
    fhir_servers: tuple[str, ...] = ()


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


def _shown(value: object, limit: int) -> str:
    """A caller-sent value fit for a log line: strings cut to `limit`, anything else by type
    (a deeply nested list would not even survive `str`)."""
    return repr(value[:limit]) if isinstance(value, str) else f"of type {type(value).__name__}"


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
        self._prepared: dict[tuple[str, str, str], PreparedKey] = {}

    async def verify(self, token: str, audience: str) -> CallerIdentity:
        """Verify `token` for a call to `audience` (the URL called); returns who called."""
        jws = parse_jws(token)
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

    def _check_signature(self, jws: Jws, jwk: dict[str, Any], iss: str, kid: str, alg: str) -> None:
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
            raise AuthenticationFailed(f"key {kid[:100]!r} of {iss} is not for {alg} signatures")
        if jwk.get("kty") != KEY_TYPE_OF[alg[:2]]:
            raise AuthenticationFailed(f"key {kid[:100]!r} of {iss} is not a key for {alg}")
        cached = self._prepared.get((iss, kid, alg))
        if cached is not None and cached.jwk is jwk:
            prepared = cached
        else:
            prepared = prepare_key(jwk, alg, f"key {kid[:100]!r} of {iss}")
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
