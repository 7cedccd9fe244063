"""The store commands (`store upgrade|purge`, `report`) and the service's start-up on a store
they cannot use: each says what is wrong and what to run, with no traceback and no secret, and
leaves no empty store behind."""

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from iris_prompt.cli import main
from iris_prompt.store import analytics
from iris_prompt.store.database import (
    SQLITE_FILE,
    SchemaNewer,
    StoreUnreachable,
    UnusableUrl,
    head,
    make_engine,
    prepare,
    schema_state,
    sqlite_url,
)
from tests.conftest import migrated_database
from tests.support.postgres import PostgresCluster

COMMANDS = [["store", "purge"], ["report"], ["report", "--csv"]]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded store's folder, the only store these commands see."""
    folder = tmp_path / "data"
    monkeypatch.setenv("IRIS_DATA_DIR", str(folder))
    monkeypatch.delenv("IRIS_DATABASE_URL", raising=False)
    return folder


def never_migrated(command: list[str], where: str) -> str:
    """What `command` says of a store with no schema yet, `where` saying where it looked."""
    name = " ".join(word for word in command if not word.startswith("--"))
    return (
        f"iris-prompt {name}: the store's schema is at nothing, this release needs "
        f"{head()}: run `iris-prompt store upgrade` first ({where})\n"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_with_no_store_yet_a_command_says_what_to_run_and_makes_nothing(
    command: list[str], data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    said = capsys.readouterr()
    assert (said.out, said.err) == ("", never_migrated(command, f"looked in {data}"))
    assert not data.exists()  # a mistyped IRIS_DATA_DIR leaves no empty store to confuse


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_store_file_is_refused_as_never_migrated_and_left_empty(
    command: list[str], data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 0-byte iris.sqlite3 (a failed copy, a `touch`): opening it would make it a database
    (a journal mode written into it) before the schema check refused the command."""
    data.mkdir()
    (data / SQLITE_FILE).touch()
    assert main(command) == 2
    assert [p.name for p in data.iterdir()] == [SQLITE_FILE]
    assert (data / SQLITE_FILE).stat().st_size == 0
    said = capsys.readouterr()
    assert (said.out, said.err) == ("", never_migrated(command, f"{data / SQLITE_FILE} is empty"))
    assert main(["store", "upgrade"]) == 0  # which makes it the store
    assert main(command) == 0


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


UNUSABLE_URLS = [
    # A driver this release does not ship: PostgreSQL is reached through psycopg 3.
    "postgresql+psycopg2://iris:s3cret-pw@127.0.0.1:1/iris",
    "postgres://iris:s3cret-pw@127.0.0.1:1/iris",
    # The password where the port goes: the parser's error quotes it.
    "postgresql+psycopg://iris@127.0.0.1:s3cret-pw/iris",
    "not a url",
]


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_a_database_url_this_release_cannot_open_is_refused_without_a_traceback_or_secret(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Start-up (`prepare`, which `serve` runs) and the store commands say the same: the setting
    and the error's type, with the driver to use when the driver is the problem."""
    with pytest.raises(UnusableUrl) as refused:
        prepare(url, tmp_path / "data")
    said = str(refused.value)
    assert said.startswith("IRIS_DATABASE_URL is not a usable database URL (")
    assert "s3cret" not in said
    if "psycopg2" in url or url.startswith("postgres:"):
        assert said.endswith(
            "PostgreSQL is reached as postgresql+psycopg://user:password@host/database"
        )
    monkeypatch.setenv("IRIS_DATABASE_URL", url)
    monkeypatch.setenv("IRIS_PSEUDONYM_KEY", "k" * 40)
    for command in (["store", "upgrade"], ["store", "purge"], ["report"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.endswith(said + "\n") and "s3cret" not in err and "Traceback" not in err


def test_a_store_a_newer_release_migrated_is_never_migrated_back(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback to this release: neither `serve` nor `store upgrade` touches the schema, and
    both say which release to run instead of failing inside the migration tool."""
    assert main(["store", "upgrade"]) == 0
    set_schema(data, "0099")
    capsys.readouterr()
    with pytest.raises(SchemaNewer, match="schema is at 0099, newer than this release's"):
        prepare(None, data)
    assert main(["store", "upgrade"]) == 2
    said = capsys.readouterr().err
    assert said == (
        f"iris-prompt store upgrade: the store's schema is at 0099, newer than this release's "
        f"{head()}: run the release that migrated it\n"
    )
    engine = make_engine(sqlite_url(data))
    assert schema_state(engine).current == "0099"
    engine.dispose()


def test_a_data_folder_that_cannot_be_made_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    occupied = tmp_path / "data"
    occupied.write_text("a file where the folder should be")
    with pytest.raises(StoreUnreachable) as refused:
        prepare(None, occupied)
    assert str(refused.value) == (
        f"the embedded store's folder {occupied} (IRIS_DATA_DIR) cannot be made: File exists"
    )
    monkeypatch.setenv("IRIS_DATA_DIR", str(occupied))
    monkeypatch.delenv("IRIS_DATABASE_URL", raising=False)
    assert main(["store", "upgrade"]) == 2
    assert capsys.readouterr().err == (
        f"iris-prompt store upgrade: {occupied} (IRIS_DATA_DIR) cannot be made: File exists\n"
    )


def test_sqlites_own_words_for_an_error_mid_command_are_kept(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's words name a file at most (a read-only file, a full disk), so they are said.
    The error is raised by a stand-in for the report query: an embedded file cannot be made to
    fail at that instant here."""
    from sqlalchemy.exc import OperationalError

    assert main(["store", "upgrade"]) == 0
    monkeypatch.setenv("IRIS_PSEUDONYM_KEY", "k" * 40)

    def full(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("database or disk is full"))

    monkeypatch.setattr("iris_prompt.store.analytics.report", full)
    assert main(["report"]) == 2
    said = capsys.readouterr().err
    assert said == "iris-prompt report: the store's database refused: database or disk is full\n"


LOCKED_OUT = "ward_clerk_q7z"  # a user name no other text of the run contains


def test_a_postgresql_error_mid_command_names_no_server_or_user(
    postgres: PostgresCluster,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The store's account is locked out while `report` runs, after its checks passed, as a
    DBA would: psycopg's words for that name the server and the user, so only the error's type
    and SQLSTATE are said. A real PostgreSQL refusing a real login."""
    url = migrated_database(request, "postgresql", tmp_path)
    database_name = url.rsplit("/", 1)[1]
    admin = f"host=127.0.0.1 port={postgres.port} user=postgres dbname={database_name}"

    def admin_sql(*statements: str) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    ended = (
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        f" WHERE usename = '{LOCKED_OUT}'"
    )
    admin_sql(
        f"CREATE ROLE {LOCKED_OUT} LOGIN",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {LOCKED_OUT}",
    )
    try:
        monkeypatch.setenv("IRIS_DATABASE_URL", url.replace("postgres@", f"{LOCKED_OUT}@"))
        monkeypatch.setenv("IRIS_PSEUDONYM_KEY", "k" * 40)
        report = analytics.report

        def locked_out_first(*args: Any, **kwargs: Any) -> Any:
            admin_sql(f"ALTER ROLE {LOCKED_OUT} NOLOGIN", ended)
            return report(*args, **kwargs)

        monkeypatch.setattr(analytics, "report", locked_out_first)
        assert main(["report"]) == 2
        said = capsys.readouterr()
        assert said.out == ""
        assert LOCKED_OUT not in said.err and "127.0.0.1" not in said.err
        # A login refused carries no SQLSTATE: libpq reports it as the connection failing.
        assert said.err == "iris-prompt report: the store's database refused: OperationalError\n"
    finally:
        admin_sql(ended, f"DROP OWNED BY {LOCKED_OUT}", f"DROP ROLE {LOCKED_OUT}")
