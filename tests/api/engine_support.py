"""Shared by the engine's API tests: the fixture records, the service with a fixed clock, and a
real FHIR server holding the records. The clock is fixed so the records' dates never age."""

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
from fastapi import FastAPI

from cds_hooks import ServiceRegistry
from iris_prompt.app import create_app
from iris_prompt.engine.cards import CardSettings
from iris_prompt.engine.lookup import HouseholdLookup
from iris_prompt.engine.service import Engine, build_registry
from tests.conftest import (
    ACCESS_TOKEN,
    LiveService,
    bundled_codesets,
    live,
    make_settings,
    patient_view,
)
from tests.support.fhir_server import FhirTestServer
from tests.support.records import bundle
from tests.support.server import serve
from tests.support.tokens import SigningKey

SERVICE_PATH = "/cds-services/iris-domestic-abuse-prompt"
ENCOUNTER_START_PATH = "/cds-services/iris-domestic-abuse-prompt-encounter-start"
RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "records"
NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Europe/London"))
CONTACTS = CardSettings(
    safeguarding_lead="Dr Lead at Example Practice (0100 000 0000)",
    mappa_contact="the Example MAPPA co-ordinator (0100 000 0001)",
    domestic_abuse_service="the Example IRIS advocate educator (0100 000 0002)",
    helpline="Example helpline 0100 000 0003",
)


def record(name: str) -> list[dict[str, Any]]:
    """The resources of one fixture record (a Bundle in tests/fixtures/records)."""
    bundle = orjson.loads((RECORDS / f"{name}.json").read_bytes())
    return [entry["resource"] for entry in bundle["entry"]]


def patient_id_of(resources: list[dict[str, Any]]) -> str:
    """The record's subject: the Patient that the Conditions and Observations are about."""
    for resource in resources:
        if resource["resourceType"] in ("Condition", "Observation"):
            return str(resource["subject"]["reference"].split("/")[-1])
    return str(resources[0]["id"])


def prefetch_for(resources: list[dict[str, Any]], pid: str) -> dict[str, Any]:
    """What a GP system sends as prefetch for the service's templates."""

    def about(kind: str, field: str = "subject") -> list[dict[str, Any]]:
        return [
            r
            for r in resources
            if r["resourceType"] == kind and r.get(field, {}).get("reference") == f"Patient/{pid}"
        ]

    groups = [
        r
        for r in resources
        if r["resourceType"] == "Group"
        and any(m["entity"]["reference"] == f"Patient/{pid}" for m in r.get("member", ()))
    ]
    return {
        "patient": next(r for r in resources if r["resourceType"] == "Patient" and r["id"] == pid),
        "conditions": bundle(*about("Condition")),
        "observations": bundle(*about("Observation")),
        "encounters": bundle(*about("Encounter")),
        "procedures": bundle(*about("Procedure")),
        "household": bundle(*groups),
        "relatedPersons": bundle(*about("RelatedPerson", "patient")),
    }


def request_body(
    pid: str,
    *,
    prefetch: dict[str, Any] | None,
    fhir_server: str | None,
    user: str = "Practitioner/gp1",
    hook: str = "patient-view",
    token: str = ACCESS_TOKEN,
) -> dict[str, Any]:
    context = {"userId": user, "patientId": pid}
    if hook == "encounter-start":
        context["encounterId"] = "enc1"
    body = patient_view(prefetch=prefetch, fhir_server=fhir_server, hook=hook, context=context)
    if fhir_server is not None:
        body["fhirAuthorization"]["access_token"] = token
    return body


# The household budget of the tests: roomy, so that a loaded test machine never turns a
# household that is checked into one that is not. Tests of the deadline itself use the
# product's default, TIGHT_BUDGET, with a FHIR server slow enough to overrun it whatever the load.
ROOMY_BUDGET = 5.0
TIGHT_BUDGET = 0.3


def engine_registry(budget: float = ROOMY_BUDGET) -> ServiceRegistry:
    codesets = bundled_codesets()
    engine = Engine(
        codesets, cards=CONTACTS, lookup=HouseholdLookup(budget=budget), clock=lambda: NOW
    )
    return build_registry(codesets, engine)


@contextmanager
def engine_service(key: SigningKey, budget: float = ROOMY_BUDGET) -> Iterator[LiveService]:
    """The real app (JWT checks on) over HTTP, with the engine's clock fixed at NOW."""

    def build(base_url: str) -> FastAPI:
        settings = make_settings(
            key,
            public_base_url=base_url,
            fhir_total_timeout_seconds=2.0,
            fhir_read_timeout_seconds=1.0,
        )
        return create_app(settings, registry=engine_registry(budget), codesets=bundled_codesets())

    with live(build, key) as service:
        yield service


@dataclass
class Fhir:
    server: FhirTestServer
    url: str


@contextmanager
def fhir_serving(resources: list[dict[str, Any]]) -> Iterator[Fhir]:
    """A real FHIR server holding `resources`."""
    server = FhirTestServer(resources)
    with serve(server.app, access_log=False) as url:
        yield Fhir(server, url)


@contextmanager
def fhir_with(*names: str) -> Iterator[Fhir]:
    """A real FHIR server holding the resources of the named fixture records."""
    with fhir_serving([r for name in names for r in record(name)]) as fhir:
        yield fhir


# Everything identifying in the seed-case record: none of it may reach a card.
SEED_IDENTIFIERS = (
    "Rowan",
    "Fictional",
    "Sam",
    "Madeup",
    "Toby",
    "9990000018",
    "9990000026",
    "9990000034",
    "seed-partner",
    "seed-son",
    "OFFENCE",
    "NOTES ABOUT",
)


def seed_case() -> dict[str, dict[str, Any]]:
    """A fresh copy of the seed-case resources by id, for a scenario to change."""
    return {r["id"]: r for r in record("seed-case")}


def call_with(
    service: LiveService,
    resources: list[dict[str, Any]],
    fhir: Fhir | None,
    *,
    pid: str | None = None,
    prefetched: bool = True,
    **kw: Any,
) -> httpx.Response:
    """POST a record (its resources) to the product service, prefetched as a GP system would."""
    pid = pid or patient_id_of(resources)
    prefetch = prefetch_for(resources, pid) if prefetched else None
    body = request_body(pid, prefetch=prefetch, fhir_server=fhir.url if fhir else None, **kw)
    path = ENCOUNTER_START_PATH if body["hook"] == "encounter-start" else SERVICE_PATH
    return service.post(path, body)


def call(
    service: LiveService, name: str, fhir: Fhir | None, *, prefetched: bool = True, **kw: Any
) -> httpx.Response:
    """POST one fixture record to the product service."""
    return call_with(service, record(name), fhir, prefetched=prefetched, **kw)


def seed_cards(
    service: LiveService, resources: dict[str, dict[str, Any]], pid: str = "seed-mum", **kw: Any
) -> list[dict[str, Any]]:
    """The cards for a (changed) seed case, its household served by a real FHIR server."""
    listed = list(resources.values())
    with fhir_serving(listed) as fhir:
        return cards_of(call_with(service, listed, fhir, pid=pid, **kw))


def cards_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


SUMMARY_KINDS = {
    "IRIS prompt: consider a safe, private enquiry when the patient is alone": "enquiry",
    "IRIS prompt: review current safety privately, with the patient alone": "known-abuse",
    "Household safeguarding information: read privately before discussing": "mappa",
    "Household safeguarding check could not be done: read before deciding": "unchecked",
}


def kinds(cards: list[dict[str, Any]]) -> list[str]:
    """The kind of each card, by its summary."""
    return [SUMMARY_KINDS[card["summary"]] for card in cards]
