"""JWT helpers for tests: make ES384/RS384 (and other) key pairs, publish JWK Sets, sign tokens
as a CDS client would (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients)."""

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


@dataclass(frozen=True)
class SigningKey:
    alg: str
    kid: str
    private_key: Any

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        to_jwk = ECAlgorithm.to_jwk if self.alg.startswith("ES") else RSAAlgorithm.to_jwk
        jwk: dict[str, Any] = to_jwk(public, as_dict=True)
        return jwk | {"kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, "typ": "JWT"} | header
        headers = {key: value for key, value in headers.items() if value is not None}
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=headers)


def generate_key(alg: str = "ES384", kid: str | None = None) -> SigningKey:
    if alg.startswith("ES"):
        private = ec.generate_private_key(CURVES[alg])
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(alg, kid or f"test-{alg.lower()}-{uuid.uuid4().hex[:8]}", private)


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def claims(iss: str, aud: str | list[str], *, lifetime: int = 300, **extra: Any) -> dict[str, Any]:
    """Claims of a fresh, valid client token for a call to `aud`."""
    now = int(time.time())
    base = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    return base | extra
