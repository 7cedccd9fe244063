"""The register's retention (`IRIS_RETENTION_REGISTER_DAYS`): once set, `store purge` deletes
the flags partners ended long ago, with their versions and access log, on SQLite and a real
PostgreSQL; never a flag still active, nor one changed within the period. Unset, every flag is
kept."""

import datetime
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text, update

from iris_prompt.cli import main
from iris_prompt.register.repository import Accessor, FlagRegister, NotFound
from iris_prompt.register.retention import purge_ended
from iris_prompt.register.tables import RegisterAccess, RegisterFlag, RegisterFlagVersion
from iris_prompt.store.database import make_engine, sqlite_url
from tests.api.register_support import PROBATION, mappa_flag

PARTNER = Accessor(client_id="probation-system", organisation=PROBATION)
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)  # a year's period: cutoff 2029-01-01
BASE = "https://iris.example.nhs.uk/fhir"


def at(day: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.UTC)


def flags(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(RegisterFlag.id)).scalars())


def rows_of(engine: Engine, table: Any, flag_id: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(table).where(table.flag_id == flag_id)
        ).scalar_one()


def publish(register: FlagRegister, created: str, **flag: Any) -> str:
    return str(register.create(mappa_flag(**flag), PARTNER, at(created))["id"])


def change(register: FlagRegister, flag_id: str, on: str, **fields: Any) -> None:
    """A new version of the flag on `on`, with `fields` changed (read first, as partners do)."""
    current = register.read(flag_id, PARTNER, at(on))
    version = int(current["meta"]["versionId"])
    register.update(flag_id, current | fields, version, PARTNER, at(on))


def test_purge_deletes_flags_ended_long_ago_and_keeps_every_other(engine: Engine) -> None:
    register = FlagRegister(engine, BASE)
    ended_long_ago = publish(register, "2026-10-01")
    change(register, ended_long_ago, "2026-12-01", status="inactive")
    in_error_long_ago = publish(register, "2026-10-01")
    change(register, in_error_long_ago, "2026-11-01", status="entered-in-error")
    ended_lately = publish(register, "2026-10-01")
    change(register, ended_lately, "2029-06-01", status="inactive")
    ended_at_the_cutoff = publish(register, "2026-10-01")
    change(register, ended_at_the_cutoff, "2029-01-01", status="inactive")
    # Still active: kept, however long ago the review date passed, until a partner ends it.
    lapsed_long_ago = publish(register, "2026-01-01", start="2026-01-01", end="2026-06-01")
    in_force_since_long_ago = publish(register, "2026-01-01", start="2026-01-01", end="2031-01-01")

    assert purge_ended(engine, 365, NOW) == 2
    assert flags(engine) == {
        ended_lately,
        ended_at_the_cutoff,
        lapsed_long_ago,
        in_force_since_long_ago,
    }
    # Nothing of a deleted flag is left: not a version, not a line of its access log.
    for gone in (ended_long_ago, in_error_long_ago):
        assert rows_of(engine, RegisterFlagVersion, gone) == 0
        assert rows_of(engine, RegisterAccess, gone) == 0
    # What is kept is whole.
    assert rows_of(engine, RegisterFlagVersion, ended_lately) == 2
    assert rows_of(engine, RegisterAccess, ended_lately) == 1
    # A partner writing to a deleted flag is told it is gone; a second purge finds nothing.
    with pytest.raises(NotFound):
        register.update(ended_long_ago, mappa_flag(), 2, PARTNER, NOW)
    assert purge_ended(engine, 365, NOW) == 0


def test_a_read_recorded_after_its_flag_was_purged_goes_with_the_next_purge(
    engine: Engine,
) -> None:
    """A read racing the purge may record its access row once the flag has gone: the next
    purge removes such rows, and no other."""
    register = FlagRegister(engine, BASE)
    kept = publish(register, "2026-10-01")
    register.read(kept, PARTNER, at("2029-12-01"))
    with engine.begin() as connection:
        connection.execute(
            insert(RegisterAccess).values(
                flag_id="purged-while-read",
                version=2,
                at=NOW,
                interaction="read",
                client_id=PARTNER.client_id,
                organisation=PARTNER.organisation,
            )
        )
    assert purge_ended(engine, 365, NOW) == 0
    assert rows_of(engine, RegisterAccess, "purged-while-read") == 0
    assert rows_of(engine, RegisterAccess, kept) == 1


def test_a_flag_reactivated_while_the_purge_runs_is_kept_whole(engine: Engine) -> None:
    """A partner reactivates a long-ended flag in the very transaction the purge must wait for:
    the purge then finds it active and deletes nothing of it, not even its history."""
    register = FlagRegister(engine, BASE)
    flag_id = publish(register, "2026-10-01")
    change(register, flag_id, "2026-12-01", status="inactive")
    with engine.connect() as renewal:
        renewal.execute(
            update(RegisterFlag)
            .where(RegisterFlag.id == flag_id)
            .values(status="active", last_updated=NOW)
        )  # not yet committed: the renewal holds the flag's row (PostgreSQL) or the database
        deleted: list[int] = []
        purge = threading.Thread(
            target=lambda: deleted.append(purge_ended(engine, 365, NOW)), daemon=True
        )
        if engine.dialect.name == "postgresql":
            renewal_pid = renewal.execute(text("SELECT pg_backend_pid()")).scalar_one()
            purge.start()
            # The purge waits on the renewal's lock. PostgreSQL shows it (pg_blocking_pids) but
            # sends no event, so this asks until it does, while the purge is still running.
            blocked = text(
                "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
            )
            deadline = time.monotonic() + 20
            with engine.connect() as watcher:
                while not watcher.execute(blocked, {"pid": renewal_pid}).scalar_one():
                    assert purge.is_alive(), "the purge ended without waiting for the renewal"
                    assert time.monotonic() < deadline, "the purge never waited for the renewal"
                    watcher.rollback()
                    threading.Event().wait(0.01)
        else:
            # SQLite shows no waiting writer: the purge may wait on the lock, or start after the
            # commit. Either way it must find the flag active.
            purge.start()
        renewal.commit()
    purge.join(timeout=30)
    assert not purge.is_alive()
    assert deleted == [0]
    assert flags(engine) == {flag_id}
    assert rows_of(engine, RegisterFlagVersion, flag_id) == 2


def test_store_purge_keeps_the_register_unless_a_period_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("IRIS_DATA_DIR", str(data))
    for name in ("IRIS_DATABASE_URL", "IRIS_RETENTION_REGISTER_DAYS"):
        monkeypatch.delenv(name, raising=False)
    # Before the store is made, purge deletes nothing and says what to run first.
    assert main(["store", "purge"]) == 2
    refused = capsys.readouterr()
    assert refused.out == ""
    assert "the store's schema is at nothing, this release needs" in refused.err
    assert "run `iris-prompt store upgrade` first" in refused.err
    assert main(["store", "upgrade"]) == 0
    # A flag a partner ended years ago.
    engine = make_engine(sqlite_url(data))
    register = FlagRegister(engine, BASE)
    ended = publish(register, "2020-01-01", start="2020-01-01", end="2020-12-01")
    change(register, ended, "2020-02-01", status="inactive")
    capsys.readouterr()
    assert main(["store", "purge"]) == 0
    assert "register: every flag kept (IRIS_RETENTION_REGISTER_DAYS is not set)" in (
        capsys.readouterr().out
    )
    assert flags(engine) == {ended}
    monkeypatch.setenv("IRIS_RETENTION_REGISTER_DAYS", "1095")
    assert main(["store", "purge"]) == 0
    out = capsys.readouterr().out
    assert "audit: 0 deleted (older than 2922 days)" in out
    assert "register: 1 ended flags deleted (unchanged for over 1095 days)" in out
    assert flags(engine) == set()
    engine.dispose()
    # A period under a year is refused, naming the setting and not echoing the value (a slip
    # of "30" meant as months would delete flags a partner may still be asked about).
    monkeypatch.setenv("IRIS_RETENTION_REGISTER_DAYS", "30")
    assert main(["store", "purge"]) == 2
    refused = capsys.readouterr()
    assert refused.out == ""
    assert refused.err == (
        "iris-prompt store purge: the settings are refused: IRIS_RETENTION_REGISTER_DAYS: "
        "Input should be greater than or equal to 365\n"
    )
    # A setting that cannot even be parsed is refused as clearly.
    monkeypatch.setenv("IRIS_RETENTION_REGISTER_DAYS", "365")
    monkeypatch.setenv("IRIS_TRUSTED_ISSUERS", "not json")
    assert main(["store", "purge"]) == 2
    refused = capsys.readouterr()
    assert "the settings are refused" in refused.err and "IRIS_TRUSTED_ISSUERS" in refused.err
    assert "Traceback" not in refused.err


def test_a_schema_newer_than_this_release_is_not_told_to_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("IRIS_DATA_DIR", str(data))
    monkeypatch.delenv("IRIS_DATABASE_URL", raising=False)
    assert main(["store", "upgrade"]) == 0
    engine = make_engine(sqlite_url(data))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    capsys.readouterr()
    assert main(["store", "purge"]) == 2
    refused = capsys.readouterr().err
    assert "the store's schema is at 0099, newer than this release's" in refused
    assert "store upgrade" not in refused


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("not a url", "IRIS_DATABASE_URL is not a usable database URL (ArgumentError)"),
        (
            "postgresql+psycopg://iris:pa55word@127.0.0.1:1/iris",
            "the store's database cannot be reached (OperationalError)",
        ),
    ],
)
def test_a_database_url_that_cannot_be_used_is_refused_without_its_password(
    url: str, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_DATABASE_URL", url)
    for command in (["store", "purge"], ["store", "upgrade"], ["report"]):
        assert main(command) == 2
        refused = capsys.readouterr()
        assert refused.out == ""
        assert refused.err == f"iris-prompt {' '.join(command)}: {said}\n"
