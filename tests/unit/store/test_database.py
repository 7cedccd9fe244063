"""The schema: migrations on both engines, run twice, and what start-up does with each."""

from pathlib import Path

import pytest
from sqlalchemy import inspect

from iris_prompt.store.database import (
    SQLITE_FILE,
    SchemaBehind,
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
