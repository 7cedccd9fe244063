"""Who may write and read the register: SMART Backend Services, system to system.

    POST /oauth/token   grant_type=client_credentials
                        client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
                        client_assertion=<JWT signed with the client's private key>
                        scope=system/Flag.write system/Flag.read
    -> {"access_token": "...", "token_type": "bearer", "expires_in": 300, "scope": "..."}

A registered client (`RegisterClient`, IRIS_REGISTER_CLIENTS) has an id, the ODS code of its
organisation, the scopes it may be granted, and its public keys, configured as the trusted CDS
clients' are: inline (`jwks`), in a file (`jwks_file`) or at allow-listed JWK Set URLs (`jku`).
The client assertion is checked by the protocol layer's `JwtVerifier` (asymmetric algorithms
only, `kid`, `typ` JWT, signature, `aud` the token URL, `exp` within 5 minutes of `iat`, `jti`
never seen before), and its `sub` must be its `iss`, the client id (SMART Backend Services,
https://hl7.org/fhir/smart-app-launch/backend-services.html).

The access token is this service's own: a JWT it signs and alone checks (HS256 under a key
derived from the store's pseudonym secret, which every worker shares), naming the client, its
organisation and the scopes granted, valid `TOKEN_SECONDS`. (The CDS Hooks rule against HMAC
is about tokens a client signs for us to check; here signer and checker are the same service.)
A client removed from the configuration loses its tokens at once: each check looks it up.
"""

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from cds_hooks import InMemoryReplayCache
from cds_hooks.auth import JwtPolicy, JwtVerifier
from cds_hooks.errors import AuthenticationFailed, ServiceBusy
from cds_hooks.replay import ReplayCache
from iris_prompt.register.clients import READ, SCOPES, WRITE, RegisterClient
from iris_prompt.register.repository import Accessor

__all__ = [
    "READ",
    "SCOPES",
    "TOKEN_SECONDS",
    "WRITE",
    "Granted",
    "RegisterClient",
    "TokenError",
    "TokenService",
    "token_key",
]

log = logging.getLogger(__name__)

TOKEN_SECONDS = 300
# SMART Backend Services: a client assertion's exp is at most five minutes after its iat.
ASSERTION_MAX_SECONDS = 300.0
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_AUDIENCE = "iris-prompt-register"


def token_key(pseudonym_key: bytes) -> bytes:
    """The access tokens' signing key, derived from the store's shared secret."""
    return hmac.new(pseudonym_key, b"iris-prompt register access token", hashlib.sha256).digest()


class TokenError(Exception):
    """An OAuth 2.0 error response (RFC 6749 5.2): `error` code and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class Granted:
    """A checked access token: who holds it and what it may do."""

    accessor: Accessor
    scopes: frozenset[str]


class TokenService:
    def __init__(
        self,
        clients: Sequence[RegisterClient],
        *,
        key: bytes,
        http: httpx.AsyncClient,
        policy: JwtPolicy | None = None,
        clock: Callable[[], float] = time.time,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        """`replay_cache`: where assertion ids are remembered; the deployment's shared one
        (Redis) when there are several workers or instances, else one for this process."""
        self.clients = {client.client_id: client for client in clients}
        self.key = key
        self.clock = clock
        base = policy or JwtPolicy()
        self.verifier = JwtVerifier(
            [client.issuer() for client in clients],
            http=http,
            policy=JwtPolicy(
                algorithms=base.algorithms,
                leeway=base.leeway,
                max_lifetime=ASSERTION_MAX_SECONDS,
                jwks_cache_ttl=base.jwks_cache_ttl,
                jwks_refresh_interval=base.jwks_refresh_interval,
            ),
            replay_cache=replay_cache or InMemoryReplayCache(clock=clock),
            clock=clock,
        )

    async def issue(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        """The token response for a client-credentials request, or TokenError."""
        if form.get("grant_type") != "client_credentials":
            raise TokenError("unsupported_grant_type", "grant_type must be client_credentials")
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            raise TokenError(
                "invalid_request", f"client_assertion_type {ASSERTION_TYPE} and client_assertion"
            )
        try:
            caller = await self.verifier.verify(assertion, token_url)
        except AuthenticationFailed as failed:
            log.warning("register token refused: %s", failed)
            raise TokenError("invalid_client", "the client assertion is not valid", 401) from None
        except ServiceBusy:
            raise TokenError("temporarily_unavailable", "try again shortly", 503) from None
        claims = jwt.decode(assertion, options={"verify_signature": False})  # verified above
        if claims.get("sub") != caller.iss:
            log.warning("register token refused: sub is not the client id (%s)", caller.iss)
            raise TokenError("invalid_client", "the client assertion's sub must be its iss", 401)
        client = self.clients[caller.iss]
        asked = (form.get("scope") or "").split()
        refused = [s for s in asked if s not in client.scopes]
        if not asked or refused:
            raise TokenError(
                "invalid_scope", f"scope: request one or more of {' '.join(client.scopes)}"
            )
        now = int(self.clock())
        scope = " ".join(dict.fromkeys(asked))
        token = jwt.encode(
            {
                "iss": token_url,
                "aud": TOKEN_AUDIENCE,
                "sub": client.client_id,
                "org": client.organisation,
                "scope": scope,
                "iat": now,
                "exp": now + TOKEN_SECONDS,
                "jti": str(uuid.uuid4()),
            },
            self.key,
            algorithm="HS256",
        )
        log.info("register token issued to %s (%s)", client.client_id, scope)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": scope,
        }

    def check(self, authorization: str | None) -> Granted | None:
        """The grant an `Authorization: Bearer` header carries, or None if it carries none
        of ours (missing, malformed, expired, forged, or its client no longer registered)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            claims = jwt.decode(
                token.strip(),
                self.key,
                algorithms=["HS256"],
                audience=TOKEN_AUDIENCE,
                options={"require": ["exp", "sub", "scope"]},
                leeway=0,
            )
        except jwt.PyJWTError:
            return None
        client = self.clients.get(claims["sub"])
        if client is None or claims.get("org") != client.organisation:
            return None
        scopes = frozenset(str(claims["scope"]).split()) & frozenset(client.scopes)
        return Granted(Accessor(client.client_id, client.organisation), scopes)
