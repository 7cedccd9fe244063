"""Caller JWT verification: each refusal the spec and the issue name, and the valid tokens."""

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cds_hooks.auth import (
    CallerIdentity,
    JwtPolicy,
    JwtVerifier,
    TrustedIssuer,
    bearer_token,
)
from cds_hooks.errors import AuthenticationFailed
from tests.support import web
from tests.support.server import serve
from tests.support.tokens import SigningKey, claims, generate_key, jwks

ISS = "https://ehr.example"
AUD = "https://iris.example/cds-services/iris-domestic-abuse-prompt"


def verifier(*issuers: TrustedIssuer, **kwargs: Any) -> JwtVerifier:
    return JwtVerifier(issuers, http=kwargs.pop("http", web.AsyncClient()), **kwargs)


def verify(v: JwtVerifier, token: str, audience: str = AUD) -> CallerIdentity:
    return asyncio.run(v.verify(token, audience))


def refusal(v: JwtVerifier, token: str, audience: str = AUD) -> str:
    with pytest.raises(AuthenticationFailed) as error:
        verify(v, token, audience)
    return error.value.message


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: generate_key(alg) for alg in ("ES384", "RS384", "ES256", "RS512")}


@pytest.fixture
def trusting(keys: dict[str, SigningKey]) -> JwtVerifier:
    return verifier(TrustedIssuer(iss=ISS, jwks=jwks(*keys.values())))


@pytest.mark.parametrize("alg", ["ES384", "RS384", "ES256", "RS512"])
def test_valid_token_is_accepted(
    trusting: JwtVerifier, keys: dict[str, SigningKey], alg: str
) -> None:
    caller = verify(trusting, keys[alg].sign(claims(ISS, AUD)))
    assert caller == CallerIdentity(iss=ISS, kid=keys[alg].kid)


def test_aud_may_be_a_list_and_trailing_slash_is_ignored(
    trusting: JwtVerifier, keys: dict[str, SigningKey]
) -> None:
    assert verify(trusting, keys["ES384"].sign(claims(ISS, ["https://x.example", AUD + "/"])))


def test_expired(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    now = int(time.time())
    token = keys["ES384"].sign(claims(ISS, AUD) | {"iat": now - 600, "exp": now - 300})
    assert refusal(trusting, token) == "the token has expired"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_not_yet_valid(trusting: JwtVerifier, keys: dict[str, SigningKey], claim: str) -> None:
    now = int(time.time())
    token = keys["ES384"].sign(claims(ISS, AUD) | {claim: now + 600, "exp": now + 900})
    assert refusal(trusting, token) == "the token is not yet valid"


def test_small_clock_skew_is_tolerated(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    now = int(time.time())
    assert verify(trusting, keys["ES384"].sign(claims(ISS, AUD) | {"iat": now + 10}))
    assert verify(
        trusting, keys["ES384"].sign(claims(ISS, AUD) | {"exp": now - 10, "iat": now - 60})
    )


def test_wrong_aud(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    token = keys["ES384"].sign(claims(ISS, "https://iris.example/cds-services/other"))
    assert refusal(trusting, token).startswith("aud does not match")


def test_unknown_iss(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    token = keys["ES384"].sign(claims("https://stranger.example", AUD))
    assert "is not trusted" in refusal(trusting, token)


def test_bad_signature(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    impostor = SigningKey("ES384", keys["ES384"].kid, generate_key("ES384").private_key)
    assert refusal(trusting, impostor.sign(claims(ISS, AUD))).startswith("bad signature")


def test_tampered_payload(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    header, _payload, signature = keys["ES384"].sign(claims(ISS, AUD)).split(".")
    other = base64.urlsafe_b64encode(json.dumps(claims(ISS, AUD)).encode()).rstrip(b"=").decode()
    assert refusal(trusting, f"{header}.{other}.{signature}").startswith("bad signature")


def test_tampered_header(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    # The signature covers the header as sent: a header edited after signing is refused.
    token = keys["RS384"].sign(claims(ISS, AUD))
    _header, payload, signature = token.split(".")
    header = jwt.get_unverified_header(token) | {"x5u": "https://attacker.example"}
    assert refusal(trusting, f"{_segment(header)}.{payload}.{signature}").startswith(
        "bad signature"
    )


def _signed_raw(
    private_key: Any, header: dict[str, Any] | str, payload: dict[str, Any] | str
) -> str:
    """A token signed without PyJWT's own checks (they would refuse to sign these); header and
    payload as objects or as JSON text."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from jwt.utils import der_to_raw_signature

    def part(data: dict[str, Any] | str) -> str:
        text = data if isinstance(data, str) else json.dumps(data)
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(payload)}".encode()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        der = private_key.sign(signing_input, ec.ECDSA(hashes.SHA384()))
        signature = der_to_raw_signature(der, private_key.curve)
    else:
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA384())
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


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


DEEP = "[" * 1000 + "]" * 1000  # nested as deep as orjson allows: even str() of it fails


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ('"alg":["ES384"],"typ":"JWT"', "alg of type list is not allowed"),
        ('"alg":{"name":"ES384"},"typ":"JWT"', "alg of type dict is not allowed"),
        ('"alg":"ES384","typ":["JWT"]', "the token header typ is missing or not JWT"),
        ('"alg":"ES384","typ":' + DEEP, "the token header typ is missing or not JWT"),
        ('"alg":"ES384","typ":"JWT","jku":' + DEEP, "jku of type list is not allow-listed"),
    ],
)
def test_header_values_of_the_wrong_type_are_refused_not_a_crash(
    trusting: JwtVerifier, keys: dict[str, SigningKey], members: str, why: str
) -> None:
    key = keys["ES384"]
    header = f'{{"kid":"{key.kid}",{members}}}'
    assert refusal(trusting, _signed_raw(key.private_key, header, claims(ISS, AUD))).startswith(why)


def test_an_issuer_of_the_wrong_type_is_refused_not_a_crash(
    trusting: JwtVerifier, keys: dict[str, SigningKey]
) -> None:
    key = keys["ES384"]
    payload = json.dumps({k: v for k, v in claims(ISS, AUD).items() if k != "iss"})
    payload = payload[:-1] + ', "iss": ' + DEEP + "}"
    header = {"alg": "ES384", "typ": "JWT", "kid": key.kid}
    assert refusal(trusting, _signed_raw(key.private_key, header, payload)) == (
        "issuer of type list is not trusted"
    )


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


def test_critical_header_extensions_are_refused(
    trusting: JwtVerifier, keys: dict[str, SigningKey]
) -> None:
    # Validly signed, but it asks us to understand an extension: RFC 7515 says refuse.
    token = keys["ES384"].sign(claims(ISS, AUD), crit=["exp"])
    assert refusal(trusting, token) == "the token header names extensions (crit or b64)"


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}."


def test_alg_none(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT", "kid": keys["ES384"].kid}, claims(ISS, AUD))
    assert refusal(trusting, token) == "alg 'none' is not allowed"


def test_hs256_signed_with_the_public_key(
    trusting: JwtVerifier, keys: dict[str, SigningKey]
) -> None:
    # The classic confusion attack: HMAC keyed with the client's public key.
    from cryptography.hazmat.primitives import serialization

    public_pem = (
        keys["RS384"]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": keys["RS384"].kid}
    signing_input = _unsigned(header, claims(ISS, AUD))[:-1]
    import hashlib
    import hmac

    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert refusal(trusting, token) == "alg 'HS256' is not allowed"


def test_missing_kid(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    token = jwt.encode(claims(ISS, AUD), keys["ES384"].private_key, algorithm="ES384")
    assert refusal(trusting, token) == "the token header has no kid"


@pytest.mark.parametrize("typ", ["", "at+jwt"])
def test_typ_must_be_jwt(trusting: JwtVerifier, keys: dict[str, SigningKey], typ: str) -> None:
    token = keys["ES384"].sign(claims(ISS, AUD), typ=typ)  # "" makes PyJWT leave typ out
    assert ("typ" in jwt.get_unverified_header(token)) is bool(typ)
    assert refusal(trusting, token) == "the token header typ is missing or not JWT"


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


def test_replayed_jti(trusting: JwtVerifier, keys: dict[str, SigningKey]) -> None:
    token = keys["ES384"].sign(claims(ISS, AUD))
    assert verify(trusting, token)
    assert refusal(trusting, token).startswith("jti replayed")
    again = keys["ES384"].sign(claims(ISS, AUD, jti="same"))
    verify(trusting, again)
    assert refusal(trusting, keys["ES384"].sign(claims(ISS, AUD, jti="same"))).startswith(
        "jti replayed"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"jti": None}, "the token has no jti"),
        ({"exp": None}, "the token lacks a numeric exp or iat"),
        ({"iat": "yesterday"}, "the token lacks a numeric exp or iat"),
        ({"exp": int(time.time()) + 7200}, "the token's lifetime is longer than allowed"),
    ],
)
def test_required_claims(
    trusting: JwtVerifier, keys: dict[str, SigningKey], changes: dict[str, Any], reason: str
) -> None:
    payload = {k: v for k, v in (claims(ISS, AUD) | changes).items() if v is not None}
    assert refusal(trusting, keys["ES384"].sign(payload)) == reason


def test_tenant_allow_list(keys: dict[str, SigningKey]) -> None:
    v = verifier(TrustedIssuer(iss=ISS, jwks=jwks(keys["ES384"]), tenants=("practice-a",)))
    caller = verify(v, keys["ES384"].sign(claims(ISS, AUD, tenant="practice-a")))
    assert caller.tenant == "practice-a"
    assert "tenant 'practice-b' is not allowed" in refusal(
        v, keys["ES384"].sign(claims(ISS, AUD, tenant="practice-b"))
    )
    assert "the token has no tenant" in refusal(v, keys["ES384"].sign(claims(ISS, AUD)))


def _segment(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("not-a-jwt", "one segment"),
        ("a.b.c", "segments that are not base64url JSON"),
        (f"{_segment({'alg': 'ES384'})}.{_segment({})}", "two segments"),
        (f"{_segment({'alg': 'ES384'})}.{_segment({})}.c.d", "four segments"),
        (f"{_segment({'alg': 'ES384'})}.{_segment({})}.a+b/c=", "base64, not base64url"),
        (f"{_segment(['ES384'])}.{_segment({})}.abc", "a header that is not an object"),
        (f"{_segment({'alg': 'ES384'})}.{_segment('claims')}.abc", "claims not an object"),
        (f"{_segment({'alg': 'ES384'})}.{'A' * 20_000}.abc", "over 16 KiB"),
        (f"{_segment({'alg': 'ES384'})}.{_segment({})}.abcde", "a signature of 4n+1 chars"),
    ],
)
def test_malformed_tokens(trusting: JwtVerifier, token: str, why: str) -> None:
    assert refusal(trusting, token) == "the token is not a well-formed JWT", why


def test_bearer_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in (None, "", "Basic abc", "Bearer", "Bearer  "):
        with pytest.raises(AuthenticationFailed):
            bearer_token(bad)


def test_policy_refuses_symmetric_and_none() -> None:
    for alg in ("HS256", "none", "PS384"):
        with pytest.raises(ValueError, match="not allowed"):
            JwtPolicy(algorithms=frozenset({"ES384", alg}))


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
