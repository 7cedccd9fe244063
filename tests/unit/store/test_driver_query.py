"""Reads run on SQLite's own driver (`iris_prompt.store.driver_query`): the same rows as
SQLAlchemy gives for the same query and parameters, each read seeing what is committed by then,
and a broken connection costing one read, not the next."""

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, insert, select

from iris_prompt.store.database import make_engine, sqlite_url, upgrade
from iris_prompt.store.driver_query import DriverReads
from iris_prompt.store.models import CallLog

CALLS: Any = CallLog.__table__
NOW = datetime.datetime(2026, 11, 3, 9, 30, tzinfo=datetime.UTC)
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
