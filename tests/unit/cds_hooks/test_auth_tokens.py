"""Caller JWT verification, the token itself: the valid tokens, and each refusal the spec names
for its claims (audience, issuer, times, jti, tenant), its header (alg, typ, kid, crit), its
signature and its shape, with the bearer header and the algorithm policy. The key sets it is
checked against are in `test_auth_keys.py`."""

import base64
import json
import time
from typing import Any

import jwt
import pytest

from cds_hooks.auth import CallerIdentity, JwtPolicy, JwtVerifier, TrustedIssuer, bearer_token
from cds_hooks.errors import AuthenticationFailed
from tests.support.tokens import SigningKey, claims, generate_key, jwks
from tests.unit.cds_hooks.auth_support import AUD, ISS, _signed_raw, refusal, verifier, verify


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
