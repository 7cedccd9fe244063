"""Deleting flags long ended, once a deployment has agreed how long the register keeps them.

Off unless `IRIS_RETENTION_REGISTER_DAYS` is set: a MAPPA record is the partners' to end, and
how long an ended one is kept is for the MAPPA Strategic Management Board and the data
protection officer to agree (docs/register.md). With a period of `days`, `iris-prompt store
purge` deletes a flag, every version of it and its access log once it can no longer be shown
and has not changed for `days`:

- it ended by status (inactive or entered-in-error) and was last updated over `days` ago, or
- its review date passed over `days` ago and it was last updated over `days` ago.

A flag in force is never deleted, however old, and neither is one that changed within the
period (a partner may be about to renew it). Disclosures of a flag in cards stay in the
disclosure audit, under the audit's own retention.

One transaction deletes the flag, its versions and its access log together, each statement
choosing the same flags: on PostgreSQL they are locked first (`SELECT ... FOR UPDATE`), and on
SQLite the first delete takes the database's one write lock. A partner renewing a flag at that
moment either commits first, and the flag no longer qualifies, or finds it gone (a version
conflict); a flag is never half deleted.
"""

import datetime

from sqlalchemy import Engine, delete, or_, select

from iris_prompt.register.tables import RegisterAccess, RegisterFlag, RegisterFlagVersion

__all__ = ["purge_ended"]


def purge_ended(engine: Engine, days: int, now: datetime.datetime) -> int:
    """Delete the flags ended over `days` before `now` (see above); how many were deleted."""
    cutoff = now - datetime.timedelta(days=days)
    ended = select(RegisterFlag.id).where(
        RegisterFlag.last_updated < cutoff,
        or_(RegisterFlag.status != "active", RegisterFlag.period_end < cutoff),
    )
    with engine.begin() as connection:
        connection.execute(ended.with_for_update())
        connection.execute(delete(RegisterAccess).where(RegisterAccess.flag_id.in_(ended)))
        connection.execute(
            delete(RegisterFlagVersion).where(RegisterFlagVersion.flag_id.in_(ended))
        )
        deleted = connection.execute(delete(RegisterFlag).where(RegisterFlag.id.in_(ended)))
    return deleted.rowcount
