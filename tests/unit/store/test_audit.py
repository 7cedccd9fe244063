"""The disclosure audit: stored, spooled when the database fails, replayed exactly once,
"failed" only when both fail; readable as R4 AuditEvents."""

import datetime
import logging
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as R4AuditEvent
from sqlalchemy import Engine, func, select

from iris_prompt.store.audit import AuditLog, Disclosure, Spool
from iris_prompt.store.database import make_engine
from iris_prompt.store.fhir_audit import audit_event
from iris_prompt.store.fhir_search import END_OF_TIME, date_bounds
from iris_prompt.store.models import AuditEvent

WHEN = datetime.datetime(2026, 3, 4, 10, 30, tzinfo=datetime.UTC)


def disclosure(n: int = 1, **overrides: object) -> Disclosure:
    values: dict[str, object] = {
        "card_uuid": f"00000000-0000-4000-8000-{n:012d}",
        "kind": "mappa",
        "recorded": WHEN,
        "service_id": "iris-domestic-abuse-prompt",
        "hook": "patient-view",
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "user_id": "Practitioner/u1",
        "patient": "Patient/p1",
        "issuer": "https://ehr.test.example",
        "tenant": "practice-a",
        "fhir_server": "https://fhir.test.example/r4",
        "entities": ("Flag/f1",),
        "relationship": "partner",
    }
    return Disclosure(**(values | overrides))  # type: ignore[arg-type]


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_a_disclosure_is_stored_with_everything_the_audit_needs(
    engine: Engine, tmp_path: Path
) -> None:
    audit = AuditLog(engine, Spool(tmp_path / "spool"))
    assert audit.record([disclosure()], "hi") == "stored"
    (row,) = audit.search()
    assert (row.user_id, row.patient, row.entities, row.relationship, row.tenant) == (
        "Practitioner/u1",
        "Patient/p1",
        ["Flag/f1"],
        "partner",
        "practice-a",
    )
    assert audit.counts["stored"] == 1


def test_database_down_spools_then_replays_exactly_once(engine: Engine, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    broken = AuditLog(make_engine(f"sqlite:///{tmp_path}/no/such/dir/x.db"), spool)
    assert broken.record([disclosure(1), disclosure(2)], "hi") == "spooled"
    assert spool.pending() == 2
    audit = AuditLog(engine, spool)
    # Record 1 reached the database before a crash left it in the spool too.
    audit.record([disclosure(1)], "hi")
    assert audit.replay() == 2
    assert audit.replay() == 0
    assert stored(engine) == 2
    assert spool.pending() == 0
    assert {r.via for r in audit.search()} == {"database", "spool"}


def test_a_torn_last_spool_line_is_skipped_and_the_rest_replayed(
    engine: Engine, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([disclosure(1)])
    with spool.path.open("ab") as torn:
        torn.write(b'{"card_uuid": "half')
    assert AuditLog(engine, spool).replay() == 1
    assert stored(engine) == 1


@pytest.mark.parametrize("spool_path", ["/dev/full", "a-directory"])
def test_both_failing_is_failed_with_a_clear_log_line(
    tmp_path: Path, spool_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = Path(spool_path) if spool_path.startswith("/") else tmp_path
    audit = AuditLog(make_engine(f"sqlite:///{tmp_path}/no/such/x.db"), Spool(path))
    with caplog.at_level(logging.ERROR):
        assert audit.record([disclosure()], "hi") == "failed"
    assert audit.counts["failed"] == 1
    assert "MAPPA detail withheld" in caplog.text
    assert "Patient/p1" not in caplog.text


def test_search_by_entity_patient_agent_and_date(engine: Engine, tmp_path: Path) -> None:
    audit = AuditLog(engine, Spool(tmp_path / "spool"))
    audit.record(
        [
            disclosure(1),
            disclosure(2, entities=("Flag/f2",), patient="Patient/p2"),
            disclosure(3, user_id="Practitioner/u2", recorded=WHEN + datetime.timedelta(days=2)),
        ],
        "hi",
    )

    def ids(**query: object) -> set[int]:
        return {int(r.card_uuid[-3:]) for r in audit.search(**query)}  # type: ignore[arg-type]

    assert ids(entity="Flag/f2") == {2}
    assert ids(patient="Patient/p1") == {1, 3}
    assert ids(patient="p2") == {2}
    assert ids(agent="Practitioner/u2") == {3}
    assert ids(since=WHEN + datetime.timedelta(days=1)) == {3}
    assert ids(until=WHEN + datetime.timedelta(days=1)) == {1, 2}


def test_an_entity_matches_only_a_flag_disclosed_as_written_or_a_card(
    engine: Engine, tmp_path: Path
) -> None:
    """The database finds the entity in each record's list of flags: the whole reference, in
    its case, and nothing that merely contains it."""
    audit = AuditLog(engine, Spool(tmp_path / "spool"))
    audit.record(
        [
            disclosure(1, entities=("Flag/f1",)),
            disclosure(2, entities=("Flag/F1",)),
            disclosure(3, entities=("Flag/f10",)),
            disclosure(4, entities=("xFlag/f1",)),
            disclosure(5, entities=("Flag/f9", "Flag/f1")),
            disclosure(6, entities=("Flag/\u00e9t\u00e9",)),
            disclosure(7, entities=()),
            # Another flag whose id holds quotes: as text, its list holds '"Flag/f1"'.
            disclosure(8, entities=('Flag/x"Flag/f1',)),
        ],
        "hi",
    )

    def ids(entity: str) -> list[int]:
        found = [int(r.card_uuid[-3:]) for r in audit.search(entity=entity)]
        assert audit.count(entity=entity) == len(found)
        return sorted(found)

    assert ids("Flag/f1") == [1, 5]
    assert ids("Flag/F1") == [2]
    assert ids("Flag/\u00e9t\u00e9") == [6]
    assert ids("f1") == [] and ids("%") == [] and ids('"') == []
    assert ids(disclosure(7).card_uuid) == [7]  # a card by its uuid


def test_a_nul_in_an_id_from_a_record_system_is_stored_and_searchable(
    engine: Engine, tmp_path: Path
) -> None:
    """PostgreSQL holds no NUL in text or jsonb: a flag id or relationship holding one is kept
    with U+FFFD in its place, in the database (not left in the spool), and every search of the
    audit still answers."""
    audit = AuditLog(engine, Spool(tmp_path / "spool"))
    odd = disclosure(1, entities=("Flag/a\x00b",), relationship="part\x00ner")
    assert audit.record([odd, disclosure(2)], "hi") == "stored"
    (row,) = audit.search(entity="Flag/a\ufffdb")
    assert row.relationship == "part\ufffdner"
    assert [int(r.card_uuid[-3:]) for r in audit.search(entity="Flag/f1")] == [2]


def test_a_search_is_answered_a_page_at_a_time_newest_first(engine: Engine, tmp_path: Path) -> None:
    audit = AuditLog(engine, Spool(tmp_path / "spool"))
    hour = datetime.timedelta(hours=1)
    audit.record([disclosure(n, recorded=WHEN + (n % 4) * hour) for n in range(1, 8)], "hi")
    pages = [
        [int(r.card_uuid[-3:]) for r in audit.search(limit=3, offset=start)]
        for start in (0, 3, 6, 9)
    ]
    # Newest first; records of one instant in card order, so pages neither repeat nor skip.
    assert pages == [[3, 7, 2], [6, 1, 5], [4], []]
    assert audit.count() == 7
    assert audit.count(since=WHEN + 2 * hour) == 4  # cards 2, 3, 6 and 7


def test_an_audit_record_is_a_valid_r4_audit_event(engine: Engine, tmp_path: Path) -> None:
    audit = AuditLog(engine, Spool(tmp_path / "spool"))
    audit.record([disclosure()], "hi")
    resource = audit_event(audit.search()[0])
    parsed = R4AuditEvent.model_validate(resource)
    assert parsed.recorded is not None
    whats = [e["what"].get("reference") for e in resource["entity"]]
    assert whats[:2] == ["Patient/p1", "Flag/f1"]
    assert resource["agent"][0]["who"]["reference"] == "Practitioner/u1"
    assert resource["agent"][0]["requestor"] is True


def test_date_bounds_at_the_calendars_end() -> None:
    """The day after 9999-12-31 cannot be held: no upper bound, and nothing after it."""
    last_day = datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC)
    assert date_bounds(["9999-12-31"]) == (last_day, None)
    assert date_bounds(["le9999-12-31", "lt2026-01-01"])[1] == datetime.datetime(
        2026, 1, 1, tzinfo=datetime.UTC
    )
    assert date_bounds(["gt9999-12-31T23:59:59.999999+00:00"]) == (END_OF_TIME, None)
    assert date_bounds(["gt9999-12-31"], "_lastUpdated") == (END_OF_TIME, None)
