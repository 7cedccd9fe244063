"""The register's data: flags stored with every version, searched, and every read recorded.

    register = FlagRegister(engine, base_url="https://iris.example.nhs.uk/fhir")
    flag = register.create(resource, accessor, now)          # version 1
    flag = register.update(flag_id, resource, 1, accessor, now)  # version 2, or VersionConflict
    register.read(flag_id, accessor, now)                    # and an access row, together

A write is one transaction: the current row and the version row together, so nothing is half
stored. An update names the version it replaces and changes the row only if that is still the
current version (`UPDATE ... WHERE version = :expected`): of two writers racing on one flag,
one wins and the other gets `VersionConflict` (412), on SQLite and PostgreSQL alike. Every read
through the API writes its access row in the same transaction as the read: a read that cannot
be recorded is not answered.

Nothing is deleted here: a flag ends by `status` inactive or entered-in-error (a new version).
Only a retention purge deletes, and only flags partners ended long ago (retention.py).
"""

import datetime
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.orm import Session

from iris_prompt.register.profile import (
    FLAG_IDENTIFIER_SYSTEM,
    PROFILE_URL,
    author_ods,
    fhir_instant,
    period_end_instant,
    subject_nhs_number,
)
from iris_prompt.register.tables import RegisterAccess, RegisterFlag, RegisterFlagVersion

__all__ = [
    "Accessor",
    "FlagRegister",
    "NotFound",
    "RegisterError",
    "Search",
    "SubjectChanged",
    "VersionConflict",
    "WrongOrganisation",
]


class RegisterError(Exception):
    """A write or read the register refuses.

    RegisterError
    +-- NotFound            no such flag (or version): 404
    +-- VersionConflict     If-Match names a version that is not the current one: 412
    +-- WrongOrganisation   a client writing a flag another organisation authored: 403
    +-- SubjectChanged      an update moving a flag to another person: 422
    """


class NotFound(RegisterError):
    pass


# A FHIR id, as the register issues them (uuids). Anything else names no flag, and is not sent
# to the database: PostgreSQL refuses a NUL character in text with an error, not a miss.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _known(flag_id: str) -> str:
    if not FHIR_ID.fullmatch(flag_id):
        raise NotFound(flag_id)
    return flag_id


class VersionConflict(RegisterError):
    pass


class WrongOrganisation(RegisterError):
    pass


class SubjectChanged(RegisterError):
    pass


@dataclass(frozen=True, slots=True)
class Accessor:
    """Who is reading or writing: a registered client and the organisation it belongs to."""

    client_id: str
    organisation: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search: its flags, how many match over every page, and whether any come
    after this page."""

    flags: list[dict[str, Any]]
    total: int
    more: bool


@dataclass(frozen=True, slots=True)
class Search:
    """The supported search parameters, parsed (bounds are instants, `until` exclusive)."""

    nhs_number: str | None = None
    statuses: tuple[str, ...] = ()
    author: str | None = None
    # `date`: flags whose period overlaps [since, until).
    date_since: datetime.datetime | None = None
    date_until: datetime.datetime | None = None
    updated_since: datetime.datetime | None = None
    updated_until: datetime.datetime | None = None
    # `review-date`: flags whose review date (period.end) falls in [since, until).
    review_since: datetime.datetime | None = None
    review_until: datetime.datetime | None = None
    count: int = 100
    after: str | None = None  # the id the page starts after (flags come in order of id)


# On every household check: built once, values bound per call (building the statement with the
# values in it cost ten times as much as running it).
IN_FORCE = select(RegisterFlag.nhs_number, RegisterFlag.id, RegisterFlag.resource).where(
    RegisterFlag.nhs_number.in_(bindparam("numbers", expanding=True)),
    RegisterFlag.status == "active",
    RegisterFlag.period_start <= bindparam("now"),
    RegisterFlag.period_end > bindparam("now"),
)


def _utc(value: datetime.datetime) -> datetime.datetime:
    """SQLite hands back naive UTC; PostgreSQL aware."""
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def _instant(value: datetime.datetime) -> str:
    return _utc(value).astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _start(flag: Mapping[str, Any]) -> datetime.datetime:
    return fhir_instant(flag["period"]["start"], end=False)


class FlagRegister:
    """The flags, over the store's engine. `base_url` is the register's FHIR base (absolute):
    a flag's URL there is the entity the disclosure audit names."""

    def __init__(self, engine: Engine, base_url: str) -> None:
        self.engine = engine
        self.base_url = base_url.rstrip("/")

    def reference(self, flag_id: str) -> str:
        return f"{self.base_url}/Flag/{flag_id}"

    def _stamped(
        self, resource: Mapping[str, Any], flag_id: str, version: int, at: datetime.datetime
    ) -> dict[str, Any]:
        meta = dict(resource.get("meta") or {})
        meta |= {
            "versionId": str(version),
            "lastUpdated": _instant(at),
            "profile": [PROFILE_URL],
        }
        meta.pop("source", None)
        identifiers = [
            i
            for i in resource.get("identifier") or []
            if not (isinstance(i, Mapping) and i.get("system") == FLAG_IDENTIFIER_SYSTEM)
        ]
        identifiers.append({"system": FLAG_IDENTIFIER_SYSTEM, "value": flag_id})
        return {**resource, "id": flag_id, "meta": meta, "identifier": identifiers}

    def _columns(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        end = period_end_instant(resource)
        return {
            "status": resource["status"],
            "nhs_number": subject_nhs_number(resource),
            "author": author_ods(resource),
            "period_start": _start(resource),
            "period_end": end,
            "resource": resource,
        }

    # --- writes ----------------------------------------------------------------------------

    def create(
        self, resource: Mapping[str, Any], who: Accessor, now: datetime.datetime
    ) -> dict[str, Any]:
        """Store a checked Flag as a new flag (version 1); any id it carries is replaced."""
        if author_ods(resource) != who.organisation:
            raise WrongOrganisation("a client publishes flags of its own organisation only")
        flag_id = str(uuid.uuid4())
        stored = self._stamped(resource, flag_id, 1, now)
        with Session(self.engine) as session, session.begin():
            session.add(
                RegisterFlag(id=flag_id, version=1, last_updated=now, **self._columns(stored))
            )
            session.flush()
            session.add(
                RegisterFlagVersion(
                    flag_id=flag_id,
                    version=1,
                    last_updated=now,
                    client_id=who.client_id,
                    resource=stored,
                )
            )
        return stored

    def update(
        self,
        flag_id: str,
        resource: Mapping[str, Any],
        expected: int,
        who: Accessor,
        now: datetime.datetime,
    ) -> dict[str, Any]:
        """A new version of `flag_id`, if `expected` is still its current version."""
        with Session(self.engine) as session, session.begin():
            current = session.get(RegisterFlag, _known(flag_id))
            if current is None:
                raise NotFound(flag_id)
            if current.author != who.organisation or author_ods(resource) != who.organisation:
                raise WrongOrganisation("a client updates flags of its own organisation only")
            if subject_nhs_number(resource) != current.nhs_number:
                raise SubjectChanged(
                    "the subject of a flag cannot change: end this flag (entered-in-error) and "
                    "publish one for the right person"
                )
            if current.version != expected:
                raise VersionConflict(f"the current version is {current.version}")
            version = expected + 1
            stored = self._stamped(resource, flag_id, version, now)
            changed = session.execute(
                update(RegisterFlag)
                .where(RegisterFlag.id == flag_id, RegisterFlag.version == expected)
                .values(version=version, last_updated=now, **self._columns(stored))
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                # Another writer committed in between (the row's version moved on).
                raise VersionConflict("the flag was changed by another writer")
            session.add(
                RegisterFlagVersion(
                    flag_id=flag_id,
                    version=version,
                    last_updated=now,
                    client_id=who.client_id,
                    resource=stored,
                )
            )
        return stored

    # --- reads (each recorded) -------------------------------------------------------------

    @staticmethod
    def _record(
        session: Session,
        rows: Iterable[tuple[str, int]],
        interaction: str,
        who: Accessor,
        now: datetime.datetime,
    ) -> None:
        for flag_id, version in rows:
            session.add(
                RegisterAccess(
                    flag_id=flag_id,
                    version=version,
                    at=now,
                    interaction=interaction,
                    client_id=who.client_id,
                    organisation=who.organisation,
                )
            )

    def read(self, flag_id: str, who: Accessor, now: datetime.datetime) -> dict[str, Any]:
        with Session(self.engine) as session, session.begin():
            row = session.get(RegisterFlag, _known(flag_id))
            if row is None:
                raise NotFound(flag_id)
            self._record(session, [(flag_id, row.version)], "read", who, now)
            return dict(row.resource)

    def versions(
        self, flag_id: str, who: Accessor, now: datetime.datetime, version: int | None = None
    ) -> list[dict[str, Any]]:
        """Every version, newest first (`_history`), or the one `version` (vread)."""
        query = select(RegisterFlagVersion).where(RegisterFlagVersion.flag_id == _known(flag_id))
        if version is not None:
            query = query.where(RegisterFlagVersion.version == version)
        with Session(self.engine) as session, session.begin():
            rows = list(session.scalars(query.order_by(RegisterFlagVersion.version.desc())))
            if not rows:
                raise NotFound(flag_id)
            interaction = "vread" if version is not None else "history-instance"
            self._record(session, [(r.flag_id, r.version) for r in rows], interaction, who, now)
            return [dict(r.resource) for r in rows]

    def search(self, search: Search, who: Accessor, now: datetime.datetime) -> "Page":
        """The page of flags `search` asks for, in order of id, and how many it finds over every
        page. The order is one a flag keeps when it changes: a flag updated while a partner
        walks the pages neither drops out of the walk nor pushes another into it twice. Each
        flag on the page is recorded as read by `who`."""
        conditions = [
            (search.nhs_number, lambda v: RegisterFlag.nhs_number == v),
            (search.statuses or None, lambda v: RegisterFlag.status.in_(v)),
            (search.author, lambda v: RegisterFlag.author == v),
            (search.date_since, lambda v: RegisterFlag.period_end > v),
            (search.date_until, lambda v: RegisterFlag.period_start < v),
            (search.updated_since, lambda v: RegisterFlag.last_updated >= v),
            (search.updated_until, lambda v: RegisterFlag.last_updated < v),
            (search.review_since, lambda v: RegisterFlag.period_end > v),
            (search.review_until, lambda v: RegisterFlag.period_end <= v),
        ]
        wheres = [condition(value) for value, condition in conditions if value is not None]  # type: ignore[no-untyped-call]
        query = select(RegisterFlag).where(*wheres).order_by(RegisterFlag.id)
        if search.after is not None:
            query = query.where(RegisterFlag.id > search.after)
        with Session(self.engine) as session, session.begin():
            total = session.scalar(select(func.count()).select_from(RegisterFlag).where(*wheres))
            rows = list(session.scalars(query.limit(search.count + 1)))
            more, rows = len(rows) > search.count, rows[: search.count]
            self._record(session, [(r.id, r.version) for r in rows], "search", who, now)
            return Page([dict(r.resource) for r in rows], total or 0, more)

    # --- for the household check and the owner ---------------------------------------------

    def in_force(
        self, numbers: Sequence[str], now: datetime.datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """NHS number -> the active flags on that person whose period has started and not
        ended at `now`, each with `meta.source` its URL in the register (for the audit)."""
        if not numbers:
            return {}
        found: dict[str, list[dict[str, Any]]] = {}
        values = {"numbers": sorted(set(numbers)), "now": now}
        with self.engine.connect() as connection:
            for number, flag_id, resource in connection.execute(IN_FORCE, values):
                flag: dict[str, Any] = dict(resource)
                flag["meta"] = dict(flag.get("meta") or {}) | {"source": self.reference(flag_id)}
                found.setdefault(number, []).append(flag)
        return found

    def owner(self, flag_id: str) -> str | None:
        """The ODS code of the organisation that authored `flag_id` (None: no such flag)."""
        if not FHIR_ID.fullmatch(flag_id):
            return None
        with Session(self.engine) as session:
            row = session.get(RegisterFlag, flag_id)
            return row.author if row is not None else None

    def reads_of(self, flag_id: str) -> list[RegisterAccess]:
        query = (
            select(RegisterAccess)
            .where(RegisterAccess.flag_id == flag_id)
            .order_by(RegisterAccess.at.desc(), RegisterAccess.id.desc())
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))
