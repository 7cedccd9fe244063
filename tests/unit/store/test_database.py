"""The schema: migrations on both engines, run twice, and what start-up does with each."""

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from iris_prompt.store.database import (
    SQLITE_FILE,
    SchemaBehind,
    _config,
    make_engine,
    prepare,
    schema_state,
    upgrade,
)

TABLES = {"audit_event", "feedback", "call_log", "issued_card", "alembic_version"}


def test_upgrade_makes_every_table_and_a_second_run_changes_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    assert not schema_state(engine).ok
    first = upgrade(engine)
    assert first.ok
    assert TABLES <= set(inspect(engine).get_table_names())
    second = upgrade(engine)  # a migration run twice
    assert second == first
    engine.dispose()


def test_embedded_sqlite_is_made_and_upgraded_on_first_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-yet" / "there"
    engine = prepare(None, data_dir)
    assert (data_dir / SQLITE_FILE).is_file()
    assert schema_state(engine).ok
    engine.dispose()


def test_a_postgresql_schema_behind_refuses_start_naming_the_command(postgres: object) -> None:
    url = postgres.new_database()  # type: ignore[attr-defined]
    with pytest.raises(SchemaBehind, match="iris-prompt store upgrade"):
        prepare(url, Path("unused"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    prepare(url, Path("unused")).dispose()  # at head: starts


def test_a_store_at_0001_upgrades_to_the_repeat_hold_back_keeping_its_rows(
    database_url: str,
) -> None:
    """A release's store, with calls logged, takes the repeat hold-back's columns; its old rows
    (without them) stay and simply never hold a card back."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO call_log (call_uid, at, service_id, hook, codeset_versions, "
                "patient_key, cards, categories, codes, suppressed, household_checked) VALUES "
                "('c1', '2026-11-26 10:00:00+00:00', 's', 'patient-view', 'v', 'k', '[]', "
                "'[]', '[]', false, true)"
            )
        )
    assert schema_state(engine).current == "0001"
    assert upgrade(engine).ok
    columns = {c["name"] for c in inspect(engine).get_columns("call_log")}
    assert "encounter_key" in columns
    assert "content_key" in {c["name"] for c in inspect(engine).get_columns("issued_card")}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT call_uid, encounter_key FROM call_log")).all()
    assert [tuple(row) for row in rows] == [("c1", None)]
    engine.dispose()


def test_every_migration_rolls_back_and_forward_again(database_url: str) -> None:
    """An upgrade that goes wrong in production is undone with `alembic downgrade`: every
    migration's downgrade removes what it made, and the schema is made again from nothing."""
    engine = make_engine(database_url)
    assert upgrade(engine).ok
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    left = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    assert schema_state(engine).current is None
    assert upgrade(engine).ok
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
