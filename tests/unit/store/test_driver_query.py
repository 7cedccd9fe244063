"""Reads run on SQLite's own driver (`iris_prompt.store.driver_query`): the same rows as
SQLAlchemy gives for the same query and parameters, each read seeing what is committed by then,
and a broken connection costing one read, not the next. A read the driver fails is answered
through SQLAlchemy the same, logged and counted; a bug is not hidden that way."""

import dataclasses
import datetime
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, bindparam, insert, select

from iris_prompt.ops.wiring import count_driver_fallbacks
from iris_prompt.store.cardlog import CardLog
from iris_prompt.store.database import make_engine, sqlite_url, upgrade
from iris_prompt.store.driver_query import DriverReads
from iris_prompt.store.models import CallLog
from tests.unit.store.card_records import NOW, given

CALLS: Any = CallLog.__table__
SINCE = select(CALLS.c.call_uid).where(
    CALLS.c.patient_key == bindparam("patient"), CALLS.c.at >= bindparam("since")
)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(sqlite_url(tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def logged(engine: Engine, uid: str, minutes_ago: int, patient: str = "p1") -> None:
    row = {
        "call_uid": uid,
        "at": NOW - datetime.timedelta(minutes=minutes_ago),
        "service_id": "s",
        "hook": "patient-view",
        "practice": None,
        "codeset_versions": "trigger=1",
        "patient_key": patient,
        "cards": [],
        "categories": [],
        "codes": [],
        "suppressed": False,
        "household_checked": True,
    }
    with engine.begin() as connection:
        connection.execute(insert(CALLS), [row])


def through_sqlalchemy(engine: Engine, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(SINCE, values)]


@pytest.mark.parametrize("minutes", [0, 4, 5, 6, 60 * 24])
def test_the_rows_are_sqlalchemys_for_the_same_parameters(sqlite: Engine, minutes: int) -> None:
    """Dates go through SQLAlchemy's own conversion, so a bound is compared as it is stored
    (5 minutes ago is a row's exact time: included)."""
    for uid, ago in (("a", 1), ("b", 5), ("c", 30), ("d", 60 * 48)):
        logged(sqlite, uid, ago)
    logged(sqlite, "other", 1, patient="p2")
    reads = DriverReads(sqlite, {"since": SINCE})
    values = {"patient": "p1", "since": NOW - datetime.timedelta(minutes=minutes)}
    try:
        assert sorted(reads.rows("since", values) or []) == sorted(
            through_sqlalchemy(sqlite, values)
        )
    finally:
        reads.close()


def test_each_read_sees_what_is_committed_by_then(sqlite: Engine) -> None:
    reads = DriverReads(sqlite, {"since": SINCE})
    values = {"patient": "p1", "since": NOW - datetime.timedelta(hours=1)}
    try:
        assert reads.rows("since", values) == []
        logged(sqlite, "a", 1)
        assert reads.rows("since", values) == [("a",)]
    finally:
        reads.close()


def test_a_broken_connection_costs_one_read(sqlite: Engine) -> None:
    reads = DriverReads(sqlite, {"since": SINCE})
    values = {"patient": "p1", "since": NOW - datetime.timedelta(hours=1)}
    logged(sqlite, "a", 1)
    try:
        assert reads.rows("since", values) == [("a",)]
        reads._connection.driver_connection.close()  # as if the file went away under it
        assert reads.rows("since", values) is None  # the caller asks SQLAlchemy instead
        assert reads.rows("since", values) == [("a",)]  # a fresh connection
    finally:
        reads.close()


# A pseudonym as the card log keeps it: it must reach neither the log nor a metric.
PATIENT_KEY = "pk-3b9e41c07d5a"


def fallbacks(error: str) -> float:
    value = REGISTRY.get_sample_value("iris_sqlite_driver_fallbacks_total", {"error": error})
    return value or 0.0


class _Failing:
    """A stand-in for the kept connection (said so): its driver raises `error` on every read."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.driver_connection = self

    def execute(self, *_: Any) -> Any:
        raise self.error

    def close(self) -> None:
        pass


def _closed(reads: DriverReads[Any]) -> None:
    reads._connection.driver_connection.close()  # the real connection, closed under it


def _io_error(reads: DriverReads[Any]) -> None:
    error = sqlite3.OperationalError("disk I/O error")
    reads._connection.close()
    reads._connection = _Failing(error)


@pytest.mark.parametrize(
    ("fault", "error"), [(_closed, "ProgrammingError"), (_io_error, "OperationalError")]
)
def test_a_read_the_driver_fails_gets_the_same_answer_through_sqlalchemy_logged_and_counted(
    sqlite: Engine, caplog: pytest.LogCaptureFixture, fault: Any, error: str
) -> None:
    log = CardLog(sqlite)
    count_driver_fallbacks(log)  # as the app wires it
    log.add(dataclasses.replace(given(5), patient_key=PATIENT_KEY))
    assert log.flush()

    def shown() -> set[str]:
        return log.shown_elsewhere(
            patient_key=PATIENT_KEY,
            service_id="other",
            encounter_key=None,
            content_keys={"ask", "review"},
            now=NOW,
        )

    try:
        caplog.set_level(logging.DEBUG)
        fast = shown()
        assert fast == {"ask"}
        assert "SQLite's driver failed" not in caplog.text  # the fast path answered
        before = fallbacks(error)
        assert log._reads is not None
        fault(log._reads)
        assert shown() == fast
        assert fallbacks(error) == before + 1
        (warning,) = [r for r in caplog.records if "SQLite's driver failed" in r.getMessage()]
        assert warning.levelno == logging.WARNING and error in warning.getMessage()
        assert PATIENT_KEY not in caplog.text
        assert shown() == fast and fallbacks(error) == before + 1  # a fresh connection, fast
    finally:
        log.stop()


def test_a_bug_is_raised_not_answered_through_sqlalchemy(sqlite: Engine) -> None:
    """A missing parameter, or the driver misused (InterfaceError), would fail on either path:
    it is raised where it happens, not counted as the database's fault."""
    reads = DriverReads(sqlite, {"since": SINCE})
    before = fallbacks("InterfaceError")
    try:
        with pytest.raises(KeyError):
            reads.rows("since", {"patient": "p1"})
        reads.rows("since", {"patient": "p1", "since": NOW})  # takes the kept connection
        reads._connection.close()
        reads._connection = _Failing(sqlite3.InterfaceError("misused"))
        with pytest.raises(sqlite3.InterfaceError):
            reads.rows("since", {"patient": "p1", "since": NOW})
        assert fallbacks("InterfaceError") == before
    finally:
        reads.close()
