"""The register's tables (docs/register.md): in the store's database, migrated with it.

- `register_flag`: each flag's current version, with the columns searches and the household
  check use (NHS number, status, review date, author, last updated) beside the resource itself.
- `register_flag_version`: every version ever stored, never updated (`_history`); deleted only
  with its flag, by a retention purge (retention.py).
- `register_access`: every read of a flag through the API (read, vread, history, search), by
  client and organisation, for the owner's access log. Disclosures in cards are in the store's
  `audit_event`, with the flag's register URL as the entity.
"""

import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from iris_prompt.store.models import Base

__all__ = ["RegisterAccess", "RegisterFlag", "RegisterFlagVersion"]


class RegisterFlag(Base):
    __tablename__ = "register_flag"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    nhs_number: Mapped[str] = mapped_column(String(10), index=True)
    author: Mapped[str] = mapped_column(String(16), index=True)
    period_start: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    # The instant the review date ends (exclusive): a flag past it is never shown.
    period_end: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_updated: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    resource: Mapped[dict[str, object]] = mapped_column(JSON)


class RegisterFlagVersion(Base):
    __tablename__ = "register_flag_version"

    flag_id: Mapped[str] = mapped_column(ForeignKey("register_flag.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    client_id: Mapped[str] = mapped_column(String(256))
    resource: Mapped[dict[str, object]] = mapped_column(JSON)


class RegisterAccess(Base):
    __tablename__ = "register_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flag_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    interaction: Mapped[str] = mapped_column(String(16))  # read, vread, history-instance, search
    client_id: Mapped[str] = mapped_column(String(256))
    organisation: Mapped[str] = mapped_column(String(16))


Index("ix_register_flag_author_period_end", RegisterFlag.author, RegisterFlag.period_end)
