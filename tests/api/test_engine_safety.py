"""The engine over real HTTP: the hazards a clinical review found (issue 11), one scenario each.

As test_engine_scenarios.py: the seed case (a mother of 34 with anxiety and depression, her
partner with a MAPPA flag, their son of 8) changed one fact at a time, served by a real FHIR
server, the service's clock fixed at 26 November 2026, 10:00 in London. The node ids of these
tests are the controls the hazard log names.
"""

import copy
import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.responses import JSONResponse

from tests.api.engine_support import (
    NOW,
    SERVICE_PATH,
    Fhir,
    cards_of,
    kinds,
    prefetch_for,
    request_body,
    seed_cards,
    seed_case,
)
from tests.conftest import LiveService
from tests.support.fhir_server import FhirTestServer
from tests.support.records import (
    ABUSE_VICTIM_IN_HOUSEHOLD,
    ENQUIRY_MADE,
    ENQUIRY_NOT_MADE,
    HISTORY_OF_DOMESTIC_VIOLENCE,
    VICTIM_OF_DOMESTIC_ABUSE,
    observation,
)
from tests.support.server import serve

Resources = dict[str, dict[str, Any]]
TODAY = NOW.date()
# From codesets/known-abuse.csv
SUBJECT_OF_MARAC = ("http://snomed.info/sct", "758941000000108")
AT_RISK_OF_DOMESTIC_VIOLENCE = ("http://snomed.info/sct", "707087005")
ALREADY_KNOWN = "**Domestic abuse is already recorded** for this patient"


def ago(days: int) -> str:
    return (TODAY - datetime.timedelta(days=days)).isoformat()


def without_triggers(seed: Resources) -> Resources:
    """The seed case with none of the mother's trigger entries: only the household remains."""
    for rid in ("seed-anxiety", "seed-depression", "seed-old-anxiety", "seed-visit"):
        seed.pop(rid, None)
    return seed


def mum(code: tuple[str, str], date: str, rid: str) -> dict[str, Any]:
    return observation(code, date, patient="seed-mum", rid=rid)


def post(
    service: LiveService,
    resources: Resources,
    fhir: Fhir | None,
    *,
    pid: str = "seed-mum",
    **kw: Any,
) -> list[dict[str, Any]]:
    """The cards for `resources` prefetched as a GP system would (less any key in `drop`)."""
    drop = kw.pop("drop", ())
    prefetch = prefetch_for(list(resources.values()), pid)
    for key in drop:
        del prefetch[key]
    body = request_body(pid, prefetch=prefetch, fhir_server=fhir.url if fhir else None, **kw)
    return cards_of(service.post(SERVICE_PATH, body))


@contextmanager
def fhir_without_group_search(resources: Resources, status: int) -> Iterator[Fhir]:
    """A real FHIR server that refuses `Group` searches (as a server that does not support
    `Group?member=`, or fails on it, does) and answers everything else."""
    server = FhirTestServer(list(resources.values()))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith("/Group"):
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported"}],
            }
            await JSONResponse(outcome, status_code=status)(scope, receive, send)
            return
        await server.app(scope, receive, send)

    with serve(app, access_log=False) as url:
        yield Fhir(server, url)


# --- 1. Another person's entries ---------------------------------------------------------------


def test_another_persons_prefetched_entries_are_ignored_and_counted_without_identifiers(
    service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seed = seed_case()
    prefetch = prefetch_for(list(seed.values()), "seed-mum")
    # The partner's "History of domestic abuse" arrives in the mother's observations.
    theirs = observation(HISTORY_OF_DOMESTIC_VIOLENCE, ago(60), patient="seed-partner", rid="x")
    prefetch["observations"]["entry"].append({"resource": theirs})
    with fhir_without_group_search(seed, 404) as fhir:
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        cards = cards_of(service.post(SERVICE_PATH, body))
    assert kinds(cards) == ["enquiry", "mappa"]
    assert ALREADY_KNOWN not in cards[0]["detail"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("ignored 1 coded entries about another person" in m for m in logged)
    assert not any("seed-partner" in m or "seed-mum" in m for m in logged)


def test_another_persons_entries_in_a_fetched_search_are_ignored(service: LiveService) -> None:
    """The record is not prefetched: the service searches for it, and a lenient server (one that
    matches the patient's reference anywhere in `subject`) returns another person's entry."""
    seed = seed_case()
    also_about_mum = {
        "url": "https://example.invalid/x",
        "valueReference": {"reference": "Patient/seed-mum"},
    }
    theirs = observation(HISTORY_OF_DOMESTIC_VIOLENCE, ago(60), patient="seed-partner", rid="x")
    theirs["subject"]["extension"] = [also_about_mum]
    seed["x"] = theirs
    with fhir_without_group_search(seed, 404) as fhir:
        body = request_body("seed-mum", prefetch=None, fhir_server=fhir.url)
        cards = cards_of(service.post(SERVICE_PATH, body))
        fetched = [r.path for r in fhir.server.requests]
    assert "/Observation" in fetched  # it was a fetched search
    assert kinds(cards)[0] == "enquiry"
    assert ALREADY_KNOWN not in cards[0]["detail"]


# --- 6. Duplicates and wording ------------------------------------------------------------------


def test_copies_of_an_entry_are_listed_once_and_push_no_other_entry_off_the_card(
    service: LiveService,
) -> None:
    seed = seed_case()
    for n in range(6):
        seed[f"copy{n}"] = copy.deepcopy(seed["seed-depression"]) | {"id": f"copy{n}"}
    enquiry = seed_cards(service, seed)[0]
    assert enquiry["detail"].count("- Depressive disorder,") == 1
    assert "- Anxiety disorder," in enquiry["detail"]
    assert "and 1 more" not in enquiry["detail"] and "more\n" not in enquiry["detail"]


def test_an_enquiry_card_for_abuse_in_the_household_alone_has_no_empty_why_now(
    service: LiveService,
) -> None:
    seed = without_triggers(seed_case())
    seed["hh"] = mum(ABUSE_VICTIM_IN_HOUSEHOLD, ago(30), "hh")
    enquiry = seed_cards(service, seed)[0]
    assert kinds([enquiry]) == ["enquiry"]
    assert "Why now." not in enquiry["detail"]
    assert enquiry["detail"].startswith(
        "**Recorded in the record: domestic abuse in the household**"
    )


# --- 8. A Group search that fails ------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 500, 501])
def test_a_failed_group_search_still_checks_the_related_persons_and_says_so(
    service: LiveService, status: int
) -> None:
    seed = seed_case()
    with fhir_without_group_search(seed, status) as fhir:
        cards = post(service, seed, fhir, drop=("household", "relatedPersons"))
    assert kinds(cards) == ["enquiry", "mappa"]
    enquiry, mappa = cards
    assert (
        "**Household risk could only partly be checked**: the household group (who lives with "
        "the patient) could not be looked up." in enquiry["detail"]
    )
    assert "1 person linked to this patient's record checked." in enquiry["detail"]
    assert "no MAPPA flag in force" not in enquiry["detail"]
    assert mappa["detail"].startswith(
        "**A person linked to this patient's record (their partner) is subject to MAPPA**"
    )


def test_a_failed_group_search_with_nobody_else_to_check_never_says_none_recorded(
    service: LiveService,
) -> None:
    seed = seed_case()
    del seed["seed-partner-rp"]
    with fhir_without_group_search(seed, 500) as fhir:
        (enquiry,) = post(service, seed, fhir, drop=("household", "relatedPersons"))
    assert "**Household risk could only partly be checked**" in enquiry["detail"]
    assert "Nobody else was found to check." in enquiry["detail"]
    assert "No household members are recorded" not in enquiry["detail"]


# --- 10. Known high risk is never silenced by a routine enquiry --------------------------------


@pytest.mark.parametrize("code", [SUBJECT_OF_MARAC, AT_RISK_OF_DOMESTIC_VIOLENCE])
def test_a_routine_enquiry_never_silences_a_high_risk_entry_within_12_months(
    service: LiveService, code: tuple[str, str]
) -> None:
    seed = without_triggers(seed_case())
    seed["risk"] = mum(code, ago(200), "risk")
    seed["asked"] = mum(ENQUIRY_MADE, ago(10), "asked")
    assert kinds(seed_cards(service, seed)) == ["known-abuse", "mappa"]
    seed["risk"] = mum(code, ago(400), "risk")  # over 12 months: the routine enquiry holds it
    assert kinds(seed_cards(service, seed)) == ["mappa"]


@pytest.mark.parametrize(("asked", "shown"), [(90, False), (91, True), (300, True)])
def test_a_routine_enquiry_holds_other_known_abuse_back_for_90_days_at_most(
    service: LiveService, asked: int, shown: bool
) -> None:
    seed = without_triggers(seed_case())
    seed["victim"] = mum(VICTIM_OF_DOMESTIC_ABUSE, "2020-01-01", "victim")
    seed["asked"] = mum(ENQUIRY_MADE, ago(asked), "asked")
    expected = ["known-abuse", "mappa"] if shown else ["mappa"]
    assert kinds(seed_cards(service, seed)) == expected


# --- 11. "Not safe to ask" leaves the question open --------------------------------------------


@pytest.mark.parametrize(("days", "shown"), [(1, True), (90, True), (91, False)])
def test_not_safe_to_ask_prompts_again_within_90_days_without_any_other_trigger(
    service: LiveService, days: int, shown: bool
) -> None:
    seed = without_triggers(seed_case())
    seed["not-made"] = mum(ENQUIRY_NOT_MADE, ago(days), "not-made")
    cards = seed_cards(service, seed)
    assert kinds(cards) == (["enquiry", "mappa"] if shown else ["mappa"])
    if shown:
        assert cards[0]["detail"].startswith("**Why now.** An enquiry was recorded as not made on")
        assert "the question is still open" in cards[0]["detail"]


def test_not_safe_to_ask_after_a_routine_enquiry_reopens_the_question(
    service: LiveService,
) -> None:
    seed = without_triggers(seed_case())
    seed["asked"] = mum(ENQUIRY_MADE, ago(60), "asked")
    seed["not-made"] = mum(ENQUIRY_NOT_MADE, ago(20), "not-made")
    assert kinds(seed_cards(service, seed)) == ["enquiry", "mappa"]


# --- 12. A child's own record ------------------------------------------------------------------


def test_a_child_patients_mappa_card_applies_think_family_to_the_child(
    service: LiveService,
) -> None:
    """The son (8) opened: no other child in the household, yet the referral prompt is his."""
    seed = seed_case()
    cards = seed_cards(service, seed, pid="seed-son")
    assert kinds(cards) == ["mappa"]
    detail = cards[0]["detail"]
    assert "**This patient is a child (aged 8).** Think Family" in detail
    assert "Consider a child safeguarding referral" in detail
    assert "under 18 in the household" not in detail  # no other child: it is about him
    assert "known adult at risk" not in detail
    # No template link (a child's enquiry is not this service's to prompt); the rule behind it.
    assert [link["url"] for link in cards[0]["links"]] == [service.base_url + "/rules#rule-6"]


# --- 13. An adult's MAPPA card without triggers --------------------------------------------------


def test_an_adults_mappa_card_without_triggers_carries_the_enquiry_guidance(
    service: LiveService,
) -> None:
    seed = without_triggers(seed_case())
    (mappa,) = seed_cards(service, seed)
    assert "**The patient may be the known adult at risk.**" in mappa["detail"]
    assert "only when they are on their own" in mappa["detail"]
    assert "Example helpline 0100 000 0003" in mappa["detail"]
    assert [link["url"].removeprefix(service.base_url) for link in mappa["links"]] == [
        "/template",
        "/rules#rule-6",
    ]


# --- 14. Household risk not checked, and nothing else to show ----------------------------------


UNCHECKED_SUMMARY = "Household safeguarding check could not be done: read before deciding"


@pytest.mark.parametrize(
    ("pid", "failure"), [("seed-son", "500"), ("seed-mum", "500"), ("seed-mum", "slow")]
)
def test_a_failed_household_check_with_nothing_else_to_show_is_never_silence(
    service: LiveService, tight: LiveService, pid: str, failure: str
) -> None:
    """The Group is prefetched (so members are known); their Patients and Flags fail or are too
    slow. The child, or the adult with no trigger, gets one discreet info card."""
    seed = without_triggers(seed_case())
    with fhir_without_group_search(seed, 404) as fhir:
        if failure == "slow":
            fhir.server.delay = 0.5  # over the 0.3 s budget
            service = tight
        else:
            fhir.server.fail_with = int(failure)
        cards = post(service, seed, fhir, pid=pid)
    assert [c["summary"] for c in cards] == [UNCHECKED_SUMMARY]
    (card,) = cards
    assert card["indicator"] == "info"
    assert "**The household safeguarding check could not be done**" in card["detail"]
    assert "Dr Lead at Example Practice" in card["detail"]
    assert "MAPPA" not in card["summary"] and "abuse" not in card["summary"]


def test_an_unknown_household_of_an_adult_with_nothing_to_show_gives_no_card(
    service: LiveService,
) -> None:
    """Nothing is known of a household whose searches all failed; an adult with no trigger
    gets no card. A child in the same case gets the info card."""
    seed = without_triggers(seed_case())
    with fhir_without_group_search(seed, 404) as fhir:
        fhir.server.fail_with = 500
        adult = post(service, seed, fhir, drop=("household", "relatedPersons"))
        child = post(service, seed, fhir, pid="seed-son", drop=("household", "relatedPersons"))
    assert adult == []
    assert [c["summary"] for c in child] == [UNCHECKED_SUMMARY]


def test_no_household_card_when_another_card_shows(service: LiveService) -> None:
    seed = seed_case()
    with fhir_without_group_search(seed, 404) as fhir:
        fhir.server.fail_with = 500
        cards = post(service, seed, fhir)
    assert kinds(cards) == ["enquiry"]
    assert "Household risk could not be checked" in cards[0]["detail"]


# --- 16. Unknown risk is critical --------------------------------------------------------------


def test_a_mappa_flag_with_no_risk_levels_is_critical(service: LiveService) -> None:
    seed = seed_case()
    del seed["seed-partner-mappa"]["extension"]
    mappa = seed_cards(service, seed)[1]
    assert mappa["indicator"] == "critical"
    assert (
        "**The flag gives no risk levels**: until you know, treat the risk as high"
        in (mappa["detail"])
    )
