"""Shared by the caller JWT tests (`test_auth_tokens.py`, `test_auth_keys.py`): the issuer and
audience, a verifier and its verdicts, and `_signed_raw`, which signs tokens PyJWT would
refuse to sign."""

import asyncio
import base64
import json
from typing import Any

import pytest

from cds_hooks.auth import CallerIdentity, JwtVerifier, TrustedIssuer
from cds_hooks.errors import AuthenticationFailed
from tests.support import web

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
