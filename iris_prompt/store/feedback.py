"""CDS Hooks feedback, committed to the store before the client is told 200.

`StoreFeedback` is the product's `cds_hooks.FeedbackStore`: each item is linked to its card by
uuid and marked `matched` when this service issued that card (the spec accepts feedback on any
card; one we never issued is kept, marked unmatched, and counted in the analytics). Free text is
bounded: an item over the limits is refused whole with a 400 naming the field, and nothing of
the request is stored. A resent identical item is stored once (its key is a digest of it).
"""

import datetime
import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table, select
from starlette.concurrency import run_in_threadpool

from cds_hooks import Feedback
from cds_hooks.errors import InvalidRequest, Issue
from cds_hooks.models import dump_json
from iris_prompt.store.audit import insert_ignoring_duplicates
from iris_prompt.store.cardlog import CardLog
from iris_prompt.store.models import FeedbackItem, IssuedCard

__all__ = ["LIMITS", "StoreFeedback"]

FEEDBACK_TABLE: Table = FeedbackItem.__table__  # type: ignore[assignment]

# Characters. A card uuid is 36; codes and systems are short; a comment is a sentence or two.
LIMITS = {
    "card": 256,
    "acceptedSuggestions": 20,
    "acceptedSuggestions.id": 256,
    "overrideReason.reason.code": 128,
    "overrideReason.reason.system": 256,
    "overrideReason.userComment": 2000,
}


def _unstorable(items: Sequence[Feedback]) -> list[Issue]:
    """Each text the store cannot keep: over its limit, or holding the NUL character, which a
    PostgreSQL text column refuses (and which no one types)."""
    issues = []

    def check(value: str | None, limit_key: str, where: str) -> None:
        if value is not None and len(value) > LIMITS[limit_key]:
            issues.append(
                Issue(f"{where} is over {LIMITS[limit_key]} characters", expression=where)
            )
        elif value is not None and "\x00" in value:
            issues.append(Issue(f"{where} holds the NUL character (U+0000)", expression=where))

    for n, item in enumerate(items):
        here = f"feedback[{n}]"
        check(item.card, "card", f"{here}.card")
        suggestions = item.accepted_suggestions or []
        if len(suggestions) > LIMITS["acceptedSuggestions"]:
            issues.append(
                Issue(
                    f"{here}.acceptedSuggestions has over {LIMITS['acceptedSuggestions']} items",
                    expression=f"{here}.acceptedSuggestions",
                )
            )
        for m, suggestion in enumerate(suggestions):
            check(suggestion.id, "acceptedSuggestions.id", f"{here}.acceptedSuggestions[{m}].id")
        reason = item.override_reason
        if reason is not None:
            if reason.reason is not None:
                where = f"{here}.overrideReason.reason"
                check(reason.reason.code, "overrideReason.reason.code", f"{where}.code")
                check(reason.reason.system, "overrideReason.reason.system", f"{where}.system")
            check(
                reason.user_comment,
                "overrideReason.userComment",
                f"{here}.overrideReason.userComment",
            )
    return issues


class StoreFeedback:
    def __init__(self, engine: Engine, cards: CardLog | None = None) -> None:
        self.engine = engine
        self.cards = cards

    async def add(self, service_id: str, client: str | None, items: Sequence[Feedback]) -> None:
        issues = _unstorable(items)
        if issues:
            raise InvalidRequest("the feedback is invalid", issues)
        await run_in_threadpool(self.write, service_id, client, items)

    def write(self, service_id: str, client: str | None, items: Sequence[Feedback]) -> None:
        now = datetime.datetime.now(datetime.UTC)
        uuids = {item.card for item in items}
        with self.engine.begin() as connection:
            issued = set(
                connection.scalars(
                    select(IssuedCard.card_uuid).where(IssuedCard.card_uuid.in_(uuids))
                )
            )
            rows = [self._row(service_id, client, item, now, issued) for item in items]
            connection.execute(insert_ignoring_duplicates(self.engine, FEEDBACK_TABLE), rows)

    def _row(
        self,
        service_id: str,
        client: str | None,
        item: Feedback,
        now: datetime.datetime,
        issued: set[str],
    ) -> dict[str, Any]:
        digest = hashlib.sha256(
            f"{service_id}\x1f{client or ''}\x1f".encode() + dump_json(item)
        ).hexdigest()
        reason = item.override_reason
        coding = reason.reason if reason is not None else None
        matched = item.card in issued or (
            self.cards is not None and self.cards.is_pending(item.card)
        )
        return {
            "item_key": digest,
            "received": now,
            "service_id": service_id,
            "client": client,
            "card_uuid": item.card,
            "matched": matched,
            "outcome": item.outcome,
            # Already in UTC (cds_hooks.feedback converts it as it is read): SQLite keeps no
            # offset, and would read 10:05+05:00 back as 10:05 UTC.
            "outcome_timestamp": item.outcome_timestamp,
            "accepted_suggestions": [s.id for s in item.accepted_suggestions or []],
            "override_system": coding.system if coding else None,
            "override_code": coding.code if coding else None,
            "override_comment": reason.user_comment if reason else None,
        }
