"""The register's retention (`IRIS_RETENTION_REGISTER_DAYS`): once set, `store purge` deletes
the flags long ended, with their versions and access log, on SQLite and a real PostgreSQL, and
never a flag in force or one changed within the period. Unset, every flag is kept."""

import datetime
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update

from iris_prompt.cli import main
from iris_prompt.register.repository import Accessor, FlagRegister, NotFound
from iris_prompt.register.retention import purge_ended
from iris_prompt.register.tables import RegisterAccess, RegisterFlag, RegisterFlagVersion
from tests.api.register_support import PROBATION, mappa_flag

PARTNER = Accessor(client_id="probation-system", organisation=PROBATION)
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)  # a year's period: cutoff 2029-01-01


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


def test_purge_deletes_flags_long_ended_and_keeps_every_other(engine: Engine) -> None:
    register = FlagRegister(engine, "https://iris.example.nhs.uk/fhir")

    def publish(created: str, **flag: Any) -> str:
        return str(register.create(mappa_flag(**flag), PARTNER, at(created))["id"])

    def end(flag_id: str, on: str) -> None:
        current = register.read(flag_id, PARTNER, at(on))
        ended = current | {"status": "inactive"}
        register.update(flag_id, ended, int(current["meta"]["versionId"]), PARTNER, at(on))

    expired_long_ago = publish("2026-10-01", start="2026-10-01", end="2027-04-01")
    ended_long_ago = publish("2026-10-01", start="2026-10-01", end="2031-04-01")
    end(ended_long_ago, "2026-12-01")
    ended_lately = publish("2026-10-01", start="2026-10-01", end="2031-04-01")
    end(ended_lately, "2029-06-01")
    in_force_since_long_ago = publish("2026-01-01", start="2026-01-01", end="2031-01-01")
    expired_lately = publish("2026-01-01", start="2026-01-01", end="2029-06-01")
    expired_but_changed_lately = publish("2026-10-01", start="2026-10-01", end="2027-04-01")
    current = register.read(expired_but_changed_lately, PARTNER, at("2029-09-01"))
    register.update(
        expired_but_changed_lately, current, int(current["meta"]["versionId"]), PARTNER,
        at("2029-09-01"),
    )  # fmt: skip

    assert purge_ended(engine, 365, NOW) == 2
    assert flags(engine) == {
        ended_lately,
        in_force_since_long_ago,
        expired_lately,
        expired_but_changed_lately,
    }
    # Nothing of a deleted flag is left: not a version, not a line of its access log.
    for gone in (expired_long_ago, ended_long_ago):
        assert rows_of(engine, RegisterFlagVersion, gone) == 0
        assert rows_of(engine, RegisterAccess, gone) == 0
    # What is kept is whole.
    assert rows_of(engine, RegisterFlagVersion, ended_lately) == 2
    assert rows_of(engine, RegisterAccess, ended_lately) == 1
    # A partner writing to a deleted flag is told it is gone; a second purge finds nothing.
    with pytest.raises(NotFound):
        register.update(ended_long_ago, mappa_flag(), 2, PARTNER, NOW)
    assert purge_ended(engine, 365, NOW) == 0


def test_a_flag_renewed_while_the_purge_runs_is_kept_whole(engine: Engine) -> None:
    """A partner renews a long-ended flag in the very transaction the purge must wait for: the
    purge then finds it in force and deletes nothing of it, not even its history."""
    register = FlagRegister(engine, "https://iris.example.nhs.uk/fhir")
    flag_id = str(register.create(mappa_flag(), PARTNER, at("2026-10-01"))["id"])
    with engine.connect() as renewal:
        renewal.execute(
            update(RegisterFlag)
            .where(RegisterFlag.id == flag_id)
            .values(status="active", last_updated=NOW, period_end=at("2031-01-01"))
        )  # not yet committed: the renewal holds the flag's row (PostgreSQL) or the database
        deleted: list[int] = []
        purge = threading.Thread(target=lambda: deleted.append(purge_ended(engine, 365, NOW)))
        purge.start()
        if engine.dialect.name == "postgresql":
            # The purge is waiting on the renewal's lock. PostgreSQL says so in pg_stat_activity
            # but sends no event for it, so this asks until it does. (SQLite shows no waiting
            # writer: there the purge may wait on the lock or start after the commit.)
            with engine.connect() as watcher:
                waiting = text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
                while not watcher.execute(waiting).scalar_one():
                    threading.Event().wait(0.01)
                    watcher.rollback()
        renewal.commit()
        purge.join(timeout=30)
    assert deleted == [0]
    assert flags(engine) == {flag_id}
    assert rows_of(engine, RegisterFlagVersion, flag_id) == 1


def test_store_purge_keeps_the_register_unless_a_period_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IRIS_RETENTION_REGISTER_DAYS", raising=False)
    # Before the store is made, purge deletes nothing and says what to run first.
    assert main(["store", "purge"]) == 2
    refused = capsys.readouterr()
    assert refused.out == ""
    assert "the store's schema is at nothing" in refused.err
    assert "run `iris-prompt store upgrade` first" in refused.err
    assert main(["store", "upgrade"]) == 0
    assert main(["store", "purge"]) == 0
    assert "register: every flag kept (IRIS_RETENTION_REGISTER_DAYS is not set)" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("IRIS_RETENTION_REGISTER_DAYS", "1095")
    assert main(["store", "purge"]) == 0
    assert "register: 0 flags deleted (ended over 1095 days ago)" in capsys.readouterr().out
    # A period under a year is refused, naming the setting (a slip of "30" meant as months or
    # years would delete flags a partner still relies on).
    monkeypatch.setenv("IRIS_RETENTION_REGISTER_DAYS", "30")
    assert main(["store", "purge"]) == 2
    refused = capsys.readouterr()
    assert refused.out == ""
    assert "iris-prompt store purge: the settings are refused" in refused.err
    assert "retention_register_days" in refused.err
