"""The leads' figures from a known call log and feedback; retention purges only what is past it;
the store commands."""

import datetime
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from iris_prompt.cli import main
from iris_prompt.store.analytics import report
from iris_prompt.store.cardlog import CardLog
from iris_prompt.store.models import AuditEvent, CallLog, FeedbackItem, IssuedCard
from iris_prompt.store.retention import Retention, purge
from tests.unit.store.card_records import T0, call


def feedback_row(card: str, outcome: str, code: str | None = None) -> dict[str, object]:
    return {
        "item_key": card + outcome,
        "received": T0 + datetime.timedelta(days=5),
        "service_id": "s",
        "client": None,
        "card_uuid": card,
        "matched": True,
        "outcome": outcome,
        "outcome_timestamp": T0,
        "accepted_suggestions": ["x"] if outcome == "accepted" else [],
        "override_system": "urn:x" if code else None,
        "override_code": code,
        "override_comment": None,
    }


@pytest.fixture
def logged(engine: Engine) -> Engine:
    log = CardLog(engine)
    for record in [
        call(0, "p1", ("enquiry",), ("depression",)),
        call(1, "p1", ("enquiry", "mappa"), ("depression", "anxiety")),
        call(2, "p2", ()),
        call(3, "p3", ("known-abuse",), ("victim",), practice="B"),
    ]:
        log.add(record)
    log.flush()
    with engine.begin() as connection:
        connection.execute(
            insert(FeedbackItem),
            [
                feedback_row("card-0-0", "accepted"),
                feedback_row("card-1-0", "overridden", "patient-not-alone"),
                feedback_row("card-1-1", "overridden", "already-discussed"),
                feedback_row("never-issued", "overridden", "x") | {"matched": False},
            ],
        )
    return engine


def test_the_figures_leads_need(logged: Engine) -> None:
    figures = report(logged, since=T0, until=T0 + datetime.timedelta(days=365))
    all_ = figures["groups"]["all"]
    assert all_["calls"] == 4
    assert all_["cards_per_1000_calls"] == {
        "enquiry": 500.0,
        "known-abuse": 250.0,
        "mappa": 250.0,
        "withheld": 0.0,
        "unchecked": 0.0,
    }
    assert all_["prompts_per_1000_calls_by_category"]["depression"] == 500.0
    assert (all_["patients"], all_["patients_prompted"]) == (3, 2)
    assert all_["share_of_patients_prompted"] == 0.667
    # 3 prompts over 3 patients over one year
    assert all_["prompts_per_patient_per_year"] == pytest.approx(1.0, abs=0.01)
    assert (all_["feedback"], all_["accepted"], all_["overridden"]) == (3, 1, 2)
    assert all_["override_reasons"] == {"already-discussed": 1, "patient-not-alone": 1}
    assert all_["enquiries_recorded_through_suggestions"] == 1
    assert figures["feedback_unmatched"] == 1


def test_figures_by_practice_and_category(logged: Engine) -> None:
    by_practice = report(logged, by="practice")["groups"]
    assert (by_practice["A"]["calls"], by_practice["B"]["calls"]) == (3, 1)
    by_category = report(logged, by="category")["groups"]
    assert by_category["depression"]["calls"] == 2
    assert by_category["victim"]["cards_per_1000_calls"]["known-abuse"] == 1000.0
    with pytest.raises(ValueError):
        report(logged, by="patient")


def count(engine: Engine, table: type) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table)) or 0


def test_purge_deletes_only_what_is_past_retention(logged: Engine) -> None:
    with logged.begin() as connection:
        for days in (10, 3000):
            connection.execute(
                insert(AuditEvent).values(
                    card_uuid=f"a{days}",
                    recorded=T0 - datetime.timedelta(days=days),
                    kind="mappa",
                    service_id="s",
                    hook="patient-view",
                    hook_instance="h",
                    user_id="Practitioner/u",
                    patient="Patient/p",
                    entities=[],
                    via="database",
                )
            )
    now = T0 + datetime.timedelta(days=2)  # calls 0 and 1 are 2 and 1 days old
    counts = purge(logged, Retention(audit_days=2922, feedback_days=730, call_log_days=1), now)
    assert counts == {"audit": 1, "feedback": 0, "call_log": 1, "issued_card": 1}
    assert count(logged, AuditEvent) == 1
    assert count(logged, CallLog) == 3
    assert count(logged, IssuedCard) == 3
    assert count(logged, FeedbackItem) == 4


def test_store_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_DATA_DIR", str(tmp_path / "data"))
    assert main(["store", "upgrade"]) == 0
    assert main(["store", "upgrade"]) == 0  # run twice
    assert "store schema at 0003 (head 0003)" in capsys.readouterr().out
    assert main(["store", "purge"]) == 0
    assert "audit: 0 deleted (older than 2922 days)" in capsys.readouterr().out
    assert main(["report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"]["all"]["calls"] == 0
    assert main(["report", "--csv", "--by", "practice"]) == 0
    assert capsys.readouterr().out.startswith("group,figure,value")
    # A bound that is not a date is named, with the form it should take.
    for option, given in (
        ("--since", "soon"),
        ("--until", "2026-13-01"),
        ("--until", "2026-01-01T09:00"),
    ):
        assert main(["report", option, given]) == 2
        assert capsys.readouterr().err.startswith(
            f"iris-prompt report: {option} {given!r} is not a date (YYYY-MM-DD) or a dateTime "
            "with a time zone: "
        )
    # The text a lead reads, and CSV with each figure of a breakdown on its own row.
    assert main(["report", "--since", "2026-01-01", "--until", "2027-01-01"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("period: 2026-01-01T00:00:00+00:00 to 2027-01-01T00:00:00+00:00")
    assert "[all]\n  calls: 0" in text
    assert text.endswith("feedback on cards this service never issued: 0\n")
    assert main(["report", "--csv"]) == 0
    assert "all,cards_per_1000_calls.unchecked,0.0" in capsys.readouterr().out.splitlines()


def test_household_checks_that_could_not_be_done_are_counted(engine: Engine) -> None:
    """Leads see how often the household check failed with nothing else to show (rule 8)."""
    log = CardLog(engine)
    log.add(call(0, "p1", ("unchecked",)))
    log.add(call(1, "p2", ()))
    log.flush()
    figures = report(engine, since=T0, until=T0 + datetime.timedelta(days=365))
    assert figures["groups"]["all"]["cards_per_1000_calls"]["unchecked"] == 500.0
    assert figures["groups"]["all"]["patients_prompted"] == 0
