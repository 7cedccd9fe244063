"""`iris-prompt store purge` and `iris-prompt report` on a store they cannot use: each says
what to run and stops, with no traceback, and leaves no empty store behind."""

from pathlib import Path

import pytest
from sqlalchemy import text

from iris_prompt.cli import main
from iris_prompt.store.database import head, make_engine, sqlite_url

COMMANDS = [["store", "purge"], ["report"], ["report", "--csv"]]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded store's folder, the only store these commands see."""
    folder = tmp_path / "data"
    monkeypatch.setenv("IRIS_DATA_DIR", str(folder))
    monkeypatch.delenv("IRIS_DATABASE_URL", raising=False)
    return folder


@pytest.mark.parametrize("command", COMMANDS)
def test_with_no_store_yet_a_command_says_what_to_run_and_makes_nothing(
    command: list[str], data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    said = capsys.readouterr()
    assert said.out == ""
    name = " ".join(word for word in command if not word.startswith("--"))
    assert said.err == (
        f"iris-prompt {name}: the store's schema is at nothing, this release needs "
        f"{head()}: run `iris-prompt store upgrade` first\n"
    )
    assert not data.exists()  # a mistyped IRIS_DATA_DIR leaves no empty store to confuse


def set_schema(data: Path, revision: str) -> None:
    engine = make_engine(sqlite_url(data))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_store_behind_or_ahead_of_this_release_is_refused_not_read(
    command: list[str], data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read with the wrong schema, the report would fail half-way with the database's error
    (or worse, count the wrong columns): it is refused, saying which way to go."""
    assert main(["store", "upgrade"]) == 0
    set_schema(data, "0001")  # a store last migrated by an older release
    capsys.readouterr()
    assert main(command) == 2
    said = capsys.readouterr()
    assert said.out == "" and "Traceback" not in said.err
    assert f"schema is at 0001, this release needs {head()}: run `iris-prompt store upgrade`" in (
        said.err
    )
    set_schema(data, "0099")  # migrated by a newer release: upgrading cannot help
    assert main(command) == 2
    said = capsys.readouterr()
    assert "the store's schema is at 0099, newer than this release's" in said.err
    assert "store upgrade" not in said.err
    # At head again, the command runs.
    set_schema(data, head())
    assert main(command) == 0
