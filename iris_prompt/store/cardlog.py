"""The call log for the leads' analytics, written off the request path in batches.

A call only puts a `CallRecord` on a queue (microseconds); a writer thread takes up to
`batch_size` records at a time, or whatever is there after `interval` seconds, and inserts them
in one transaction. What a crash can lose is what was queued and not yet written: at most
`interval` seconds of calls (default 1 s), and never more than `max_queued` records. When the
database is away the writer keeps its batch and retries; records beyond `max_queued` are dropped
and counted (`counts["dropped"]`), never blocking a call.

No identifiers: a record holds a pseudonymous patient key (`pseudonym`), the practice (tenant
or issuer), card kinds, categories and codes, and keyed digests of the encounter and of what
each card says; no names, NHS numbers, FHIR ids or free text.

`shown_elsewhere` answers the repeat hold-back (docs/rules.md, "Repeated calls"): which of a
call's cards another service (the other hook) has already given for the same patient in the
same encounter, or within `REPEAT_WINDOW` when the encounter is not known on both sides. It
looks at records still queued first, then at the database, so a record being written between
the two is never missed.
"""

import datetime
import hashlib
import hmac
import logging
import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Select, Table, and_, bindparam, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError

from iris_prompt.store.driver_query import DriverReads
from iris_prompt.store.models import CallLog, IssuedCard

__all__ = ["REPEAT_WINDOW", "CallRecord", "CardLog", "content_key", "pseudonym"]

log = logging.getLogger(__name__)

CALL_TABLE: Table = CallLog.__table__  # type: ignore[assignment]
CARD_TABLE: Table = IssuedCard.__table__  # type: ignore[assignment]
# Without the same encounter on both sides, a card another hook gave this long ago is the same
# consultation's.
REPEAT_WINDOW = datetime.timedelta(minutes=10)


def _repeats_query(*, encounter_known: bool) -> Select[Any]:
    """The content keys of every card another service gave a patient in the same consultation
    (a few at most; the caller keeps those it asks about): built once, with bound parameters,
    as it is asked on every prompt (building it costs more than running it)."""
    call, card = CALL_TABLE.c, CARD_TABLE.c
    recent = call.at >= bindparam("since")
    same = (
        or_(
            call.encounter_key == bindparam("encounter_key"),
            and_(call.encounter_key.is_(None), recent),
        )
        if encounter_known
        else recent
    )
    return (
        select(card.content_key)
        .join(CALL_TABLE, call.call_uid == card.call_uid)
        .where(
            call.patient_key == bindparam("patient_key"),
            call.service_id != bindparam("service_id"),
            same,
        )
    )


_REPEATS = {known: _repeats_query(encounter_known=known) for known in (False, True)}


def pseudonym(key: bytes, scope: str, patient_id: str) -> str:
    """HMAC-SHA256 of the patient id within its scope (the FHIR server, else the practice)
    under the deployment's secret: the same patient gets the same key until the secret is
    rotated, and the key cannot be turned back into an id without the secret.

    >>> pseudonym(b"k" * 32, "https://fhir.example", "p1")[:16]
    '135eced3fcc45a2e'
    """
    message = f"{scope}\x1f{patient_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def content_key(key: bytes, kind: str, indicator: str, summary: str, detail: str) -> str:
    """A keyed digest of what a card says: equal for cards that say the same thing, whatever
    their uuids and links; not readable without the secret (a card's text is health data).

    >>> a = content_key(b"k" * 32, "enquiry", "info", "Ask", "why")
    >>> a == content_key(b"k" * 32, "enquiry", "info", "Ask", "why"), a == content_key(
    ...     b"k" * 32, "enquiry", "info", "Ask", "why not")
    (True, False)
    """
    message = "\x1f".join(("card", kind, indicator, summary, detail)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class CallRecord:
    at: datetime.datetime
    service_id: str
    hook: str
    practice: str | None
    codeset_versions: str
    patient_key: str
    cards: tuple[str, ...]
    card_uuids: tuple[str, ...]
    categories: tuple[str, ...]
    codes: tuple[str, ...]
    suppressed: bool
    household_checked: bool
    withheld: str | None = None
    encounter_key: str | None = None
    # Parallel to card_uuids: each card's `content_key`.
    content_keys: tuple[str, ...] = ()
    call_uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def repeats(
        self, patient_key: str, service_id: str, encounter_key: str | None, since: datetime.datetime
    ) -> bool:
        """Whether this earlier call is the same consultation as the one described, by another
        service: the same encounter when both know it, else within the window."""
        if self.patient_key != patient_key or self.service_id == service_id:
            return False
        if encounter_key is not None and self.encounter_key is not None:
            return self.encounter_key == encounter_key
        return self.at >= since

    def rows(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        call = {
            "call_uid": self.call_uid,
            "at": self.at,
            "service_id": self.service_id,
            "hook": self.hook,
            "practice": self.practice,
            "codeset_versions": self.codeset_versions,
            "patient_key": self.patient_key,
            "cards": list(self.cards),
            "categories": list(self.categories),
            "codes": list(self.codes),
            "suppressed": self.suppressed,
            "household_checked": self.household_checked,
            "withheld": self.withheld,
            "encounter_key": self.encounter_key,
        }
        contents = self.content_keys or (None,) * len(self.card_uuids)
        cards = [
            {"card_uuid": u, "at": self.at, "kind": k, "call_uid": self.call_uid, "content_key": c}
            for u, k, c in zip(self.card_uuids, self.cards, contents, strict=True)
        ]
        return call, cards


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class CardLog:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        interval: float = 1.0,
        max_queued: int = 50_000,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.interval = interval
        self.max_queued = max_queued
        self.counts: Counter[str] = Counter()
        self._queue: queue.SimpleQueue[CallRecord | _Flush | None] = queue.SimpleQueue()
        self._queued = 0
        self._pending_cards: set[str] = set()
        # Records not written yet, by patient key then call uid (the repeat check reads one
        # patient's).
        self._pending: dict[str, dict[str, CallRecord]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # SQLite: the repeat question through its driver (asked inline on every prompt).
        self._reads = DriverReads(engine, _REPEATS) if engine.dialect.name == "sqlite" else None

    def on_driver_fallback(self, listener: Callable[[str], None]) -> None:
        """Tell `listener` of each repeat read SQLite's driver failed (by the error's class)."""
        if self._reads is not None:
            self._reads.on_fallback = listener

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="iris-card-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None
        if self._reads is not None:
            self._reads.close()

    def add(self, record: CallRecord) -> None:
        """Queue one call's record (never blocks; drops and counts beyond `max_queued`)."""
        with self._lock:
            if self._queued >= self.max_queued:
                self.counts["dropped"] += 1
                return
            self._queued += 1
            full = self._queued % self.batch_size == 0
            self._pending_cards.update(record.card_uuids)
            self._pending.setdefault(record.patient_key, {})[record.call_uid] = record
        self._queue.put(record)
        if full:
            self._wake.set()

    def is_pending(self, card_uuid: str) -> bool:
        """Issued by this process and not written yet (feedback may outrun the writer)."""
        with self._lock:
            return card_uuid in self._pending_cards

    def shown_elsewhere(
        self,
        *,
        patient_key: str,
        service_id: str,
        encounter_key: str | None,
        content_keys: set[str],
        now: datetime.datetime,
    ) -> set[str]:
        """The content keys among `content_keys` that another service has already given this
        patient in the same consultation (see `CallRecord.repeats`). Raises SQLAlchemyError
        when the database cannot be read."""
        if not content_keys:
            return set()
        since = now - REPEAT_WINDOW
        with self._lock:
            pending = list(self._pending.get(patient_key, {}).values())
        found = {
            key
            for record in pending
            if record.repeats(patient_key, service_id, encounter_key, since)
            for key in record.content_keys
            if key in content_keys
        }
        left = content_keys - found
        if left:
            parameters = {
                "since": since,
                "encounter_key": encounter_key,
                "patient_key": patient_key,
                "service_id": service_id,
            }
            found.update(left.intersection(self._given_elsewhere(parameters)))
        return found

    def _given_elsewhere(self, parameters: dict[str, Any]) -> list[str]:
        """The written half of `shown_elsewhere`: on SQLite through its driver; if that fails,
        or on PostgreSQL, through SQLAlchemy, which raises SQLAlchemyError (counted by the
        engine's error hook) when the database is at fault."""
        known = parameters["encounter_key"] is not None
        if self._reads is not None:
            rows = self._reads.rows(known, parameters)
            if rows is not None:
                return [key for (key,) in rows]
        with self.engine.connect() as connection:
            return list(connection.execute(_REPEATS[known], parameters).scalars())

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before now is written (tests, shutdown)."""
        if self._thread is None:
            self._write(self._drain_now())
            return True
        marker = _Flush()
        self._queue.put(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def _drain_now(self) -> list[CallRecord]:
        batch: list[CallRecord] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch
            if isinstance(item, CallRecord):
                batch.append(item)

    def _run(self) -> None:
        # The writer wakes every `interval`, or when a batch is full or a flush is asked for,
        # never per record: a thread woken on every call would contend with the event loop for
        # the interpreter on every call.
        batch: list[CallRecord] = []
        stopping = False
        while not stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            markers: list[_Flush] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                elif isinstance(item, _Flush):
                    markers.append(item)
                else:
                    batch.append(item)
            if batch and self._write(batch):
                batch = []
            for marker in markers:
                marker.done.set()
        if batch:
            self.counts["lost at stop"] += len(batch)
            log.error("call log: %d record(s) could not be written before stopping", len(batch))

    def _write(self, batch: list[CallRecord]) -> bool:
        if not batch:
            return True
        calls, cards = [], []
        for record in batch:
            call, issued = record.rows()
            calls.append(call)
            cards.extend(issued)
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(CALL_TABLE), calls)
                if cards:
                    connection.execute(insert(CARD_TABLE), cards)
        except SQLAlchemyError as error:
            self.counts["retries"] += 1
            log.warning(
                "call log: %d record(s) not written yet (%s); will retry",
                len(batch),
                type(error).__name__,
            )
            return False
        with self._lock:
            self._queued -= len(batch)
            for record in batch:
                self._pending_cards.difference_update(record.card_uuids)
                pending = self._pending.get(record.patient_key, {})
                pending.pop(record.call_uid, None)
                if not pending:
                    self._pending.pop(record.patient_key, None)
        self.counts["written"] += len(batch)
        return True
