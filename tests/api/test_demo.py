"""`iris-prompt demo` against a real running service: a newcomer sees the seed case's cards."""

import datetime

import pytest
from fastapi import FastAPI

from iris_prompt import demo
from iris_prompt.app import create_app
from iris_prompt.settings import Settings
from tests.api.engine_support import engine_registry
from tests.conftest import bundled_codesets, make_settings
from tests.support.server import serve, serve_built
from tests.support.tokens import SigningKey


def test_demo_prints_the_enquiry_and_mappa_cards_from_a_local_service() -> None:
    app = create_app(
        Settings(local_mode=True), registry=engine_registry(), codesets=bundled_codesets()
    )
    with serve(app, access_log=False) as base:
        # The engine's clock is fixed at 26 November 2026: the demo's dates follow it.
        status, text = demo.main(base, today=datetime.date(2026, 11, 26))
    assert status == 0, text
    assert "card 1 of 2: INFO" in text and "card 2 of 2: CRITICAL" in text
    assert "- Anxiety disorder, 27 September 2026" in text
    # The intro says when they were coded, truly: the depression is 150 days back.
    assert "- Depressive disorder, 29 June 2026" in text
    assert "coded in the last six months" in text and "this year" not in text
    assert "(the patient's partner) is subject to MAPPA" in text
    assert "- to a known adult: very high" in text and "aged 8" in text
    assert "[suggestion] Asked: patient declined to answer" in text


def test_demo_explains_a_service_that_wants_a_jwt(es384_key: SigningKey) -> None:
    def build(base_url: str) -> FastAPI:
        settings = make_settings(es384_key, public_base_url=base_url)
        return create_app(settings, registry=engine_registry(), codesets=bundled_codesets())

    with serve_built(build, access_log=False) as (base_url, _app):
        status, text = demo.main(base_url)
    assert status == 1 and "local mode (make serve)" in text


def test_demo_explains_when_no_service_is_running() -> None:
    status, text = demo.main("http://127.0.0.1:9")
    assert status == 1 and "Start it first: make serve" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://iris:s3cret@127.0.0.1:9", "http://127.0.0.1:9"),
        ("http://:s3cret@127.0.0.1:9/base", "http://127.0.0.1:9/base"),
        ("http://[s3cret@127.0.0.1:9", "http://127.0.0.1:9"),
        ("http://iris:s3/cret@127.0.0.1:9", "http://127.0.0.1:9"),  # a "/" in the password
        ("127.0.0.1:9", "the URL given"),
    ],
)
def test_demo_never_prints_a_password_given_in_the_url(url: str, shown: str) -> None:
    status, text = demo.main(url)
    assert status == 1 and f"at {shown} (" in text
    assert "s3cret" not in text and "s3/cret" not in text
