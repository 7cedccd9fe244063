"""The leads' analytics agree with the alert-burden simulation where both can be computed: the
hand-made population is sent to the real service one patient at a time (its households served
by a real FHIR server), and what the call log counts is what `iris-prompt simulate` counts on
the same population on the same day. `GET /admin/analytics` serves the same figures."""

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from iris_prompt.app import create_app
from iris_prompt.engine.fhir_values import PRACTICE_TIME_ZONE
from iris_prompt.engine.lookup import HouseholdLookup
from iris_prompt.engine.service import Engine as PromptEngine
from iris_prompt.engine.service import build_registry
from iris_prompt.simulate.cli import simulate
from iris_prompt.store.analytics import report
from iris_prompt.store.service import Store
from tests.api.engine_support import CONTACTS, SERVICE_PATH, fhir_serving, prefetch_for
from tests.api.engine_support import request_body as engine_request
from tests.api.store_support import ADMIN, AUDITOR, open_store
from tests.conftest import LiveService, bundled_codesets, live, make_settings
from tests.support.tokens import SigningKey

POPULATION = Path(__file__).resolve().parents[1] / "fixtures" / "population" / "bundles"
AS_OF = datetime.date(2026, 12, 1)
# The simulation's clock: midday at the practice on the day of the simulated visit.
NOW = datetime.datetime.combine(AS_OF, datetime.time(12), tzinfo=PRACTICE_TIME_ZONE)


def population() -> list[tuple[str, list[dict[str, Any]]]]:
    """(patient id, the patient's own resources) for every record of the population."""
    found = []
    for path in sorted(POPULATION.glob("*.json")):
        resources = [e["resource"] for e in orjson.loads(path.read_bytes())["entry"]]
        pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
        found.append((pid, resources))
    return found


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return open_store(f"sqlite+pysqlite:///{tmp_path / 'store.sqlite3'}", tmp_path / "data")


@pytest.fixture
def service(es384_key: SigningKey, sqlite_store: Store) -> Iterator[LiveService]:
    def build(base_url: str) -> FastAPI:
        settings = make_settings(
            es384_key, public_base_url=base_url, auditor_token=AUDITOR, admin_token=ADMIN
        )
        codesets = bundled_codesets()
        engine = PromptEngine(
            codesets,
            cards=CONTACTS,
            lookup=HouseholdLookup(budget=5.0),
            clock=lambda: NOW,
            store=sqlite_store,
        )
        return create_app(
            settings,
            registry=build_registry(codesets, engine),
            codesets=codesets,
            store=sqlite_store,
        )

    with live(build, es384_key) as running:
        yield running


def test_the_call_log_counts_what_the_simulation_counts(
    service: LiveService, sqlite_store: Store
) -> None:
    records = population()
    everyone = [r for _pid, resources in records for r in resources]
    with fhir_serving(everyone) as fhir:
        for pid, _resources in records:
            body = engine_request(pid, prefetch=prefetch_for(everyone, pid), fhir_server=fhir.url)
            assert service.post(SERVICE_PATH, body).status_code == 200
    assert sqlite_store.calls.flush()

    simulated = simulate(POPULATION.parent / "bundles", as_of=AS_OF, workers=1).new
    figures = report(sqlite_store.engine)["groups"]["all"]
    calls = figures["calls"]

    def cards(kind: str) -> int:
        return round(figures["cards_per_1000_calls"][kind] * calls / 1000)

    assert simulated.enquiry > 0 and simulated.known_abuse > 0 and simulated.mappa > 0
    assert cards("enquiry") == simulated.enquiry
    assert cards("known-abuse") == simulated.known_abuse
    # One MAPPA card per flagged member; in this population no patient has two.
    assert cards("mappa") == simulated.mappa + simulated.mappa_not_considered
    assert figures["patients_prompted"] == simulated.enquiry + simulated.known_abuse

    # The same figures over HTTP, for the admin credential only.
    served = service.client.get("/admin/analytics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert served.status_code == 200
    assert served.json()["groups"]["all"]["patients_prompted"] == figures["patients_prompted"]
    refused = service.client.get("/admin/analytics", headers={"Authorization": f"Bearer {AUDITOR}"})
    assert refused.status_code == 401


def test_the_analytics_period_and_grouping_are_checked_naming_the_parameter(
    service: LiveService,
) -> None:
    """A lead's query with a bad period or grouping gets 400 naming it; good ones are served."""
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def get(query: str) -> Any:
        return service.client.get(f"/admin/analytics?{query}", headers=admin)

    for query, name in [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-01-05T10:00:00", "since"),  # a time without a zone is ambiguous
        ("by=patient", "by"),
        # A misspelt or repeated parameter would be answered with all-time or other figures.
        ("sinse=2026-01-01", "sinse"),
        ("since=2026-01-01&since=2026-06-01", "since"),
    ]:
        answer = get(query)
        assert answer.status_code == 400, query
        assert answer.json()["issue"][0]["expression"] == [name]
    good = get("since=2026-01-01&until=2026-12-31T23:59:59Z&by=category")
    assert good.status_code == 200
    assert "groups" in good.json()
