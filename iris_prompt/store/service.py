"""The store as the engine sees it: one object opened at start-up and passed in at the edge.

    store = Store.open(settings)           # SQLite in IRIS_DATA_DIR, or IRIS_DATABASE_URL
    cards = await store.after_decision(...)  # audit first (before the response), log the call

`after_decision` is the one place a call touches the store: it holds back an enquiry or
known-abuse card the other hook has just given for the same consultation (docs/rules.md,
"Repeated calls"), writes the disclosure audit of every MAPPA and known-abuse card returned
(awaited: the response waits for it, see `audit.py`), swaps the MAPPA cards for a discreet card
if that audit could not be kept anywhere, and queues the call's record for the analytics writer
(not awaited).
"""

import asyncio
import datetime
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from cds_hooks import CallContext, Card, CdsRequest
from iris_prompt.engine.cards import CardSettings, withheld_card
from iris_prompt.engine.rules import Decision
from iris_prompt.store.audit import AuditLog, AuditOutcome, Disclosure, Spool
from iris_prompt.store.cardlog import CallRecord, CardLog, content_key, pseudonym
from iris_prompt.store.database import StoreError, default_data_dir, prepare
from iris_prompt.store.feedback import StoreFeedback
from iris_prompt.store.retention import Retention

if TYPE_CHECKING:
    from iris_prompt.settings import Settings

__all__ = ["SPOOL_FILE", "Store", "StoreConfig", "store_config"]

log = logging.getLogger(__name__)

SPOOL_FILE = "audit-spool.jsonl"
KEY_FILE = "pseudonym.key"
AUDITED = frozenset({"mappa", "known-abuse"})
# Cards held back when the other hook has just given the same one. Never a MAPPA card: shown
# twice it costs a glance, missed (the first answer lost on its way) it costs what the
# clinician most needs to know (docs/safety/hazard-log.toml, H-REPEAT).
HELD_BACK_WHEN_REPEATED = frozenset({"enquiry", "known-abuse"})


@dataclass(frozen=True)
class StoreConfig:
    data_dir: Path
    database_url: str | None = None
    pseudonym_key: bytes | None = None
    spool_path: Path | None = None
    retention: Retention = Retention()
    replay_seconds: float = 10.0


def _pseudonym_key(config: StoreConfig) -> bytes:
    if config.pseudonym_key is not None:
        return config.pseudonym_key
    if config.database_url is not None:
        raise ValueError(
            "IRIS_PSEUDONYM_KEY is not set: with a shared PostgreSQL store every worker must "
            "use the same secret for pseudonymous patient keys (32 random bytes, for example "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    # Embedded mode: a secret of this data directory, made once and kept beside the database.
    path = config.data_dir / KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


def store_config(settings: "Settings") -> StoreConfig:
    """The store's configuration from the service's IRIS_ settings."""
    return StoreConfig(
        data_dir=settings.data_dir or default_data_dir(),
        database_url=settings.database_url.get_secret_value() if settings.database_url else None,
        pseudonym_key=(
            settings.pseudonym_key.get_secret_value().encode() if settings.pseudonym_key else None
        ),
        spool_path=settings.audit_spool,
        retention=Retention(
            audit_days=settings.retention_audit_days,
            feedback_days=settings.retention_feedback_days,
            call_log_days=settings.retention_call_log_days,
            register_days=settings.retention_register_days,
        ),
    )


class Store:
    def __init__(self, engine: Engine, config: StoreConfig, card_settings: CardSettings) -> None:
        self.engine = engine
        self.config = config
        self.card_settings = card_settings
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(engine, Spool(config.spool_path or config.data_dir / SPOOL_FILE))
        self.audit.spool.check()
        self.calls = CardLog(engine)
        self.feedback = StoreFeedback(engine, self.calls)
        self.key = _pseudonym_key(config)
        self._spooled = self.audit.spool.pending() > 0
        self._replayer: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, config: StoreConfig, card_settings: CardSettings | None = None) -> "Store":
        engine = prepare(config.database_url, config.data_dir)
        try:
            return cls(engine, config, card_settings or CardSettings())
        except StoreError:
            engine.dispose()
            raise

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.calls.start()
        if self._spooled:
            await run_in_threadpool(self.replay)
        self._replayer = asyncio.create_task(self._replay_loop())

    async def stop(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            self._replayer = None
        await run_in_threadpool(self.calls.stop)
        self.engine.dispose()

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.replay_seconds)
            if self._spooled:
                await run_in_threadpool(self.replay)

    def replay(self) -> int:
        replayed = self.audit.replay()
        self._spooled = self.audit.spool.pending() > 0
        return replayed

    def readiness(self) -> dict[str, object]:
        """For /readyz: which database, and the audit's paths so far (counts, no identifiers)."""
        return {
            "store": {
                "database": self.engine.dialect.name,
                "audit": dict(self.audit.counts),
                "audit_spooled_pending": self._spooled,
                "call_log": dict(self.calls.counts),
            }
        }

    # --- one call --------------------------------------------------------------------------

    async def after_decision(
        self,
        *,
        request: CdsRequest,
        call: CallContext,
        decision: Decision,
        cards: list[Card],
        codeset_versions: Mapping[str, str],
        patient_id: str,
        now: datetime.datetime,
    ) -> list[Card]:
        scope = self._scope(request, call)
        patient_key = pseudonym(self.key, scope, patient_id)
        encounter_id = getattr(request.context, "encounter_id", None)
        encounter_key = (
            pseudonym(self.key, f"encounter\x1f{scope}", encounter_id) if (encounter_id) else None
        )
        contents = [
            content_key(self.key, kind, card.indicator, card.summary, card.detail or "")
            for card, kind in zip(cards, decision.cards, strict=True)
        ]
        held = await self._repeats(call, patient_key, encounter_key, decision.cards, contents, now)
        kept = [i for i in range(len(cards)) if contents[i] not in held]
        cards = [cards[i] for i in kept]
        kinds: Sequence[str] = [decision.cards[i] for i in kept]
        contents = [contents[i] for i in kept]
        disclosures = self.disclosures(request, call, decision, cards, kinds, patient_id, now)
        outcome: AuditOutcome = "stored"
        if disclosures:
            outcome = await run_in_threadpool(self.audit.record, disclosures, call.hook_instance)
            if outcome == "spooled":
                self._spooled = True
            elif outcome == "stored" and self._spooled:
                asyncio.get_running_loop().run_in_executor(None, self.replay)
        withheld = None
        if outcome == "failed" and "mappa" in kinds:
            pairs = [
                (card, content)
                for card, kind, content in zip(cards, kinds, contents, strict=True)
                if kind != "mappa"
            ]
            discreet = withheld_card(self.card_settings, call.base_url)
            cards = [*(card for card, _ in pairs), discreet]
            kinds = (*(k for k in kinds if k != "mappa"), "withheld")
            contents = [*(content for _, content in pairs), ""]
            withheld = "audit failed"
        versions = " ".join(f"{k}={v}" for k, v in sorted(codeset_versions.items()))
        self.calls.add(
            self.call_record(
                request,
                call,
                decision,
                cards,
                kinds,
                versions,
                patient_key,
                now,
                withheld,
                encounter_key=encounter_key,
                content_keys=tuple(contents),
            )
        )
        return cards

    async def _repeats(
        self,
        call: CallContext,
        patient_key: str,
        encounter_key: str | None,
        kinds: Sequence[str],
        contents: Sequence[str],
        now: datetime.datetime,
    ) -> set[str]:
        """The content keys of this call's cards to hold back: enquiry and known-abuse cards
        another service gave this patient in the same consultation. If the card log cannot be
        read, nothing is held back (a prompt shown twice is the safe failure)."""
        candidates = {
            content
            for kind, content in zip(kinds, contents, strict=True)
            if kind in HELD_BACK_WHEN_REPEATED
        }
        if not candidates:
            return set()

        def shown_elsewhere() -> set[str]:
            return self.calls.shown_elsewhere(
                patient_key=patient_key,
                service_id=call.service_id,
                encounter_key=encounter_key,
                content_keys=candidates,
                now=now.astimezone(datetime.UTC),
            )

        try:
            if self.engine.dialect.name == "sqlite":
                # An indexed read of a local file in WAL mode (never waits for the writer):
                # cheaper here than the hop to a worker thread and back on every prompt.
                held = shown_elsewhere()
            else:
                held = await run_in_threadpool(shown_elsewhere)
        except Exception as error:
            # Whatever the fault, the cards are shown (rules: a card log that cannot be read
            # holds nothing back). The database's is a warning; any other (a driver misused, a
            # bug of ours) an error.
            database = isinstance(error, SQLAlchemyError)
            log.log(
                logging.WARNING if database else logging.ERROR,
                "repeat check %s (%s): cards shown hookInstance=%s",
                "not made" if database else "failed",
                type(error).__name__,
                call.hook_instance,
            )
            return set()
        if held:
            log.info(
                "held back %d card(s) another hook gave in this consultation hookInstance=%s",
                len(held),
                call.hook_instance,
            )
        return held

    @staticmethod
    def _scope(request: CdsRequest, call: CallContext) -> str:
        """Whose patient ids these are: the FHIR server, else the practice."""
        caller = call.caller
        practice = (caller.tenant or caller.iss) if caller else None
        return str(request.fhir_server) if request.fhir_server else (practice or "local")

    def disclosures(
        self,
        request: CdsRequest,
        call: CallContext,
        decision: Decision,
        cards: Sequence[Card],
        kinds: Sequence[str],
        patient_id: str,
        now: datetime.datetime,
    ) -> list[Disclosure]:
        found = []
        members = iter(decision.mappa)
        caller = call.caller
        for card, kind in zip(cards, kinds, strict=True):
            if kind not in AUDITED:
                continue
            member = next(members) if kind == "mappa" else None
            found.append(
                Disclosure(
                    card_uuid=card.uuid or "",
                    kind=kind,
                    recorded=now.astimezone(datetime.UTC),
                    service_id=call.service_id,
                    hook=request.hook,
                    hook_instance=call.hook_instance,
                    user_id=request.context.user_id,  # type: ignore[union-attr]
                    patient=f"Patient/{patient_id}",
                    issuer=caller.iss if caller else None,
                    tenant=caller.tenant if caller else None,
                    fhir_server=str(request.fhir_server) if request.fhir_server else None,
                    entities=member.mappa.flags if member and member.mappa else (),
                    relationship=member.relationship if member else None,
                )
            )
        return found

    def call_record(
        self,
        request: CdsRequest,
        call: CallContext,
        decision: Decision,
        cards: Sequence[Card],
        kinds: Sequence[str],
        codeset_versions: str,
        patient_key: str,
        now: datetime.datetime,
        withheld: str | None = None,
        *,
        encounter_key: str | None = None,
        content_keys: tuple[str, ...] = (),
    ) -> CallRecord:
        caller = call.caller
        practice = (caller.tenant or caller.iss) if caller else None
        entries = (*decision.triggers, *decision.known_abuse_entries)
        return CallRecord(
            at=now.astimezone(datetime.UTC),
            service_id=call.service_id,
            hook=request.hook,
            practice=practice,
            codeset_versions=codeset_versions,
            patient_key=patient_key,
            cards=tuple(kinds),
            card_uuids=tuple(card.uuid or "" for card in cards),
            categories=tuple(sorted({e.category for e in entries})),
            codes=tuple(sorted({f"{e.system}|{e.code}" for e in entries})),
            suppressed=decision.suppressed_by is not None,
            household_checked=decision.household_checked,
            withheld=withheld or decision.enquiry_withheld,
            encounter_key=encounter_key,
            content_keys=content_keys,
        )
