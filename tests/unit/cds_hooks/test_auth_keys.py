"""Caller JWT verification, the keys: unusable and published private keys, kids and key types,
an issuer's key source (inline, a file, or allow-listed `jku` URLs fetched from a real server,
cached, refreshed on rotation and never flooded), and the spec's example token. The checks of
the token itself are in `test_auth_tokens.py`."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cds_hooks.auth import CallerIdentity, JwtPolicy, JwtVerifier, TrustedIssuer
from cds_hooks.errors import AuthenticationFailed
from tests.support import web
from tests.support.server import serve
from tests.support.tokens import SigningKey, claims, generate_key, jwks
from tests.unit.cds_hooks.auth_support import AUD, ISS, _signed_raw, refusal, verifier, verify


def test_a_p256_key_cannot_verify_es384(keys: dict[str, SigningKey]) -> None:
    # ES384 means P-384: a P-256 key published for ES384 is refused, even with a signature
    # that key made.
    p256 = keys["ES256"]
    v = verifier(TrustedIssuer(iss=ISS, jwks={"keys": [p256.public_jwk() | {"alg": "ES384"}]}))
    header = {"alg": "ES384", "typ": "JWT", "kid": p256.kid}
    why = refusal(v, _signed_raw(p256.private_key, header, claims(ISS, AUD)))
    assert why.startswith(f"key {p256.kid!r} of {ISS} is unusable for ES384"), why


def test_a_short_rsa_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = SigningKey("RS384", "weak", rsa.generate_private_key(65537, 1024))
    v = verifier(TrustedIssuer(iss=ISS, jwks=jwks(weak)))
    header = {"alg": "RS384", "typ": "JWT", "kid": "weak"}
    why = refusal(v, _signed_raw(weak.private_key, header, claims(ISS, AUD)))
    assert why.startswith(f"key 'weak' of {ISS} is refused") and "1024 bits" in why, why


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_published_private_key_is_refused(keys: dict[str, SigningKey], alg: str) -> None:
    # A JWK Set holding the private part means the client's key is no longer secret.
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    key = keys[alg]
    to_jwk = RSAAlgorithm.to_jwk if alg.startswith("RS") else ECAlgorithm.to_jwk
    private = to_jwk(key.private_key, as_dict=True) | {"kid": key.kid, "alg": alg}
    assert "d" in private
    v = verifier(TrustedIssuer(iss=ISS, jwks={"keys": [private]}))
    why = refusal(v, key.sign(claims(ISS, AUD)))
    assert "published with its private part" in why, why


def test_unknown_kid(trusting: JwtVerifier) -> None:
    token = generate_key("ES384", kid="rotated-away").sign(claims(ISS, AUD))
    assert "is not a known key" in refusal(trusting, token)


def test_key_of_another_type(keys: dict[str, SigningKey]) -> None:
    # An RS384 header naming an EC key: the key type must fit alg.
    ec_jwk = keys["ES384"].public_jwk() | {"kid": "k"}
    del ec_jwk["alg"]
    v = verifier(TrustedIssuer(iss=ISS, jwks={"keys": [ec_jwk]}))
    token = SigningKey("RS384", "k", keys["RS384"].private_key).sign(claims(ISS, AUD))
    assert "is not a key for RS384" in refusal(v, token)


def test_issuer_needs_a_key_source() -> None:
    with pytest.raises(ValueError, match="needs jwks"):
        TrustedIssuer(iss=ISS)


def test_jwks_from_file(tmp_path: Path, keys: dict[str, SigningKey]) -> None:
    path = tmp_path / "client.jwks.json"
    path.write_text(json.dumps(jwks(keys["RS384"])))
    v = verifier(TrustedIssuer(iss=ISS, jwks_file=path))
    assert verify(v, keys["RS384"].sign(claims(ISS, AUD))).kid == keys["RS384"].kid
    with pytest.raises(ValueError, match="cannot read JWK Set file"):
        verifier(TrustedIssuer(iss=ISS, jwks_file=tmp_path / "missing.json"))


# --- jku --------------------------------------------------------------------------------------


class JwksHost:
    """A real HTTP server publishing a JWK Set, counting fetches."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.failing = False
        self.app = Starlette(routes=[Route("/jwks.json", self._jwks)])

    async def _jwks(self, _request: Request) -> JSONResponse:
        self.fetches += 1
        if self.failing:
            return JSONResponse({"error": "down"}, status_code=500)
        return JSONResponse(jwks(*self.keys))


def jku_verifier(
    http: httpx.AsyncClient, url: str, now: list[float], **policy: float
) -> JwtVerifier:
    """Trusting keys published at `url` only, on a clock the test moves."""
    return verifier(
        TrustedIssuer(iss=ISS, jku=(url,)),
        http=http,
        policy=JwtPolicy(**policy),
        clock=lambda: now[0],
    )


@pytest.fixture
def jwks_host() -> Iterator[tuple[JwksHost, str]]:
    host = JwksHost()
    with serve(host.app, access_log=False) as base:
        yield host, f"{base}/jwks.json"


def test_jku_allow_listed_is_fetched_cached_and_refreshed_on_rotation(
    jwks_host: tuple[JwksHost, str],
) -> None:
    host, url = jwks_host
    first = generate_key("ES384")
    host.keys = [first]
    now = [time.time()]

    async def run() -> None:
        async with web.AsyncClient() as http:
            await scenario(http)

    async def scenario(http: httpx.AsyncClient) -> None:
        v = jku_verifier(http, url, now, jwks_refresh_interval=60)
        for _ in range(3):
            await v.verify(first.sign(claims(ISS, AUD), jku=url), AUD)
        assert host.fetches == 1  # cached

        rotated = generate_key("ES384")
        host.keys = [first, rotated]
        with pytest.raises(AuthenticationFailed, match="not a known key"):
            # Just fetched: an unknown kid does not trigger a refetch within the interval.
            await v.verify(rotated.sign(claims(ISS, AUD), jku=url), AUD)
        assert host.fetches == 1
        now[0] += 61
        await v.verify(rotated.sign(claims(ISS, AUD), jku=url), AUD)
        assert host.fetches == 2
        # Without a jku header, the allow-listed set is the out-of-band key source.
        await v.verify(rotated.sign(claims(ISS, AUD)), AUD)
        assert host.fetches == 2

    asyncio.run(run())


def test_a_key_replaced_under_the_same_kid_is_used_once_the_set_is_refetched(
    jwks_host: tuple[JwksHost, str],
) -> None:
    # Verifying keys are prepared once per JWK: a refetched set must not leave the old one in use.
    host, url = jwks_host
    old = generate_key("ES384")
    new = SigningKey("ES384", old.kid, generate_key("ES384").private_key)
    host.keys = [old]
    now = [time.time()]

    async def run() -> None:
        async with web.AsyncClient() as http:
            v = jku_verifier(http, url, now, jwks_cache_ttl=100)
            await v.verify(old.sign(claims(ISS, AUD)), AUD)
            host.keys = [new]
            now[0] += 101  # the cached set is stale: fetched again on the next call
            await v.verify(new.sign(claims(ISS, AUD)), AUD)
            assert host.fetches == 2
            with pytest.raises(AuthenticationFailed, match="bad signature"):
                await v.verify(old.sign(claims(ISS, AUD)), AUD)

    asyncio.run(run())


def test_a_failing_key_server_is_asked_at_most_once_per_refresh_interval(
    jwks_host: tuple[JwksHost, str],
) -> None:
    """Tokens with made-up kids must not turn us into a flood against the client's key server."""
    host, url = jwks_host
    host.failing = True
    now = [time.time()]
    key = generate_key("ES384")

    async def run() -> None:
        async with web.AsyncClient() as http:
            v = jku_verifier(http, url, now, jwks_refresh_interval=60)
            for _ in range(20):
                with pytest.raises(AuthenticationFailed, match="not a known key"):
                    await v.verify(key.sign(claims(ISS, AUD), jku=url), AUD)
                now[0] += 1  # time passes, but less than the interval in all
            assert host.fetches == 1
            # Back up, and the interval has passed: the next unknown kid fetches again.
            host.failing = False
            host.keys = [key]
            now[0] += 41
            await v.verify(key.sign(claims(ISS, AUD), jku=url), AUD)
            assert host.fetches == 2

    asyncio.run(run())


def test_jku_not_allow_listed(jwks_host: tuple[JwksHost, str], keys: dict[str, SigningKey]) -> None:
    host, url = jwks_host
    host.keys = [keys["ES384"]]
    v = verifier(TrustedIssuer(iss=ISS, jwks=jwks(keys["ES384"]), jku=("https://ehr.example/k",)))
    token = keys["ES384"].sign(claims(ISS, AUD), jku=url)
    assert "is not allow-listed" in refusal(v, token)  # never fetched: no client connection
    assert host.fetches == 0  # never fetched a URL we do not trust


def test_the_spec_example_token_verifies_at_its_time(reference_dir: Path) -> None:
    # The spec's complete example (header ex21, claims ex22, key set ex23). Its jku host cannot be
    # reached from here, so a MockTransport stands in for it: a test double for the network only.
    spec = reference_dir / "cds-hooks" / "spec" / "index-2.0.1.md"
    token = next(
        line.split("Bearer ")[1].strip()
        for line in spec.read_text(encoding="utf-8").splitlines()
        if line.startswith("Authorization: Bearer ey")
    )
    key_set = json.loads(
        (reference_dir / "cds-hooks/examples/v2.0.1-ex23-valid.json").read_text(encoding="utf-8")
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=key_set))
    iss, jku = "https://fhir-ehr.example.com/", "https://fhir-ehr.example.com/jwk_uri"
    v = verifier(
        TrustedIssuer(iss=iss, jku=(jku,)),
        http=web.AsyncClient(transport=transport),
        policy=JwtPolicy(max_lifetime=10**9),
        clock=lambda: 1311280970 + 60,
    )
    caller = verify(v, token, "https://cds.example.org/cds-services/some-service")
    assert caller == CallerIdentity(
        iss=iss, kid="example-kid", tenant="2ddd6c3a-8e9a-44c6-a305-52111ad302a2"
    )
