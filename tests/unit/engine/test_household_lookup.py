"""The household lookup against a real FHIR server: one budget, and a cache that keeps little."""

import asyncio
import datetime
from typing import Any

from cds_hooks.fhir import FhirClient, FhirLimits
from iris_prompt.engine.household import Household, essentials, household_from
from iris_prompt.engine.lookup import HouseholdLookup
from tests.api.engine_support import ROOMY_BUDGET, TIGHT_BUDGET, fhir_serving, record
from tests.support import web

TODAY = datetime.date(2026, 11, 26)
SEED = record("seed-case")
GROUPS = [r for r in SEED if r["resourceType"] == "Group"]
RELATED = [r for r in SEED if r["resourceType"] == "RelatedPerson"]


def look_up(lookup: HouseholdLookup, url: str, **kw: Any) -> Household:
    async def run() -> Household:
        async with web.AsyncClient() as http:
            fhir = FhirClient(http, url, "token", FhirLimits(allow_http=True, allow_private=True))
            arguments: dict[str, Any] = {
                "groups": GROUPS,
                "related_persons": RELATED,
                "fhir": fhir,
                "patient_id": "seed-mum",
                "today": TODAY,
                "hook_instance": "h",
            }
            return await lookup.household(**(arguments | kw))

    return asyncio.run(run())


def test_the_essentials_build_the_same_household() -> None:
    def built(resources: list[dict[str, Any]]) -> Household:
        def of(kind: str) -> list[dict[str, Any]]:
            return [r for r in resources if r["resourceType"] == kind]

        return household_from(
            patient_id="seed-mum",
            today=TODAY,
            groups=of("Group"),
            related_persons=of("RelatedPerson"),
            patients=of("Patient"),
            flags=of("Flag"),
        )

    trimmed = [kept for r in SEED if (kept := essentials(r)) is not None]
    assert built(trimmed) == built(SEED) and built(SEED).members


def test_the_cache_keeps_no_names_and_is_bounded_by_size() -> None:
    lookup = HouseholdLookup(budget=ROOMY_BUDGET, cache_bytes=4096)
    with fhir_serving(SEED) as fhir:
        household = look_up(lookup, fhir.url)
    assert [m.mappa is not None for m in household.members] == [True, False]
    cached = repr(list(lookup._cache.values()))
    assert "seed-partner" in cached  # ids and the flag are kept ...
    for name in ("Sam", "Madeup", "Toby", "Rowan", "OFFENCE", "NOTES ABOUT"):
        assert name not in cached, name  # ... names, free text and notes are not
    assert 0 < lookup._cache.currsize <= 4096


def test_an_answer_larger_than_the_cache_is_used_not_kept() -> None:
    lookup = HouseholdLookup(budget=ROOMY_BUDGET, cache_bytes=64)
    with fhir_serving(SEED) as fhir:
        household = look_up(lookup, fhir.url)
    assert household.checked and len(household.members) == 2
    assert lookup._cache.currsize <= 64


def test_deferred_household_searches_share_the_one_budget() -> None:
    lookup = HouseholdLookup(budget=ROOMY_BUDGET)
    with fhir_serving(SEED) as fhir:
        queries = {
            "household": "Group?member=seed-mum",
            "relatedPersons": "RelatedPerson?patient=seed-mum",
        }
        fetched = look_up(lookup, fhir.url, groups=[], related_persons=[], queries=queries)
        assert [m.relationship for m in fetched.members] == ["partner", None]
        fhir.server.delay = 0.2  # Group then members: 0.4 s in all
        slow = look_up(HouseholdLookup(budget=TIGHT_BUDGET), fhir.url, groups=[], queries=queries)
    assert not slow.checked and slow.members == ()


def test_a_register_that_cannot_be_read_leaves_the_rest_of_the_check_standing() -> None:
    # A stand-in for the register's database failing (the register's real database is in
    # tests/api/test_register_household.py): the exception is what SQLAlchemy would raise.
    asked: list[list[str]] = []

    async def failing(numbers: Any, now: datetime.datetime) -> Any:
        asked.append(sorted(numbers))
        raise ConnectionError("database gone")

    lookup = HouseholdLookup(budget=ROOMY_BUDGET, register=failing)
    with fhir_serving(SEED) as fhir:
        household = look_up(lookup, fhir.url)
    assert asked == [["9990000018", "9990000034"]]  # both other members' NHS numbers, at once
    assert household.checked and household.not_checked == ("mappa-register",)
    assert [m.mappa is not None for m in household.members] == [True, False]  # the GP's flag


def test_without_a_register_the_plan_asks_for_no_register_flags() -> None:
    lookup = HouseholdLookup(budget=ROOMY_BUDGET)
    with fhir_serving(SEED) as fhir:
        household = look_up(lookup, fhir.url)
        paths = [r.path for r in fhir.server.requests]
    assert household.not_checked == ()
    # Two members' Patients and Flags, the RelatedPerson's NHS number; nothing more.
    assert sorted(paths) == [
        "/Flag",
        "/Flag",
        "/Patient",
        "/Patient/seed-partner",
        "/Patient/seed-son",
    ]
