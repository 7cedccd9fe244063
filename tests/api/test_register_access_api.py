"""Who may write and read the register over HTTP: SMART Backend Services tokens and their
scopes, a client writing only its own organisation's flags, refused assertions (expired,
replayed, wrongly signed, wrong subject or audience, too long-lived), and keys fetched
from an allow-listed JWK Set URL.

The register runs in the real app, called in process, on SQLite and on a real PostgreSQL
(`store`, from tests/api/conftest.py); partners sign in with SMART Backend Services
assertions (tests/api/register_support.py).
"""

import time
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from iris_prompt.register.api import MAX_TOKEN_BYTES
from iris_prompt.register.clients import READ, WRITE
from iris_prompt.store.service import Store
from tests.api.register_support import (
    POLICE,
    PROBATION,
    Partner,
    mappa_flag,
    police,
    probation,
    publish,
    put,
    register_service,
    stored_counts,
)
from tests.support.server import serve
from tests.support.tokens import SigningKey, generate_key, jwks

pytestmark = pytest.mark.slow


def test_a_client_writes_only_its_own_organisations_flags(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation, police) as svc:
        forged = svc.client.post(
            "/fhir/Flag", json=mappa_flag(organisation=PROBATION), headers=svc.auth(police)
        )
        created = publish(svc, probation, mappa_flag())
        taken_over = put(
            svc, police, created | {"author": mappa_flag(organisation=POLICE)["author"]}, "1"
        )
        changed = put(svc, police, created, "1")
        read = svc.client.get(f"/fhir/Flag/{created['id']}", headers=svc.auth(police))
    assert forged.status_code == 403
    assert taken_over.status_code == 403 and changed.status_code == 403
    assert read.status_code == 200  # any partner with read scope may read
    assert stored_counts(store) == (1, 1)


def test_a_read_only_token_cannot_write_and_no_token_cannot_read(
    es384_key: SigningKey, store: Store
) -> None:
    reader = Partner("co-ordinator", "MAPPA9", generate_key("ES384"), scopes=(READ,))
    with register_service(es384_key, store, reader) as svc:
        read_only = svc.auth(reader, READ)
        write = svc.client.post(
            "/fhir/Flag", json=mappa_flag(organisation="MAPPA9"), headers=read_only
        )
        wider = svc.token_response(svc.form(reader, f"{READ} {WRITE}"))
        anonymous = svc.client.get("/fhir/Flag")
        forged = svc.client.get("/fhir/Flag", headers={"Authorization": "Bearer abc.def.ghi"})
        search = svc.client.get("/fhir/Flag", headers=read_only)
    assert write.status_code == 403
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    assert anonymous.status_code == 401 and forged.status_code == 401
    assert search.status_code == 200


def test_expired_replayed_and_wrongly_signed_assertions_are_refused(
    es384_key: SigningKey,
    store: Store,
) -> None:
    impostor = Partner(probation.client_id, PROBATION, generate_key("ES384"))
    with register_service(es384_key, store, probation) as svc:
        now = int(time.time())
        expired = svc.token_response(svc.form(probation, iat=now - 600, exp=now - 300))
        form = svc.form(probation)
        first = svc.token_response(form)
        replayed = svc.token_response(form)
        wrong_key = svc.token_response(svc.form(impostor))
        wrong_sub = svc.token_response(svc.form(probation, sub="someone-else"))
        wrong_aud = svc.token_response(svc.form(probation, aud="https://elsewhere.example/token"))
        too_long = svc.token_response(svc.form(probation, exp=now + 3600))
        grant = svc.token_response(form | {"grant_type": "password"})
    assert first.status_code == 200
    assert first.json()["token_type"] == "bearer" and first.json()["expires_in"] == 300
    for refused in (expired, replayed, wrong_key, wrong_sub, wrong_aud, too_long):
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert "access_token" not in refused.json()
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_an_oversized_token_request_is_refused_as_it_streams_in(
    es384_key: SigningKey, store: Store
) -> None:
    """Anyone may post to /oauth/token, which used to read a body of any size (300 MiB took the
    process from 366 MB to 1.6 GB). A streamed body (no Content-Length) is read no further than
    just past MAX_TOKEN_BYTES, and refused as an OAuth error."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1024):  # 16 MiB
            sent += 1
            yield b"a" * (16 * 1024)

    with register_service(es384_key, store, probation) as svc:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        refused = svc.client.post("/oauth/token", content=chunks(), headers=headers)
        declared = svc.client.post("/oauth/token", content=b"a" * (MAX_TOKEN_BYTES + 1))
        form = svc.form(probation)
        assert len(urllib.parse.urlencode(form)) < MAX_TOKEN_BYTES // 8
        granted = svc.token_response(form)
    for response in (refused, declared):
        assert response.status_code == 413
        assert response.json() == {
            "error": "invalid_request",
            "error_description": f"over {MAX_TOKEN_BYTES} bytes",
        }
        assert response.headers["cache-control"] == "no-store"
    assert sent <= MAX_TOKEN_BYTES // (16 * 1024) + 2, sent
    assert granted.status_code == 200


def test_a_client_whose_keys_are_at_an_allow_listed_jwks_url_gets_a_token(
    es384_key: SigningKey, store: Store
) -> None:
    key = generate_key("ES384")
    keys = FastAPI()
    keys.get("/jwks.json")(lambda: jwks(key))
    with serve(keys, access_log=False) as url:
        partner = Partner("probation-keys-online", "PROB3", key, jku=(f"{url}/jwks.json",))
        with register_service(es384_key, store, partner) as svc:
            answer = svc.token_response(svc.form(partner))
            published = publish(svc, partner, mappa_flag(organisation="PROB3"))
    assert answer.status_code == 200, answer.text
    assert published["author"]["identifier"]["value"] == "PROB3"
