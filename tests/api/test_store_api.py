"""The store behind the real service, on SQLite and on a real PostgreSQL: the disclosure audit
written before the response, read as AuditEvents by an auditor; feedback committed and matched;
the call log without identifiers; and the faults (the database stopped mid-run, the spool
unwritable)."""

import datetime
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from iris_prompt.app import create_app
from iris_prompt.engine.cards import MAPPA_GUIDANCE
from iris_prompt.engine.lookup import HouseholdLookup
from iris_prompt.engine.risk_flags import MAPPA_CODE
from iris_prompt.engine.service import Engine as PromptEngine
from iris_prompt.engine.service import build_registry
from iris_prompt.store.audit import Disclosure
from iris_prompt.store.database import StoreUnreachable, make_engine
from iris_prompt.store.models import AuditEvent, CallLog, FeedbackItem
from iris_prompt.store.service import Store
from tests.api.engine_support import (
    CONTACTS,
    NOW,
    SERVICE_PATH,
    call,
    cards_of,
    fhir_with,
    kinds,
    prefetch_for,
    record,
    request_body,
)
from tests.api.store_support import ADMIN, AUDITOR, audit_rows, open_store
from tests.conftest import TEST_ISSUER, LiveService, bundled_codesets, live, make_settings
from tests.support.postgres import PostgresCluster
from tests.support.searchset import every_page
from tests.support.tokens import SigningKey

FEEDBACK_PATH = SERVICE_PATH + "/feedback"
WITHHELD = "Household safeguarding information: contact the practice safeguarding lead"


@contextmanager
def store_service(key: SigningKey, store: Store) -> Iterator[LiveService]:
    def build(base_url: str) -> FastAPI:
        settings = make_settings(
            key,
            public_base_url=base_url,
            auditor_token=AUDITOR,
            admin_token=ADMIN,
            fhir_total_timeout_seconds=2.0,
        )
        codesets = bundled_codesets()
        engine = PromptEngine(
            codesets,
            cards=CONTACTS,
            lookup=HouseholdLookup(budget=2.0),
            clock=lambda: NOW,
            store=store,
        )
        registry = build_registry(codesets, engine)
        return create_app(settings, registry=registry, codesets=codesets, store=store)

    with live(build, key) as service:
        yield service


def feedback(card: str, **extra: Any) -> dict[str, Any]:
    item = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"reason": {"code": "patient-not-alone", "system": "urn:x"}},
        "outcomeTimestamp": "2026-11-26T10:05:00Z",
    }
    return {"feedback": [item | extra]}


def test_a_mappa_card_is_audited_before_its_response(es384_key: SigningKey, store: Store) -> None:
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        cards = cards_of(call(service, "seed-case", fhir))
        # The response is back: the audit record is already there.
        rows = audit_rows(store.engine)
    mappa = [c for c, k in zip(cards, kinds(cards), strict=True) if k == "mappa"]
    assert len(mappa) == 1
    (row,) = rows
    assert row.card_uuid == mappa[0]["uuid"]
    assert (row.kind, row.patient, row.user_id, row.issuer) == (
        "mappa",
        "Patient/seed-mum",
        "Practitioner/gp1",
        TEST_ISSUER,
    )
    assert row.entities == ["Flag/seed-partner-mappa"]
    assert row.relationship == "partner"
    assert row.fhir_server == fhir.url


def test_an_auditor_reads_audit_events_and_no_one_else_does(
    es384_key: SigningKey, store: Store
) -> None:
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        cards_of(call(service, "seed-case", fhir))
        url = "/fhir/AuditEvent"
        get = service.client.get
        auditor = {"Authorization": f"Bearer {AUDITOR}"}
        found = get(url, params={"entity": "Flag/seed-partner-mappa"}, headers=auditor)
        other = get(url, params={"entity": "Flag/other"}, headers=auditor)
        by_patient = get(
            url, params={"patient": "Patient/seed-mum", "date": "ge2026-11-26"}, headers=auditor
        )
        clinician = get(url, headers=service.headers(url))
        admin = get(url, headers={"Authorization": f"Bearer {ADMIN}"})
        bad = get(url, params={"date": "yesterday"}, headers=auditor)
        twice = get(url + "?entity=Flag/a&entity=Flag/b", headers=auditor)
    assert twice.status_code == 400 and twice.json()["issue"][0]["expression"] == ["entity"]
    assert found.status_code == 200
    [entry] = found.json()["entry"]
    assert entry["resource"]["resourceType"] == "AuditEvent"
    assert entry["resource"]["agent"][0]["who"]["reference"] == "Practitioner/gp1"
    assert other.json()["total"] == 0
    assert by_patient.json()["total"] == 1
    assert clinician.status_code == 401 and admin.status_code == 401
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["date"]


def test_an_auditor_reads_a_long_log_a_page_at_a_time(es384_key: SigningKey, store: Store) -> None:
    """Five disclosures of one flag, two to a page: each page says five in all, its `next`
    link leads on, and following it until there is none reads each record once."""
    start = datetime.datetime(2026, 11, 20, 9, tzinfo=datetime.UTC)
    store.audit.record(
        [
            Disclosure(
                card_uuid=f"00000000-0000-4000-8000-{n:012d}",
                kind="mappa",
                recorded=start + datetime.timedelta(minutes=n),
                service_id="iris-domestic-abuse-prompt",
                hook="patient-view",
                hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                user_id="Practitioner/gp1",
                patient="Patient/seed-mum",
                entities=("Flag/seed-partner-mappa",),
            )
            for n in range(1, 6)
        ],
        "hi",
    )
    auditor = {"Authorization": f"Bearer {AUDITOR}"}
    with store_service(es384_key, store) as service:
        url = "/fhir/AuditEvent?entity=Flag/seed-partner-mappa&_count=2"
        pages = every_page(service.client, url, auditor)
    found = [
        [e["resource"]["entity"][-1]["what"]["identifier"]["value"] for e in page["entry"]]
        for page in pages
    ]
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [len(cards) for cards in found] == [2, 2, 1]
    assert [int(card[-1]) for cards in found for card in cards] == [5, 4, 3, 2, 1]  # newest first


def test_a_fhir_server_with_a_password_in_it_is_refused_and_nothing_kept(
    es384_key: SigningKey, store: Store
) -> None:
    """Credentials in fhirServer would be sent as Basic auth in place of the caller's token,
    and kept in the audit (and shown to auditors as source.site): 400 naming fhirServer."""
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        server = fhir.url.replace("://", "://fhiruser:S3cretPass@", 1)
        prefetch = prefetch_for(record("seed-case"), "seed-mum")
        prefetch["household"] = None  # the household is read from the server
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=server)
        response = service.post(SERVICE_PATH, body)
        auditor = {"Authorization": f"Bearer {AUDITOR}"}
        events = service.client.get("/fhir/AuditEvent", headers=auditor).json()
        asked = list(fhir.server.requests)
    assert response.status_code == 400, response.text
    assert [i["expression"] for i in response.json()["issue"]] == [["fhirServer"]]
    assert "S3cretPass" not in response.text
    assert asked == []
    assert audit_rows(store.engine) == [] and events["total"] == 0


def test_feedback_is_committed_matched_to_its_card_and_bounded(
    es384_key: SigningKey, store: Store
) -> None:
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        cards = cards_of(call(service, "seed-case", fhir))
        ours = service.post(FEEDBACK_PATH, feedback(cards[0]["uuid"]))
        unknown = service.post(FEEDBACK_PATH, feedback("a-card-we-never-issued"))
        long = feedback(cards[0]["uuid"], overrideReason={"userComment": "x" * 2001})
        too_long = service.post(FEEDBACK_PATH, long)
        with Session(store.engine) as session:
            items = {f.card_uuid: f for f in session.scalars(select(FeedbackItem))}
    assert (ours.status_code, unknown.status_code) == (200, 200)
    assert items[cards[0]["uuid"]].matched is True
    assert items[cards[0]["uuid"]].override_code == "patient-not-alone"
    assert items["a-card-we-never-issued"].matched is False
    assert too_long.status_code == 400
    assert too_long.json()["issue"][0]["expression"] == ["feedback[0].overrideReason.userComment"]
    assert len(items) == 2  # nothing of the refused request was kept


def test_the_call_log_holds_no_identifiers(es384_key: SigningKey, store: Store) -> None:
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        cards_of(call(service, "seed-case", fhir))
        cards_of(call(service, "seed-case", fhir))
        assert store.calls.flush()
        with Session(store.engine) as session:
            rows = list(session.scalars(select(CallLog)))
    assert len(rows) == 2
    first, second = rows
    assert first.patient_key == second.patient_key  # the same patient, the same key
    assert first.cards == ["enquiry", "mappa"]
    assert first.categories and first.practice == TEST_ISSUER
    text = repr([vars(r) for r in rows])
    for identifier in ("seed-mum", "seed-partner", "Flag/", "Practitioner/gp1"):
        assert identifier not in text


def test_both_database_and_spool_failing_withhold_mappa_detail(
    es384_key: SigningKey, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(
        f"sqlite+pysqlite:///{tmp_path / 'store.sqlite3'}",
        tmp_path,
        spool_path=Path("/dev/full"),  # the disk is full
    )
    store.audit.engine = make_engine(f"sqlite:///{tmp_path}/gone/away.db")  # unreachable
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        with caplog.at_level(logging.WARNING):
            cards = cards_of(call(service, "seed-case", fhir))
    summaries = [card["summary"] for card in cards]
    assert summaries[-1] == WITHHELD
    assert "partner" not in cards[-1]["detail"] and "risk" not in cards[-1]["detail"]
    # Nothing of it, its source and links included, says that what is withheld is MAPPA's.
    withheld = json.dumps(cards[-1])
    assert "MAPPA" not in withheld and "multi-agency" not in withheld
    assert MAPPA_CODE not in withheld and MAPPA_GUIDANCE not in withheld
    assert CONTACTS.safeguarding_lead in cards[-1]["detail"]
    assert kinds(cards[:-1]) == ["enquiry"]  # the enquiry prompt is still shown
    assert "MAPPA detail withheld" in caplog.text
    assert "seed-mum" not in caplog.text


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_postgresql_stopped_mid_run_spools_and_replays_exactly_once(
    es384_key: SigningKey, postgres: PostgresCluster, tmp_path: Path
) -> None:
    store = open_store(postgres.new_database(), tmp_path)
    with store_service(es384_key, store) as service, fhir_with("seed-case") as fhir:
        before = cards_of(call(service, "seed-case", fhir))
        postgres.stop()
        try:
            enquiry = cards_of(call(service, "read-v2-depression", None))
            during = cards_of(call(service, "seed-case", fhir))
            unacknowledged = service.post(FEEDBACK_PATH, feedback(during[0]["uuid"]))
            assert store.audit.spool.pending() == 1
        finally:
            postgres.start()
        replayed = store.replay()
        again = store.replay()
        after = cards_of(call(service, "seed-case", fhir))
        rows = audit_rows(store.engine)
    assert kinds(enquiry) == ["enquiry"]
    assert kinds(during) == ["enquiry", "mappa"]  # shown, with its audit spooled
    assert unacknowledged.status_code >= 500  # never acknowledged, so the client resends
    assert (replayed, again) == (1, 0)
    uuids = sorted(row.card_uuid for row in rows)
    expected = sorted(c[-1]["uuid"] for c in (before, during, after))
    assert uuids == expected  # none lost, none doubled
    assert {row.via for row in rows} == {"database", "spool"}


def test_a_feedback_time_with_an_offset_is_kept_as_the_same_instant(
    es384_key: SigningKey, store: Store
) -> None:
    """SQLite keeps no offset: 10:05 at +05:00 was kept as 10:05, read back as UTC five hours
    late. Every time is kept in UTC, so both databases hold the instant the clinician acted."""
    with store_service(es384_key, store) as service:
        sent = feedback("a-card", outcomeTimestamp="2026-11-26T10:05:00+05:00")
        assert service.post(FEEDBACK_PATH, sent).status_code == 200
        with Session(store.engine) as session:
            (kept,) = session.scalars(select(FeedbackItem.outcome_timestamp))
    if kept.tzinfo is None:  # SQLite: what is kept is read as UTC
        kept = kept.replace(tzinfo=datetime.UTC)
    assert kept == datetime.datetime(2026, 11, 26, 5, 5, tzinfo=datetime.UTC)


def test_a_feedback_time_past_the_calendars_edge_is_refused_naming_it(
    es384_key: SigningKey, store: Store
) -> None:
    """0001-01-01T00:00+05:00 is before the first instant a store can hold: a 400 naming the
    field, and nothing of the post kept (it was a 500 when converted in the store)."""
    with store_service(es384_key, store) as service:
        fine = feedback("a-card")["feedback"][0]
        edge = fine | {"card": "b-card", "outcomeTimestamp": "0001-01-01T00:00:00+05:00"}
        answer = service.post(FEEDBACK_PATH, {"feedback": [fine, edge]})
        with Session(store.engine) as session:
            kept = list(session.scalars(select(FeedbackItem.card_uuid)))
    assert answer.status_code == 400, answer.text
    assert [i["expression"] for i in answer.json()["issue"]] == [["feedback[1].outcomeTimestamp"]]
    assert kept == []


@pytest.mark.parametrize("where", ["a folder", "in a missing folder"])
def test_an_audit_spool_that_cannot_be_written_stops_start_up(tmp_path: Path, where: str) -> None:
    """The spool keeps a disclosure when the database cannot; found unwritable only then, the
    disclosure would be kept nowhere. So the service does not start with one."""
    spool = tmp_path if where == "a folder" else tmp_path / "missing" / "audit-spool.jsonl"
    with pytest.raises(StoreUnreachable, match=r"the audit spool .* cannot be written: "):
        open_store(f"sqlite+pysqlite:///{tmp_path / 'store.sqlite3'}", tmp_path, spool_path=spool)
