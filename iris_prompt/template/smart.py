"""SMART App Launch (EHR launch) for the recording template: the OAuth client side.

https://hl7.org/fhir/smart-app-launch/app-launch.html. Plain functions over httpx and PyJWT:

- `discover(http, iss)`: the EHR's `.well-known/smart-configuration`;
- `pkce_pair()`, `authorize_url(...)`: the redirect to the EHR's authorize endpoint (PKCE S256,
  `state`, `nonce`, `aud`, `launch`);
- `exchange_code(...)`: the code for tokens, server side, as a public client (PKCE alone) or a
  confidential one (`private_key_jwt`);
- `verify_id_token(...)`: the OpenID Connect ID token (signature from the EHR's JWKS, issuer,
  audience, expiry, nonce), for the `fhirUser`;
- `staff_user(fhir_user)`: the fhirUser when it is practice staff (Practitioner or
  PractitionerRole), the only users the template signs in.

No function here logs or raises with a token, a code or a patient identifier in its message.
"""

import base64
import hashlib
import json
import re
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

__all__ = [
    "SCOPES",
    "SmartClient",
    "SmartConfig",
    "SmartError",
    "TokenSet",
    "authorize_url",
    "discover",
    "exchange_code",
    "load_client",
    "pkce_pair",
    "same_secret",
    "staff_user",
    "verify_id_token",
]

# What the template needs: the launch context, who the user is, the patient's banner, and the
# writes of what it files (SMART v1 scopes, which v2 servers accept too).
SCOPES = (
    "launch openid fhirUser patient/Patient.read patient/Observation.write "
    "patient/Condition.write patient/ServiceRequest.write patient/QuestionnaireResponse.write"
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


# Who the template signs in: practice staff. SMART's fhirUser may also be a Patient or a
# RelatedPerson (a patient-facing app, which must never open this template) or a Person (who
# cannot be an Observation's performer or a QuestionnaireResponse's author in R4).
STAFF_TYPES = ("Practitioner", "PractitionerRole")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id


class SmartError(Exception):
    """A launch step failed; the message is safe to show and to log (no token, no patient)."""


@dataclass(frozen=True)
class SmartConfig:
    """The endpoints an EHR publishes for its FHIR base URL `iss`."""

    iss: str
    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None


@dataclass(frozen=True)
class SmartClient:
    """This service as the EHR knows it. `private_jwk` (a private JWK with `kid` and `alg`) makes
    it a confidential client using private_key_jwt; without it, a public client."""

    client_id: str
    private_jwk: Mapping[str, Any] | None = None
    scopes: str = SCOPES


def load_client(client_id: str | None, private_key_file: Path | None) -> SmartClient | None:
    """The configured client, its private key read from its file; None when not configured."""
    if client_id is None:
        return None
    key = None
    if private_key_file is not None:
        try:
            key = json.loads(private_key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            # Never the parser's text: it may quote the private key.
            said = getattr(error, "strerror", None) or type(error).__name__
            raise ValueError(f"IRIS_SMART_PRIVATE_KEY_FILE cannot be read: {said}") from None
        if not isinstance(key, dict) or not {"kid", "alg", "d"} <= key.keys():
            raise ValueError("IRIS_SMART_PRIVATE_KEY_FILE must hold a private JWK with kid and alg")
    return SmartClient(client_id, private_jwk=key)


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    expires_at: float
    patient: str
    encounter: str | None
    id_token: str | None
    scope: str


async def _json(http: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any) -> Any:
    try:
        response = await http.request(method, url, timeout=TIMEOUT, **kwargs)
    except httpx.HTTPError as error:
        raise SmartError(f"{what}: the EHR could not be reached ({type(error).__name__})") from None
    if response.status_code != 200:
        raise SmartError(f"{what}: the EHR answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SmartError(f"{what}: the EHR's answer is not JSON") from None


async def discover(http: httpx.AsyncClient, iss: str) -> SmartConfig:
    """The EHR's SMART configuration for the FHIR base URL `iss`."""
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    data = await _json(http, "GET", url, "SMART configuration")
    if not isinstance(data, dict):
        raise SmartError("SMART configuration: not a JSON object")
    try:
        authorize, token = data["authorization_endpoint"], data["token_endpoint"]
    except KeyError as missing:
        raise SmartError(f"SMART configuration: no {missing.args[0]}") from None
    methods = data.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartError("SMART configuration: the EHR does not support PKCE S256")
    jwks_uri = data.get("jwks_uri")
    # An https EHR's endpoints are https too: the code, the client's assertion, the tokens and
    # the keys that vouch for the user never cross the network in clear. (A plain-http `iss` is
    # allowed in local mode only; its endpoints may be plain too.)
    schemes = ("https://",) if iss.startswith("https://") else ("https://", "http://")
    for endpoint in (authorize, token, *([jwks_uri] if jwks_uri is not None else [])):
        if not isinstance(endpoint, str) or not endpoint.startswith(schemes):
            said = "an https" if len(schemes) == 1 else "an http(s)"
            raise SmartError(f"SMART configuration: an endpoint is not {said} URL")
    return SmartConfig(
        iss=iss,
        issuer=data.get("issuer"),
        authorization_endpoint=authorize,
        token_endpoint=token,
        jwks_uri=jwks_uri,
    )


def same_secret(sent: str, expected: str) -> bool:
    """A constant-time comparison of a value the browser or the EHR sent with ours. As bytes:
    `secrets.compare_digest` raises TypeError on a str beyond ASCII, which anyone can send.

    >>> same_secret("\u00e9", "abc"), same_secret("abc", "abc")
    (False, True)
    """
    return secrets.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    config: SmartConfig,
    client: SmartClient,
    *,
    redirect_uri: str,
    launch: str,
    state: str,
    challenge: str,
    nonce: str,
) -> str:
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "launch": launch,
            "scope": client.scopes,
            "state": state,
            "aud": config.iss,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in config.authorization_endpoint else "?"
    return config.authorization_endpoint + separator + query


def client_assertion(client: SmartClient, token_endpoint: str) -> str:
    """The private_key_jwt assertion (SMART asymmetric client authentication)."""
    if client.private_jwk is None:
        raise ValueError("a public client has no assertion")
    key = jwt.PyJWK(dict(client.private_jwk))
    now = int(time.time())
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": token_endpoint,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    header = {"kid": client.private_jwk["kid"], "typ": "JWT"}
    return jwt.encode(claims, key.key, algorithm=client.private_jwk["alg"], headers=header)


async def exchange_code(
    http: httpx.AsyncClient,
    config: SmartConfig,
    client: SmartClient,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
) -> TokenSet:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if client.private_jwk is None:
        form["client_id"] = client.client_id
    else:
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = client_assertion(client, config.token_endpoint)
    data = await _json(
        http,
        "POST",
        config.token_endpoint,
        "token exchange",
        data=form,
        headers={"Accept": "application/json"},
    )
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise SmartError("token exchange: no access token")
    if str(data.get("token_type", "")).lower() != "bearer":
        raise SmartError("token exchange: not a bearer token")
    patient = data.get("patient")
    if not isinstance(patient, str) or not patient:
        raise SmartError("token exchange: the EHR gave no patient in context")
    encounter = data.get("encounter")
    expires_in = data.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
    return TokenSet(
        access_token=data["access_token"],
        expires_at=time.time() + lifetime,
        patient=patient,
        encounter=encounter if isinstance(encounter, str) and encounter else None,
        id_token=data.get("id_token") if isinstance(data.get("id_token"), str) else None,
        scope=str(data.get("scope", "")),
    )


def staff_user(fhir_user: object) -> str | None:
    """`fhir_user` (an ID token's fhirUser claim, a relative or absolute resource URL) when it
    names a Practitioner or PractitionerRole; None otherwise.

    >>> staff_user("Practitioner/gp1"), staff_user("https://ehr.example/fhir/PractitionerRole/r1")
    ('Practitioner/gp1', 'https://ehr.example/fhir/PractitionerRole/r1')
    >>> staff_user("Patient/p1") is None and staff_user(None) is None
    True
    """
    if not isinstance(fhir_user, str):
        return None
    kind, _, resource_id = fhir_user.rpartition("/")
    if kind.rpartition("/")[2] in STAFF_TYPES and FHIR_ID.fullmatch(resource_id):
        return fhir_user
    return None


async def verify_id_token(
    http: httpx.AsyncClient, config: SmartConfig, id_token: str, *, client_id: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims, once its signature (the EHR's JWKS), issuer, audience, expiry and
    nonce are checked."""
    if not config.jwks_uri:
        raise SmartError("ID token: the EHR publishes no jwks_uri")
    jwks = await _json(http, "GET", config.jwks_uri, "EHR keys")
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
        header = jwt.get_unverified_header(id_token)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise SmartError("ID token: the EHR's keys or the token header cannot be read") from None
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.key_id == kid]
    issuer = config.issuer or config.iss
    for key in candidates:
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=client_id,
                issuer=issuer,
                options={"require": ["iss", "aud", "exp", "sub"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as error:
            raise SmartError(f"ID token refused ({type(error).__name__})") from None
        if not same_secret(str(claims.get("nonce", "")), nonce):
            raise SmartError("ID token refused (nonce)")
        return claims
    raise SmartError("ID token refused (signature)")
