"""The SMART client pieces: ID token checks (against keys served over real HTTP), the
private_key_jwt assertion, session idle expiry and the settings that configure them."""

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from iris_prompt.settings import Settings
from iris_prompt.template.sessions import SessionStore
from iris_prompt.template.smart import (
    SmartClient,
    SmartConfig,
    SmartError,
    client_assertion,
    discover,
    load_client,
    pkce_pair,
    verify_id_token,
)
from tests.support import web
from tests.support.server import serve
from tests.support.tokens import SigningKey, claims, generate_key, jwks

EHR_KEY = generate_key("RS384")


@pytest.fixture(scope="module")
def ehr_keys() -> Iterator[str]:
    async def keys(_request: Any) -> JSONResponse:
        return JSONResponse(jwks(EHR_KEY))

    with serve(Starlette(routes=[Route("/keys", keys)]), access_log=False) as base:
        yield base + "/keys"


def config(jwks_uri: str) -> SmartConfig:
    return SmartConfig("https://ehr.example/fhir", None, "https://a", "https://t", jwks_uri)


def check(jwks_uri: str, token: str, nonce: str = "n1") -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with web.AsyncClient() as http:
            return await verify_id_token(
                http, config(jwks_uri), token, client_id="iris", nonce=nonce
            )

    return asyncio.run(run())


def id_token(key: SigningKey = EHR_KEY, **extra: Any) -> str:
    body = claims("https://ehr.example/fhir", "iris", sub="u", nonce="n1") | extra
    return key.sign(body)


def test_an_id_token_from_the_ehr_gives_the_user(ehr_keys: str) -> None:
    assert check(ehr_keys, id_token(fhirUser="Practitioner/1"))["fhirUser"] == "Practitioner/1"


@pytest.mark.parametrize(
    "token",
    [
        id_token(aud="another-app"),
        id_token(iss="https://elsewhere.example/fhir"),
        id_token(exp=1),
        id_token(generate_key("RS384", kid=EHR_KEY.kid)),  # another key, same kid
    ],
)
def test_an_id_token_not_for_us_or_not_from_the_ehr_is_refused(ehr_keys: str, token: str) -> None:
    with pytest.raises(SmartError) as refused:
        check(ehr_keys, token)
    assert "eyJ" not in str(refused.value)


def test_an_id_token_with_another_nonce_is_refused(ehr_keys: str) -> None:
    with pytest.raises(SmartError, match="nonce"):
        check(ehr_keys, id_token(), nonce="n2")


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(verifier) <= 128


def test_the_private_key_jwt_assertion_is_signed_for_the_token_endpoint() -> None:
    key = generate_key("ES384")
    private = jwt.algorithms.ECAlgorithm.to_jwk(key.private_key, as_dict=True)
    client = SmartClient("iris", private_jwk=private | {"kid": key.kid, "alg": "ES384"})
    assertion = client_assertion(client, "https://ehr.example/token")
    public = jwt.PyJWK(key.public_jwk())
    decoded = jwt.decode(
        assertion, public.key, algorithms=["ES384"], audience="https://ehr.example/token"
    )
    assert decoded["iss"] == decoded["sub"] == "iris" and decoded["jti"]
    assert jwt.get_unverified_header(assertion)["kid"] == key.kid


def test_a_session_ends_after_its_idle_time_and_each_use_restarts_it() -> None:
    now = [0.0]
    store = SessionStore(idle_seconds=60, timer=lambda: now[0])
    session = store.new()
    now[0] = 50
    assert store.get(session.id) is session
    now[0] = 100  # 50 s since its last use
    assert store.get(session.id) is session
    now[0] = 161
    assert store.get(session.id) is None


def test_a_smart_client_needs_issuers_and_exactly_one_way_to_authenticate(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"kid": "k", "alg": "ES384", "d": "x"}))
    with pytest.raises(ValidationError, match="IRIS_SMART_ISSUERS"):
        Settings(local_mode=True, smart_client_id="iris", smart_public_client=True)
    with pytest.raises(ValidationError, match="not both"):
        Settings(
            local_mode=True,
            smart_client_id="iris",
            smart_issuers=["https://ehr.example/fhir"],
            smart_public_client=True,
            smart_private_key_file=key,
        )
    with pytest.raises(ValidationError, match="https"):
        Settings(
            smart_client_id="iris",
            smart_issuers=["http://ehr.example/fhir"],
            smart_public_client=True,
        )
    settings = Settings(
        smart_client_id="iris",
        smart_issuers=["https://ehr.example/fhir"],
        smart_private_key_file=key,
    )
    client = load_client(settings.smart_client_id, settings.smart_private_key_file)
    assert client is not None and client.private_jwk is not None
    assert load_client(None, None) is None


def discovered(iss: str, published: dict[str, Any]) -> SmartConfig:
    async def run() -> SmartConfig:
        transport = httpx.MockTransport(lambda _request: httpx.Response(200, json=published))
        async with httpx.AsyncClient(transport=transport) as http:
            return await discover(http, iss)

    return asyncio.run(run())


ENDPOINTS = {
    "authorization_endpoint": "https://ehr.example/authorize",
    "token_endpoint": "https://ehr.example/token",
    "jwks_uri": "https://ehr.example/keys",
}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_an_https_ehr_whose_endpoint_is_plain_http_is_refused(endpoint: str) -> None:
    # The code, the client assertion, the tokens and the keys that vouch for the user would
    # cross the network in clear.
    published = ENDPOINTS | {endpoint: ENDPOINTS[endpoint].replace("https:", "http:")}
    with pytest.raises(SmartError, match="https"):
        discovered("https://ehr.example/fhir", published)
    assert discovered("https://ehr.example/fhir", ENDPOINTS).jwks_uri == ENDPOINTS["jwks_uri"]
    # A plain-http EHR (local mode only; Settings refuses it otherwise) may publish http ones.
    plain = {name: url.replace("https:", "http:") for name, url in ENDPOINTS.items()}
    assert discovered("http://ehr.example/fhir", plain).token_endpoint == plain["token_endpoint"]
