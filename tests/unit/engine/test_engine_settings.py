"""The engine's settings reach the rules, the cards and the household lookup."""

import datetime

import pytest

from cds_hooks.fhir import FhirClient, FhirLimits
from iris_prompt.engine.service import Engine
from iris_prompt.settings import Settings
from tests.conftest import bundled_codesets
from tests.support import web


def test_environment_settings_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_ENQUIRY_WINDOW_DAYS", "180")
    monkeypatch.setenv("IRIS_HOUSEHOLD_BUDGET_SECONDS", "0.5")
    monkeypatch.setenv("IRIS_HOUSEHOLD_CACHE_SECONDS", "30")
    monkeypatch.setenv("IRIS_CONTACT_MAPPA", "Example MAPPA unit, 0100 000 0009")
    engine = Engine.from_settings(bundled_codesets(), Settings(local_mode=True))
    assert engine.rules.enquiry_window == datetime.timedelta(days=180)
    assert engine.rules.minimum_age == 16
    assert engine.lookup.budget == 0.5 and engine.lookup.cache_seconds == 30
    assert engine.cards.mappa_contact == "Example MAPPA unit, 0100 000 0009"
    assert engine.cards.safeguarding_lead == "your practice safeguarding lead"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IRIS_HOUSEHOLD_BUDGET_SECONDS", "0"),
        ("IRIS_ENQUIRY_WINDOW_DAYS", "-1"),
        ("IRIS_CONTACT_SAFEGUARDING_LEAD", ""),
    ],
)
def test_unusable_engine_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        Settings(local_mode=True)


def test_cache_scopes_differ_by_server_and_token_and_never_hold_the_token() -> None:
    def scope(server: str, token: str) -> tuple[str, str]:
        return FhirClient(web.AsyncClient(), server, token, FhirLimits()).cache_scope

    a = scope("https://gp-a.example/fhir/", "token-1")
    assert a == scope("https://gp-a.example/fhir", "token-1")
    assert a != scope("https://gp-b.example/fhir", "token-1")
    assert a != scope("https://gp-a.example/fhir", "token-2")
    assert "token-1" not in repr(a)
