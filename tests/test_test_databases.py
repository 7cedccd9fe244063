"""The databases store tests are given: a reused one is never what the test before left.

A PostgreSQL database at the head of the migrations is kept migrated between tests and only its
tables emptied (`tests/support/postgres.py`); an embedded one is copied from one migrated once
(`tests/conftest.py`). A test that found rows, or a schema, from another would pass or fail for
reasons of its own.
"""

import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, inspect, select, text

from iris_prompt.store.database import head, make_engine, schema_state
from iris_prompt.store.models import CallLog
from tests.conftest import migrated_database, upgraded
from tests.support.postgres import PostgresCluster

ROW = {
    "call_uid": "c1",
    "at": datetime.datetime(2026, 11, 3, 9, 30, tzinfo=datetime.UTC),
    "service_id": "s",
    "hook": "patient-view",
    "practice": "A",
    "codeset_versions": "trigger=1.0.0",
    "patient_key": "p1",
    "cards": ["enquiry"],
    "categories": [],
    "codes": [],
    "suppressed": False,
    "household_checked": True,
}


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return len(connection.execute(select(CallLog.__table__)).all())


def test_a_migrated_postgresql_database_comes_back_empty_and_at_head(
    postgres: PostgresCluster,
) -> None:
    url = postgres.new_migrated_database(upgraded)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(CallLog.__table__).values(**ROW))
    assert rows(engine) == 1
    engine.dispose()
    postgres.give_back_migrated(url)

    migrated = postgres.migrations
    again = postgres.new_migrated_database(upgraded)
    assert postgres.migrations == migrated  # reused, not migrated again
    engine = make_engine(again)
    assert rows(engine) == 0
    assert schema_state(engine).current == head()
    with engine.begin() as connection:
        first = connection.execute(insert(CallLog.__table__).values(**ROW)).inserted_primary_key
    assert first is not None and first[0] == 1  # identities start again
    engine.dispose()
    postgres.give_back_migrated(again)


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE call_log ADD COLUMN stray integer",
        "ALTER TABLE call_log ADD CONSTRAINT stray CHECK (hook <> 'x')",
        "ALTER TABLE call_log ALTER COLUMN hook SET DEFAULT 'patient-view'",
        "CREATE SEQUENCE stray",
        "CREATE SCHEMA stray",
        "ALTER DATABASE {database} SET timezone TO 'Pacific/Auckland'",
    ],
)
def test_a_postgresql_database_a_test_changed_is_not_handed_out_again(
    postgres: PostgresCluster, change: str
) -> None:
    url = postgres.new_migrated_database(upgraded)
    before = postgres.migrations
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(change.format(database=url.rsplit("/", 1)[1])))
    engine.dispose()
    postgres.give_back_migrated(url)

    again = postgres.new_migrated_database(upgraded)
    assert postgres.migrations == before + 1  # made afresh
    engine = make_engine(again)
    with engine.connect() as connection:
        assert connection.execute(text("SHOW timezone")).scalar() != "Pacific/Auckland"
        assert connection.execute(text("SELECT to_regclass('stray')")).scalar() is None
        assert connection.execute(text("SELECT to_regnamespace('stray')")).scalar() is None
    columns = {c["name"]: c for c in inspect(engine).get_columns("call_log")}
    assert "stray" not in columns and columns["hook"]["default"] is None
    assert [c["name"] for c in inspect(engine).get_check_constraints("call_log")] == []
    assert schema_state(engine).current == head()
    engine.dispose()
    postgres.give_back_migrated(again)


def test_an_embedded_copy_is_at_head_and_leaves_the_original_alone(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_at_head: Path
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = make_engine(migrated_database(request, "sqlite", tmp_path / "a"))
    with first.begin() as connection:
        connection.execute(insert(CallLog.__table__).values(**ROW))
    first.dispose()

    second = make_engine(migrated_database(request, "sqlite", tmp_path / "b"))
    assert rows(second) == 0
    assert schema_state(second).current == head()
    second.dispose()
    original = make_engine(f"sqlite+pysqlite:///{sqlite_at_head}")
    assert rows(original) == 0
    original.dispose()
