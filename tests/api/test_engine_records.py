"""The prompt engine over real HTTP, a fixture record per rule: the cards each record gives
(with Read v2 terms, the known-abuse review, a related person's MAPPA flag, an expired
flag), and every fixture record valid FHIR R4B.

The service runs in process with caller JWTs checked (`service`, from tests/api/conftest.py);
household members' Patients and Flags come from a real FHIR server
(tests/support/fhir_server.py) with the caller's token. Records are hand-made, UK-coded
(SNOMED CT and Read v2) and fictional: tests/fixtures/records.
"""

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.api.engine_support import RECORDS, call, cards_of, fhir_with, kinds
from tests.conftest import LiveService

pytestmark = pytest.mark.slow

# --- a scenario per rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("read-v2-depression", ["enquiry"]),
        ("old-anxiety-only", []),
        ("recent-enquiry", []),
        ("trigger-after-enquiry", ["enquiry"]),
        ("known-abuse", ["known-abuse"]),
        ("aged-15", []),
        ("entered-in-error", []),
        ("expired-flag", ["enquiry"]),
        ("mappa-only", ["mappa"]),
    ],
)
def test_scenarios(service: LiveService, name: str, expected: list[str]) -> None:
    with fhir_with(name) as fhir:
        cards = cards_of(call(service, name, fhir))
    assert kinds(cards) == expected


def test_read_v2_entries_are_shown_by_their_sourced_terms(service: LiveService) -> None:
    with fhir_with("read-v2-depression") as fhir:
        (card,) = cards_of(call(service, "read-v2-depression", fhir))
    assert "- Single major depressive episode, 3 August 2026" in card["detail"]
    assert "- Anxiety state unspecified, 1 February 2026" in card["detail"]
    # No household Group and no related person: nothing could be checked, and the card says so.
    assert "**No household members are recorded**" in card["detail"]
    assert "checked: none found" not in card["detail"]


def test_known_abuse_card_reviews_safety(service: LiveService) -> None:
    with fhir_with("known-abuse") as fhir:
        (card,) = cards_of(call(service, "known-abuse", fhir))
    assert card["indicator"] == "warning"
    assert "- Victim of domestic abuse, 5 May 2021" in card["detail"]
    assert "- Depressive disorder, 5 May 2026" in card["detail"]
    assert "Is the abuse still happening?" in card["detail"] and "DASH" in card["detail"]
    # A safety review is no first enquiry: no one-click "asked, nothing disclosed" that would
    # record a routine enquiry and hold this card back; the template is linked instead.
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert [link["url"].removeprefix(service.base_url) for link in card["links"]] == [
        "/template",
        "/rules#rule-4",
    ]


def test_a_related_persons_mappa_flag_by_relationship_with_medium_risk(
    service: LiveService,
) -> None:
    with fhir_with("mappa-only") as fhir:
        (card,) = cards_of(call(service, "mappa-only", fhir))
    assert card["indicator"] == "warning"
    # The husband is a RelatedPerson the household Group does not list: a relationship, not a
    # shared home (issue 11 point 17).
    assert (
        "**A person linked to this patient's record (their husband) is subject to MAPPA**"
        in (card["detail"])
    )
    # An adult patient with a MAPPA card and no trigger: she may be the known adult at risk
    # (issue 11 point 13): how to ask, the helpline and the template link.
    assert "**The patient may be the known adult at risk.**" in card["detail"]
    assert "only when they are on their own" in card["detail"]
    assert "Example helpline 0100 000 0003" in card["detail"]
    assert [link["url"].removeprefix(service.base_url) for link in card["links"]] == [
        "/template",
        "/rules#rule-6",
    ]
    assert (
        "- to a known adult: medium" in card["detail"]
        and "- to the public: medium" in card["detail"]
    )
    assert "aged 13" in card["detail"]
    assert "Pat" not in card["detail"] and "9990000158" not in card["detail"]


def test_expired_flag_shows_nothing_about_it(service: LiveService) -> None:
    with fhir_with("expired-flag") as fhir:
        (card,) = cards_of(call(service, "expired-flag", fhir))
    assert "MAPPA flag" not in card["detail"].replace("no MAPPA flag in force", "")
    assert "1 household member checked: no MAPPA flag in force." in card["detail"]


# --- the fixture records themselves -------------------------------------------------------


@pytest.mark.parametrize("path", sorted(RECORDS.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_records_are_valid_fhir_r4b(path: Any) -> None:
    Bundle.model_validate_json(path.read_bytes())
