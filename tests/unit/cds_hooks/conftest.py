"""The caller JWT tests' signing keys (one per accepted algorithm, made once per worker) and a
verifier trusting them all."""

import pytest

from cds_hooks.auth import JwtVerifier, TrustedIssuer
from tests.support.tokens import SigningKey, generate_key, jwks
from tests.unit.cds_hooks.auth_support import ISS, verifier


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {alg: generate_key(alg) for alg in ("ES384", "RS384", "ES256", "RS512")}


@pytest.fixture
def trusting(keys: dict[str, SigningKey]) -> JwtVerifier:
    return verifier(TrustedIssuer(iss=ISS, jwks=jwks(*keys.values())))
