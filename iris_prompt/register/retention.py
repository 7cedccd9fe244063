"""Deleting flags their partners ended long ago, once a deployment has agreed how long the
register keeps them.

Off unless `IRIS_RETENTION_REGISTER_DAYS` is set: a MAPPA record is the partners' to end, and
how long an ended one is kept is for the MAPPA Strategic Management Board and the data
protection officer to agree (docs/register.md). With a period of `days`, `iris-prompt store
purge` deletes a flag, every version of it and its access log once a partner has ended it
(status inactive or entered-in-error) and it has not changed for more than `days`.

Only a partner ends a flag: one still active is never deleted, however long ago its review
date passed (it stays in the partners' "active, due for review" search until they end it),
and so the clock of the machine running the purge decides only how soon an ended flag goes.
Disclosures of a flag in cards stay in the disclosure audit, under the audit's own retention.

One transaction deletes the flags, their versions and their access log, each statement
choosing the same flags: on PostgreSQL they are locked first (`SELECT ... FOR UPDATE`), and on
SQLite the first delete takes the database's one write lock. A partner reactivating a flag at
that moment either commits first, and the flag is kept whole, or finds it changed and then
gone (412, then 404). A read of a flag being deleted may record its access row after the flag
has gone; the same transaction deletes access rows whose flag no longer exists, so they go at
the latest with the next purge.
"""

import datetime

from sqlalchemy import Engine, delete, exists, select

from iris_prompt.register.tables import RegisterAccess, RegisterFlag, RegisterFlagVersion

__all__ = ["purge_ended"]

# The statuses a partner ends a flag with (docs/register.md).
_ENDED = ("inactive", "entered-in-error")


def purge_ended(engine: Engine, days: int, now: datetime.datetime) -> int:
    """Delete the flags ended and unchanged for more than `days` before `now`, an aware
    datetime; how many were deleted."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    cutoff = now.astimezone(datetime.UTC) - datetime.timedelta(days=days)
    ended = select(RegisterFlag.id).where(
        RegisterFlag.status.in_(_ENDED), RegisterFlag.last_updated < cutoff
    )
    with engine.begin() as connection:
        # In one order, so that two purges overlapping cannot deadlock each other.
        connection.execute(ended.order_by(RegisterFlag.id).with_for_update())
        connection.execute(delete(RegisterAccess).where(RegisterAccess.flag_id.in_(ended)))
        connection.execute(
            delete(RegisterFlagVersion).where(RegisterFlagVersion.flag_id.in_(ended))
        )
        deleted = connection.execute(delete(RegisterFlag).where(RegisterFlag.id.in_(ended)))
        flag_held = exists().where(RegisterFlag.id == RegisterAccess.flag_id)
        connection.execute(delete(RegisterAccess).where(~flag_held))
    return deleted.rowcount
