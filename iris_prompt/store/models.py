"""The store's tables (docs/store.md describes each column and why it is there).

Four kinds of record, each with its own retention (`retention.py`):

- `audit_event`: one row per disclosure (a MAPPA or known-abuse card returned). Append-only:
  the service inserts and never updates; only `iris-prompt store purge` deletes, past retention.
  The card uuid is the key, so a spooled record replayed twice is stored once.
- `feedback`: one row per CDS Hooks feedback item, linked to its card by uuid.
- `call_log`: one row per call that reached the rules, without identifiers (a pseudonymous
  patient key only), for the leads' analytics.
- `issued_card`: one row per card returned, so feedback can be matched to a card we issued.
"""

import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AuditEvent", "Base", "CallLog", "FeedbackItem", "IssuedCard"]

# Constraint names fixed by convention, so migrations name them the same on both engines.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AuditEvent(Base):
    """Who was shown which household MAPPA flag (or known-abuse entry), when, for which patient."""

    __tablename__ = "audit_event"

    card_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    recorded: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "mappa" or "known-abuse"
    service_id: Mapped[str] = mapped_column(String(128))
    hook: Mapped[str] = mapped_column(String(64))
    hook_instance: Mapped[str] = mapped_column(String(128))
    issuer: Mapped[str | None] = mapped_column(String(512))
    tenant: Mapped[str | None] = mapped_column(String(256))
    user_id: Mapped[str] = mapped_column(String(256), index=True)
    fhir_server: Mapped[str | None] = mapped_column(String(1024))
    patient: Mapped[str] = mapped_column(String(256), index=True)
    # The flags disclosed, as "Flag/id" references on `fhir_server`; empty for known abuse.
    entities: Mapped[list[str]] = mapped_column(JSON)
    relationship: Mapped[str | None] = mapped_column(String(64))
    # "database" when written directly, "spool" when replayed from the spool file.
    via: Mapped[str] = mapped_column(String(16), default="database")


class FeedbackItem(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # sha256 of service, client and the item's JSON: the spec lets clients resend feedback.
    item_key: Mapped[str] = mapped_column(String(64), unique=True)
    received: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    service_id: Mapped[str] = mapped_column(String(128))
    client: Mapped[str | None] = mapped_column(String(512))
    card_uuid: Mapped[str] = mapped_column(String(256), index=True)
    matched: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON)
    override_system: Mapped[str | None] = mapped_column(String(256))
    override_code: Mapped[str | None] = mapped_column(String(128))
    override_comment: Mapped[str | None] = mapped_column(Text)


class CallLog(Base):
    __tablename__ = "call_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # A random id per call (not the hookInstance, which a client could reuse).
    call_uid: Mapped[str] = mapped_column(String(32), unique=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    service_id: Mapped[str] = mapped_column(String(128))
    hook: Mapped[str] = mapped_column(String(64))
    practice: Mapped[str | None] = mapped_column(String(512))
    codeset_versions: Mapped[str] = mapped_column(String(256))
    patient_key: Mapped[str] = mapped_column(String(64), index=True)
    cards: Mapped[list[str]] = mapped_column(JSON)  # card kinds, in order
    categories: Mapped[list[str]] = mapped_column(JSON)  # trigger/known-abuse categories
    codes: Mapped[list[str]] = mapped_column(JSON)  # "system|code" that fired
    suppressed: Mapped[bool] = mapped_column(Boolean)
    household_checked: Mapped[bool] = mapped_column(Boolean)
    withheld: Mapped[str | None] = mapped_column(String(64))
    # A keyed digest of context.encounterId (no FHIR id is kept), for the repeat hold-back.
    encounter_key: Mapped[str | None] = mapped_column(String(64))


class IssuedCard(Base):
    __tablename__ = "issued_card"

    card_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    call_uid: Mapped[str] = mapped_column(String(32), index=True)
    # A keyed digest of what the card says (kind, indicator, summary, detail): two cards with
    # the same content_key say the same thing (the repeat hold-back, docs/rules.md).
    content_key: Mapped[str | None] = mapped_column(String(64))


Index("ix_call_log_practice_at", CallLog.practice, CallLog.at)
