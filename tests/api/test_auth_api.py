"""Caller authentication over HTTP: on by default, for every call, 401 with an empty body."""

import time

import httpx
import pytest

from cds_hooks import InMemoryReplayCache
from iris_prompt.app import create_app
from tests.conftest import TEST_ISSUER, LiveService, make_registry, make_settings, patient_view
from tests.support import web
from tests.support.server import serve, serve_built
from tests.support.services import EVERY_FEATURE_ID
from tests.support.tokens import SigningKey, claims

PATH = f"/cds-services/{EVERY_FEATURE_ID}"
BODY = patient_view(prefetch={"patient": None, "conditions": None, "household": None})


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.content == b""


@pytest.mark.parametrize("path", ["/cds-services", PATH, f"{PATH}/feedback"])
def test_every_call_needs_a_bearer_jwt(live_service: LiveService, path: str) -> None:
    if path == "/cds-services":
        assert_refused(live_service.get(path, headers={}))
    else:
        assert_refused(live_service.post(path, BODY, headers={}))
        assert_refused(
            live_service.post(path, BODY, headers={"Authorization": "Basic dXNlcjpwdw=="})
        )


def test_the_401_comes_before_anything_about_the_service(live_service: LiveService) -> None:
    assert_refused(live_service.post("/cds-services/unknown", BODY, headers={}))


def test_es384_and_rs384_tokens_are_accepted(
    live_service: LiveService, rs384_key: SigningKey
) -> None:
    assert live_service.post(PATH, BODY).status_code == 200
    rs = rs384_key.sign(claims(TEST_ISSUER, live_service.base_url + PATH))
    assert (
        live_service.post(PATH, BODY, headers={"Authorization": f"Bearer {rs}"}).status_code == 200
    )


def test_aud_is_the_url_called(live_service: LiveService) -> None:
    discovery_token = live_service.headers("/cds-services")
    assert_refused(live_service.post(PATH, BODY, headers=discovery_token))


def test_expired_and_replayed(live_service: LiveService) -> None:
    now = int(time.time())
    assert_refused(
        live_service.post(
            PATH, BODY, headers=live_service.headers(PATH, iat=now - 900, exp=now - 600)
        )
    )
    once = live_service.headers(PATH)
    assert live_service.post(PATH, BODY, headers=once).status_code == 200
    assert_refused(live_service.post(PATH, BODY, headers=once))


def test_public_base_url_sets_the_expected_aud(es384_key: SigningKey) -> None:
    public = "https://iris.example.nhs.uk/prompt"
    app = create_app(make_settings(es384_key, public_base_url=public), registry=make_registry())
    with serve(app) as base_url:

        def call(aud: str) -> httpx.Response:
            token = es384_key.sign(claims(TEST_ISSUER, aud))
            return web.post(
                base_url + PATH, json=BODY, headers={"Authorization": f"Bearer {token}"}
            )

        assert_refused(
            call(base_url + PATH)
        )  # behind a proxy, the local URL is not what was called
        response = call(public + PATH)
        assert response.status_code == 200
        assert "base=https://iris.example.nhs.uk/prompt" in response.json()["cards"][0]["detail"]


def test_a_spoofed_host_header_does_not_change_the_expected_aud(live_service: LiveService) -> None:
    """A token another CDS service received (its own URL as aud) cannot be replayed to us by
    sending that service's host name in the Host header."""
    other = "https://other-cds.example.org"
    token = live_service.key.sign(claims(TEST_ISSUER, other + PATH))
    headers = {
        "Authorization": f"Bearer {token}",
        "Host": "other-cds.example.org",
        "X-Forwarded-Proto": "https",
    }
    assert_refused(live_service.client.post(PATH, json=BODY, headers=headers))


def test_a_full_replay_cache_answers_503_and_keeps_refusing_replays(es384_key: SigningKey) -> None:
    """Past its size the service refuses new tokens for a while rather than forget live ones."""
    holder: dict[str, str] = {}

    def build(base_url: str) -> object:
        holder["base"] = base_url
        settings = make_settings(es384_key, public_base_url=base_url)
        cache = InMemoryReplayCache(maxsize=1)
        return create_app(settings, registry=make_registry(), replay_cache=cache)

    with serve_built(build) as (base_url, _app):

        def call(token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return web.post(base_url + PATH, json=BODY, headers=headers)

        first = es384_key.sign(claims(TEST_ISSUER, base_url + PATH))
        assert call(first).status_code == 200
        busy = call(es384_key.sign(claims(TEST_ISSUER, base_url + PATH)))
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "10"
        assert busy.json()["issue"][0]["code"] == "transient"
        assert_refused(call(first))  # still remembered: a replay, not a new token
