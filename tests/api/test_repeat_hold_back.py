"""Repeated calls (docs/rules.md): a GP system calling both hooks in one consultation sees the
enquiry prompt once. An enquiry or known-abuse card that the other hook's service gave this
patient in the same encounter, or within 10 minutes when the encounter is not known on both
sides, is held back; the MAPPA card never is. The same service called again is answered in
full, since a client replaces a service's earlier cards with its new ones.

Over HTTP, with the real store on SQLite and a real PostgreSQL, its card log read both before
and after the writer has written it; the household on a real FHIR server.
"""

import datetime
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from iris_prompt.app import create_app
from iris_prompt.engine.lookup import HouseholdLookup
from iris_prompt.engine.service import Engine as PromptEngine
from iris_prompt.engine.service import build_registry
from iris_prompt.store.models import IssuedCard
from iris_prompt.store.service import Store
from tests.api.engine_support import (
    CONTACTS,
    ENCOUNTER_START_PATH,
    NOW,
    SERVICE_PATH,
    Fhir,
    cards_of,
    fhir_with,
    kinds,
    prefetch_for,
    record,
    request_body,
)
from tests.api.store_support import open_store
from tests.conftest import LiveService, bundled_codesets, live, make_settings
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.slow

PID = "seed-mum"
PATHS = {"patient-view": SERVICE_PATH, "encounter-start": ENCOUNTER_START_PATH}


class Consultation:
    """The service with its store and a clock the test moves; the seed case's household on a
    real FHIR server."""

    def __init__(
        self, service: LiveService, store: Store, fhir: Fhir, clock: list[Any], write_each: bool
    ) -> None:
        self.service, self.store, self.fhir, self.clock = service, store, fhir, clock
        self.write_each = write_each

    def call(
        self, hook: str, encounter: str | None = None, resources: list[Any] | None = None
    ) -> list[str]:
        resources = resources or record("seed-case")
        body = request_body(PID, prefetch=prefetch_for(resources, PID), fhir_server=self.fhir.url)
        body["hook"] = hook
        body["context"].pop("encounterId", None)
        if encounter is not None:
            body["context"]["encounterId"] = encounter
        response: httpx.Response = self.service.post(PATHS[hook], body)
        if self.write_each:
            assert self.store.calls.flush()
        return kinds(cards_of(response))

    def later(self, minutes: float) -> None:
        self.clock[0] += datetime.timedelta(minutes=minutes)


@pytest.fixture(params=["queued", "written"])
def consultation(
    request: pytest.FixtureRequest, es384_key: SigningKey, store_url: str, tmp_path: Path
) -> Iterator[Consultation]:
    """`written`: the card log is flushed to the database after every call, so the hold-back
    reads it there; `queued`: nothing is written yet, and it reads the queue."""
    store = open_store(store_url, tmp_path / "data")
    written = request.param == "written"
    if not written:
        store.calls.interval = 3600.0  # the writer waits: every record stays queued
    clock = [NOW]

    def build(base_url: str) -> FastAPI:
        settings = make_settings(es384_key, public_base_url=base_url)
        codesets = bundled_codesets()
        engine = PromptEngine(
            codesets,
            cards=CONTACTS,
            lookup=HouseholdLookup(budget=2.0),
            clock=lambda: clock[0],
            store=store,
        )
        return create_app(
            settings, registry=build_registry(codesets, engine), codesets=codesets, store=store
        )

    with live(build, es384_key) as service, fhir_with("seed-case") as fhir:
        yield Consultation(service, store, fhir, clock, write_each=written)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("patient-view", None), ("encounter-start", "enc1")),
        (("encounter-start", "enc1"), ("patient-view", None)),
        (("encounter-start", "enc1"), ("patient-view", "enc1")),
    ],
    ids=["view-then-start", "start-then-view", "start-then-view-same-encounter"],
)
def test_the_other_hooks_identical_prompt_is_held_back_the_mappa_card_is_not(
    consultation: Consultation, first: tuple[str, str | None], second: tuple[str, str | None]
) -> None:
    assert consultation.call(*first) == ["enquiry", "mappa"]
    consultation.later(2)
    assert consultation.call(*second) == ["mappa"]


def test_the_same_service_called_again_answers_in_full(consultation: Consultation) -> None:
    """A client replaces a service's earlier cards with its new ones (spec, "update stale
    guidance"): holding the card back here would take it off the screen."""
    assert consultation.call("patient-view") == ["enquiry", "mappa"]
    assert consultation.call("patient-view") == ["enquiry", "mappa"]


def test_within_the_same_encounter_it_is_held_back_however_long_after(
    consultation: Consultation,
) -> None:
    assert consultation.call("encounter-start", encounter="enc1") == ["enquiry", "mappa"]
    consultation.later(45)
    assert consultation.call("patient-view", encounter="enc1") == ["mappa"]


def test_another_encounter_or_over_ten_minutes_later_is_a_new_consultation(
    consultation: Consultation,
) -> None:
    assert consultation.call("encounter-start", encounter="enc1") == ["enquiry", "mappa"]
    consultation.later(1)
    assert consultation.call("patient-view", encounter="enc2") == ["enquiry", "mappa"]
    consultation.later(11)
    assert consultation.call("encounter-start", encounter="enc3") == ["enquiry", "mappa"]
    consultation.later(11)
    assert consultation.call("patient-view") == ["enquiry", "mappa"]  # no encounter: the window


def test_a_card_that_says_something_else_is_shown(consultation: Consultation) -> None:
    """Held back only when identical: here the record sent the second time lacks an entry the
    first listed, so its enquiry card says something the first did not."""
    assert consultation.call("patient-view") == ["enquiry", "mappa"]
    resources = record("seed-case")
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    assert len(conditions) > 1
    resources.remove(conditions[0])
    second = consultation.call("encounter-start", encounter="enc1", resources=resources)
    assert second == ["enquiry", "mappa"]


def test_the_card_log_keeps_no_text_or_encounter_id(consultation: Consultation) -> None:
    consultation.call("patient-view")
    consultation.call("encounter-start", encounter="enc1")
    assert consultation.store.calls.flush()
    with consultation.store.engine.connect() as connection:
        keys = list(connection.execute(select(IssuedCard.content_key)).scalars())
    assert len(keys) == 3 and all(len(k) == 64 for k in keys)


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        (OperationalError("SELECT", {}, sqlite3.OperationalError("locked")), "not made"),
        (sqlite3.InterfaceError("Error binding parameter 1"), "failed"),
    ],
    ids=["database", "bug"],
)
def test_a_card_log_that_cannot_be_read_holds_nothing_back(
    consultation: Consultation,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: Exception,
    logged: str,
) -> None:
    """docs/rules.md: if the card log cannot be read, nothing is held back, whatever the fault."""
    assert consultation.call("patient-view") == ["enquiry", "mappa"]

    def unreadable(**_: object) -> set[str]:
        raise fault

    monkeypatch.setattr(consultation.store.calls, "shown_elsewhere", unreadable)
    with caplog.at_level(logging.WARNING):
        assert consultation.call("encounter-start", "enc1") == ["enquiry", "mappa"]
    assert f"repeat check {logged} ({type(fault).__name__}): cards shown" in caplog.text
