"""The disclosure audit: who was shown a household member's MAPPA flag (or the patient's known
abuse), written before the card is returned, and never lost.

    AuditLog.record(disclosures) -> "stored" | "spooled" | "failed"

1. The database, in one transaction; else
2. the spool: one JSON line per record appended to a local file and fsynced; the card is shown.
   `replay()` moves spooled records into the database when it is back. The card uuid is each
   record's key and replay inserts "on conflict do nothing", so a record replayed twice (a crash
   between insert and truncation) is stored once; else
3. "failed": the caller withholds the MAPPA detail and shows a discreet card instead.

Each path is logged (no identifiers: hookInstance and counts only) and counted in `counts`.
Records are append-only: nothing here updates or deletes; `retention.purge` deletes past
retention only.
"""

import datetime
import logging
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

import orjson
from sqlalchemy import ColumnElement, Engine, Select, Table, cast, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from iris_prompt.store.database import StoreUnreachable
from iris_prompt.store.models import AuditEvent

__all__ = [
    "AuditFilters",
    "AuditLog",
    "AuditOutcome",
    "Disclosure",
    "Spool",
    "insert_ignoring_duplicates",
]

log = logging.getLogger(__name__)

AuditOutcome = Literal["stored", "spooled", "failed"]
AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One card's disclosure. `entities` are the flags shown ("Flag/id" on `fhir_server`)."""

    card_uuid: str
    kind: str
    recorded: datetime.datetime
    service_id: str
    hook: str
    hook_instance: str
    user_id: str
    patient: str
    issuer: str | None = None
    tenant: str | None = None
    fhir_server: str | None = None
    entities: tuple[str, ...] = ()
    relationship: str | None = None

    def row(self, via: str = "database") -> dict[str, Any]:
        """The database row. A NUL character, which PostgreSQL cannot hold in text (nor in
        jsonb, which the entity search reads), becomes U+FFFD: an id from a record system that
        holds one must not keep its disclosure out of the audit, or the audit out of reach."""
        values = {k: _storable(v) if isinstance(v, str) else v for k, v in asdict(self).items()}
        values["entities"] = [_storable(entity) for entity in self.entities]
        values["via"] = via
        return values

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: bytes) -> "Disclosure":
        data = orjson.loads(line)
        data["recorded"] = datetime.datetime.fromisoformat(data["recorded"])
        data["entities"] = tuple(data["entities"])
        return cls(**data)


def _storable(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def insert_ignoring_duplicates(engine: Engine, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, on either engine."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


class Spool:
    """An append-only file of disclosures the database could not take, fsynced per append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def append(self, disclosures: Sequence[Disclosure]) -> None:
        data = b"".join(d.to_json() + b"\n" for d in disclosures)
        with self.lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"short write to the audit spool ({written} of {len(data)})")
                os.fsync(fd)
            finally:
                os.close(fd)

    def check(self) -> None:
        """StoreUnreachable unless the spool can be appended to. A spool in a folder that does
        not exist or cannot be written, or that is a folder, fails only when the database has
        failed too: too late to find out, with a disclosure then kept nowhere."""
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        except OSError as error:
            raise StoreUnreachable(
                f"the audit spool {self.path} (IRIS_AUDIT_SPOOL, or in IRIS_DATA_DIR) cannot be "
                f"written: {error.strerror or type(error).__name__}"
            ) from None

    def pending(self) -> int:
        """Records waiting to be replayed (0 unless the spool is a regular file)."""
        if not self.path.is_file():
            return 0
        return sum(1 for line in self.path.read_bytes().splitlines() if line.strip())


class AuditFilters(TypedDict, total=False):
    """What an audit search filters on; each left out matches every record."""

    entity: str | None
    patient: str | None
    agent: str | None
    since: datetime.datetime | None
    until: datetime.datetime | None


@dataclass
class AuditLog:
    engine: Engine
    spool: Spool
    counts: Counter[str] = field(default_factory=Counter)

    def record(self, disclosures: Sequence[Disclosure], hook_instance: str) -> AuditOutcome:
        """Write `disclosures` durably before the cards are returned (see the module doc)."""
        if not disclosures:
            return "stored"
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert_ignoring_duplicates(self.engine, AUDIT_TABLE),
                    [d.row() for d in disclosures],
                )
        except SQLAlchemyError as error:
            log.error(
                "audit: database unavailable (%s), spooling %d record(s) hookInstance=%s",
                type(error).__name__,
                len(disclosures),
                hook_instance,
            )
        else:
            self.counts["stored"] += len(disclosures)
            return "stored"
        try:
            self.spool.append(disclosures)
        except OSError as error:
            self.counts["failed"] += len(disclosures)
            log.critical(
                "audit: database and spool both failed (spool: %s errno=%s); MAPPA detail "
                "withheld, discreet card shown hookInstance=%s",
                type(error).__name__,
                error.errno,
                hook_instance,
            )
            return "failed"
        self.counts["spooled"] += len(disclosures)
        log.warning(
            "audit: %d record(s) spooled to the local file hookInstance=%s",
            len(disclosures),
            hook_instance,
        )
        return "spooled"

    def replay(self) -> int:
        """Move spooled records into the database; returns how many were replayed. The spool is
        emptied only after the database committed them; a record already stored is skipped."""
        with self.spool.lock:
            if not self.spool.path.is_file():
                return 0
            data = self.spool.path.read_bytes()
            lines = [line for line in data.splitlines() if line.strip()]
            if not lines:
                return 0
            records = []
            for line in lines:
                try:
                    records.append(Disclosure.from_json(line))
                except (ValueError, TypeError, KeyError):
                    # A torn last line (killed mid-append, before its fsync returned): that
                    # record was never acknowledged, so no card was shown on its strength.
                    log.warning("audit: an unreadable spool line skipped")
            try:
                with self.engine.begin() as connection:
                    if records:
                        connection.execute(
                            insert_ignoring_duplicates(self.engine, AUDIT_TABLE),
                            [d.row(via="spool") for d in records],
                        )
            except SQLAlchemyError:
                return 0
            # Emptied in place, fsynced: appends wait on the lock, so none is lost.
            with self.spool.path.open("r+b") as spool_file:
                spool_file.truncate(0)
                os.fsync(spool_file.fileno())
        self.counts["replayed"] += len(records)
        log.info("audit: %d spooled record(s) replayed into the database", len(records))
        return len(records)

    def search(
        self, *, limit: int = 1000, offset: int = 0, **filters: Unpack[AuditFilters]
    ) -> list[AuditEvent]:
        """Audit records, newest first, `offset` of them skipped and at most `limit` kept.
        `entity` matches a flag reference ("Flag/f1") or a card uuid; `patient` "Patient/id"
        or the bare id; `agent` the userId. The database filters and pages: the log grows by
        every card shown, and none of it is read into memory to be thrown away."""
        query = self._matching(select(AuditEvent), filters)
        query = query.order_by(AuditEvent.recorded.desc(), AuditEvent.card_uuid)
        with Session(self.engine) as session:
            return list(session.scalars(query.offset(offset).limit(limit)))

    def count(self, **filters: Unpack[AuditFilters]) -> int:
        """How many records `search` finds with these filters, over every page."""
        query = self._matching(select(func.count()).select_from(AuditEvent), filters)
        with Session(self.engine) as session:
            return session.scalar(query) or 0

    def _matching(self, query: Select[Any], filters: AuditFilters) -> Select[Any]:
        entity, patient, agent = filters.get("entity"), filters.get("patient"), filters.get("agent")
        since, until = filters.get("since"), filters.get("until")
        if patient is not None:
            bare = patient.removeprefix("Patient/")
            query = query.where(AuditEvent.patient.in_([bare, f"Patient/{bare}"]))
        if agent is not None:
            query = query.where(AuditEvent.user_id == agent)
        if since is not None:
            query = query.where(AuditEvent.recorded >= since)
        if until is not None:
            query = query.where(AuditEvent.recorded < until)
        if entity is not None:
            query = query.where(or_(self._disclosed(entity), AuditEvent.card_uuid == entity))
        return query

    def _disclosed(self, entity: str) -> ColumnElement[bool]:
        """Whether a record's list of flags holds `entity`, item by item in the database: as
        text, another flag's id holding quotes could contain it."""
        if self.engine.dialect.name == "sqlite":
            items = func.json_each(AuditEvent.entities).table_valued("value")
            return select(items.c.value).where(items.c.value == entity).exists()
        return cast(AuditEvent.entities, JSONB).contains([entity])
