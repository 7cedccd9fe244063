"""Feedback: what the clinician did with a card, posted to `{id}/feedback`, validated, kept.

`FeedbackStore` is the seam for a durable store; `InMemoryFeedbackStore` keeps a bounded
number of items in this process. Duplicates are tolerated: the spec says a client may send the
same feedback more than once, so an identical item is accepted and stored once.

>>> request = FeedbackRequest.model_validate({"feedback": [{"card": "c1",
...     "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]})
>>> request.feedback[0].outcome
'overridden'

Spec: https://cds-hooks.hl7.org/2.0/#feedback (invariants cds-fb-1..3).
"""

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import AwareDatetime, Field, ValidationError, model_validator

from cds_hooks.errors import InvalidRequest, issues_from_validation
from cds_hooks.models import Text, WireModel, dump_json

__all__ = [
    "AcceptedSuggestion",
    "Feedback",
    "FeedbackCoding",
    "FeedbackRequest",
    "FeedbackStore",
    "InMemoryFeedbackStore",
    "OverrideReason",
    "StoredFeedback",
    "parse_feedback",
]


class FeedbackCoding(WireModel):
    code: Text
    system: Text
    display: Text | None = None


class AcceptedSuggestion(WireModel):
    id: Text


class OverrideReason(WireModel):
    reason: FeedbackCoding | None = None
    user_comment: Text | None = None

    @model_validator(mode="after")
    def _cds_fb_3(self) -> "OverrideReason":
        if self.reason is None and self.user_comment is None:
            raise ValueError("cds-fb-3: overrideReason needs a reason, a userComment or both")
        return self


class Feedback(WireModel):
    card: Text
    outcome: Literal["accepted", "overridden"]  # cds-fb-1
    accepted_suggestions: list[AcceptedSuggestion] | None = None
    override_reason: OverrideReason | None = None
    outcome_timestamp: AwareDatetime

    @model_validator(mode="after")
    def _cds_fb_2(self) -> "Feedback":
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("cds-fb-2: an accepted outcome needs acceptedSuggestions")
        return self


class FeedbackRequest(WireModel):
    feedback: list[Feedback] = Field(min_length=1)


def parse_feedback(data: object) -> FeedbackRequest:
    try:
        return FeedbackRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest("the feedback is invalid", issues_from_validation(error)) from None


@dataclass(frozen=True)
class StoredFeedback:
    service_id: str
    client: str | None
    item: Feedback


class FeedbackStore(Protocol):
    async def add(self, service_id: str, client: str | None, items: Sequence[Feedback]) -> None:
        """Keep `items` for `service_id`; `client` is the caller's issuer (None in local mode)."""
        ...


class InMemoryFeedbackStore:
    """The last `maxsize` distinct feedback items of this process."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._items: OrderedDict[tuple[str, str | None, bytes], StoredFeedback] = OrderedDict()
        self._maxsize = maxsize

    async def add(self, service_id: str, client: str | None, items: Sequence[Feedback]) -> None:
        for item in items:
            key = (service_id, client, dump_json(item))
            self._items[key] = StoredFeedback(service_id, client, item)
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def items(self, service_id: str | None = None) -> list[StoredFeedback]:
        return [s for s in self._items.values() if service_id in (None, s.service_id)]
