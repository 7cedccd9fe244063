"""How long each kind of record is kept, and purging what is past it.

Defaults (days) and why (docs/store.md says the same; a deployment's information governance
lead may change them with IRIS_RETENTION_*_DAYS):

- audit, 8 years (2922): the longest. A disclosure of MAPPA information may be questioned years
  later (a complaint, a subject access request, a safeguarding or domestic homicide review).
- feedback, 2 years (730): it may hold a clinician's free-text comment; two years covers a
  year-on-year comparison of override reasons.
- call log and issued cards, 2 years (730): analytics compare a year with the year before;
  issued cards are kept as long, so feedback stays matched to its card.
- the register's flags partners ended: kept unless a period is set (IRIS_RETENTION_REGISTER_DAYS,
  at least a year), which the register deletes by (iris_prompt/register/retention.py).

`purge(engine, policy, now)` deletes only rows older than their kind's retention and returns the
count per kind; rows within retention are never touched.
"""

import datetime
from dataclasses import dataclass

from sqlalchemy import Engine, delete

from iris_prompt.store.models import AuditEvent, CallLog, FeedbackItem, IssuedCard

__all__ = ["Retention", "purge"]


@dataclass(frozen=True)
class Retention:
    audit_days: int = 2922
    feedback_days: int = 730
    call_log_days: int = 730
    register_days: int | None = None


def purge(engine: Engine, policy: Retention, now: datetime.datetime) -> dict[str, int]:
    def before(days: int) -> datetime.datetime:
        return now - datetime.timedelta(days=days)

    statements = {
        "audit": delete(AuditEvent).where(AuditEvent.recorded < before(policy.audit_days)),
        "feedback": delete(FeedbackItem).where(
            FeedbackItem.received < before(policy.feedback_days)
        ),
        "call_log": delete(CallLog).where(CallLog.at < before(policy.call_log_days)),
        "issued_card": delete(IssuedCard).where(IssuedCard.at < before(policy.call_log_days)),
    }
    counts: dict[str, int] = {}
    with engine.begin() as connection:
        for kind, statement in statements.items():
            counts[kind] = connection.execute(statement).rowcount
    return counts
