"""The engine over real HTTP: which codes prompt (issue: common codes, CTV3, QS116 indicators).

Each record is an adult with nothing else that would prompt, sent as a GP system prefetches it
(or, where said, fetched by the service from a real FHIR server). The service's clock is fixed
at 26 November 2026, 10:00 in London.
"""

from typing import Any

import pytest

from tests.api.engine_support import call_with, cards_of, fhir_serving, kinds
from tests.conftest import LiveService
from tests.support.records import (
    DEPRESSED_MOOD,
    HISTORY_OF_DOMESTIC_VIOLENCE,
    HISTORY_OF_DOMESTIC_VIOLENCE_CTV3,
    SINGLE_MAJOR_DEPRESSIVE_EPISODE_CTV3,
    TERMINATION_OF_PREGNANCY,
    URINARY_TRACT_INFECTION,
    coding,
    condition,
    observation,
    patient,
    procedure,
)

ADULT = patient("p1", "1990-03-01")


def cards_for(service: LiveService, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_of(call_with(service, [ADULT, *entries], None, pid="p1"))


def test_a_snomed_ct_symptom_code_prompts(service: LiveService) -> None:
    """GP records code low mood mostly as a symptom: "Depressed mood" prompts like a diagnosis."""
    cards = cards_for(service, observation(DEPRESSED_MOOD, "2026-10-01"))
    assert kinds(cards) == ["enquiry"]
    assert "Depressed mood, 1 October 2026" in cards[0]["detail"]


def test_a_ctv3_trigger_prompts(service: LiveService) -> None:
    """A SystmOne record coded in CTV3 only."""
    cards = cards_for(service, condition(SINGLE_MAJOR_DEPRESSIVE_EPISODE_CTV3, "2026-09-01"))
    assert kinds(cards) == ["enquiry"]
    assert "Single major depressive episode, 1 September 2026" in cards[0]["detail"]


def test_a_systmone_abuse_history_gives_the_known_abuse_card(service: LiveService) -> None:
    """A SystmOne entry carries its CTV3 code and its SNOMED CT concept: abuse is known, so the
    clinician reviews safety instead of asking for the first time, even with a trigger."""
    history = condition(HISTORY_OF_DOMESTIC_VIOLENCE_CTV3, "2021-05-01", rid="c2")
    history["code"]["coding"].append(coding(HISTORY_OF_DOMESTIC_VIOLENCE))
    cards = cards_for(service, history, observation(DEPRESSED_MOOD, "2026-10-01"))
    assert kinds(cards) == ["known-abuse"]


def test_a_ctv3_only_abuse_history_is_not_recognised_as_documented(service: LiveService) -> None:
    """No sourced CTV3 list of domestic abuse codes exists, so the known-abuse set holds no CTV3
    code (codesets/README.md says so): an abuse history coded in CTV3 alone is not known abuse,
    and the patient with a trigger gets a first-enquiry card. When a sourced list is added, this
    test fails and the expectation becomes the known-abuse card."""
    history = condition(HISTORY_OF_DOMESTIC_VIOLENCE_CTV3, "2021-05-01", rid="c2")
    cards = cards_for(service, history, observation(DEPRESSED_MOOD, "2026-10-01"))
    assert kinds(cards) == ["enquiry"]


@pytest.mark.parametrize("prefetched", [True, False])
def test_a_termination_recorded_as_a_procedure_prompts(
    service: LiveService, prefetched: bool
) -> None:
    """Read from the `procedures` prefetch, or fetched by the service when a GP system did not
    prefetch it."""
    resources = [ADULT, procedure(TERMINATION_OF_PREGNANCY, "2026-08-14")]
    with fhir_serving(resources) as fhir:
        response = call_with(service, resources, fhir, pid="p1", prefetched=prefetched)
    cards = cards_of(response)
    assert kinds(cards) == ["enquiry"]
    assert "Termination of pregnancy, 14 August 2026" in cards[0]["detail"]


@pytest.mark.parametrize(
    ("status", "performed", "expected"),
    [
        ("completed", "2026-08-14", ["enquiry"]),
        ("not-done", "2026-08-14", []),  # planned or refused, not performed
        ("entered-in-error", "2026-08-14", []),
        ("completed", "2025-08-14", []),  # more than a year ago: outside the window
    ],
)
def test_a_procedure_counts_only_when_performed_within_the_window(
    service: LiveService, status: str, performed: str, expected: list[str]
) -> None:
    entry = procedure(TERMINATION_OF_PREGNANCY, performed, status=status)
    assert kinds(cards_for(service, entry)) == expected


def utis(*days: str) -> list[dict[str, Any]]:
    return [condition(URINARY_TRACT_INFECTION, day, rid=f"uti{n}") for n, day in enumerate(days)]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (("2026-02-01", "2026-06-01"), []),  # two in a year: common, not recurrence
        (("2026-02-01", "2026-06-01", "2026-10-01"), ["enquiry"]),  # three: recurrent
        (("2025-10-01", "2026-06-01", "2026-10-01"), []),  # the first is over a year ago
        (("2026-06-01", "2026-10-01", "2026-10-01"), []),  # two entries of one episode
    ],
)
def test_urinary_tract_infections_prompt_from_the_third_in_a_year(
    service: LiveService, days: tuple[str, ...], expected: list[str]
) -> None:
    cards = cards_for(service, *utis(*days))
    assert kinds(cards) == expected
    if expected:
        assert cards[0]["detail"].count("Urinary tract infectious disease") == 3
