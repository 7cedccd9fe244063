"""Feedback: what the clinician did with a card, posted to `{id}/feedback`, validated, kept.

`FeedbackStore` is the seam for a durable store; `InMemoryFeedbackStore` keeps the most
recent items in this process, within a count and a number of bytes. Every free-text field is
bounded (a comment to `MAX_COMMENT` characters, anything else to `MAX_TEXT`), and so are the
items of one post (`MAX_ITEMS`) and the suggestions of one item (`MAX_SUGGESTIONS`): feedback
cannot fill memory. Duplicates are tolerated: the spec says a client may send the
same feedback more than once, so an identical item is accepted and stored once.

>>> request = FeedbackRequest.model_validate({"feedback": [{"card": "c1",
...     "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]})
>>> request.feedback[0].outcome
'overridden'

Spec: https://cds-hooks.hl7.org/2.0/#feedback (invariants cds-fb-1..3).
"""

import datetime
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from cds_hooks.errors import InvalidRequest, issues_from_validation
from cds_hooks.models import WireModel, dump_json

__all__ = [
    "AcceptedSuggestion",
    "Feedback",
    "FeedbackCoding",
    "FeedbackRequest",
    "FeedbackStore",
    "InMemoryFeedbackStore",
    "MAX_COMMENT",
    "MAX_ITEMS",
    "MAX_SUGGESTIONS",
    "MAX_TEXT",
    "OverrideReason",
    "StoredFeedback",
    "parse_feedback",
]


MAX_TEXT = 400  # characters of a card id, code, system, display or suggestion id
MAX_COMMENT = 4000  # characters of a clinician's comment
MAX_ITEMS = 100  # feedback items in one post
MAX_SUGGESTIONS = 20  # accepted suggestions in one item

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Comment = Annotated[str, StringConstraints(min_length=1, max_length=MAX_COMMENT)]


class FeedbackCoding(WireModel):
    code: Text
    system: Text
    display: Text | None = None


class AcceptedSuggestion(WireModel):
    id: Text


class OverrideReason(WireModel):
    reason: FeedbackCoding | None = None
    user_comment: Comment | None = None

    @model_validator(mode="after")
    def _cds_fb_3(self) -> "OverrideReason":
        if self.reason is None and self.user_comment is None:
            raise ValueError("cds-fb-3: overrideReason needs a reason, a userComment or both")
        return self


class Feedback(WireModel):
    card: Text
    outcome: Literal["accepted", "overridden"]  # cds-fb-1
    accepted_suggestions: list[AcceptedSuggestion] | None = Field(
        default=None, max_length=MAX_SUGGESTIONS
    )
    override_reason: OverrideReason | None = None
    outcome_timestamp: AwareDatetime

    @field_validator("outcome_timestamp")
    @classmethod
    def _in_utc(cls, value: datetime.datetime) -> datetime.datetime:
        """The instant in UTC, as a store keeps it (SQLite keeps no offset). A time at the
        calendar's edge whose offset takes it past the edge names no instant: refused."""
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise ValueError("the time with its offset is outside the calendar") from None

    @model_validator(mode="after")
    def _cds_fb_2(self) -> "Feedback":
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("cds-fb-2: an accepted outcome needs acceptedSuggestions")
        return self


class FeedbackRequest(WireModel):
    feedback: list[Feedback] = Field(min_length=1, max_length=MAX_ITEMS)


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
    """The last distinct feedback items of this process: at most `maxsize` items and `maxbytes`
    bytes of them (counted as their JSON; the oldest go first). Until a durable store replaces
    it, feedback beyond that is forgotten, never a cause of memory growth."""

    def __init__(self, maxsize: int = 10_000, maxbytes: int = 16 * 1024 * 1024) -> None:
        self._items: OrderedDict[tuple[str, str | None, bytes], StoredFeedback] = OrderedDict()
        self._maxsize = maxsize
        self._maxbytes = maxbytes
        self.bytes = 0

    async def add(self, service_id: str, client: str | None, items: Sequence[Feedback]) -> None:
        for item in items:
            key = (service_id, client, dump_json(item))
            if key not in self._items:
                self.bytes += _size(key)
            self._items[key] = StoredFeedback(service_id, client, item)
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize or self.bytes > self._maxbytes:
                oldest, _ = self._items.popitem(last=False)
                self.bytes -= _size(oldest)

    def items(self, service_id: str | None = None) -> list[StoredFeedback]:
        return [s for s in self._items.values() if service_id in (None, s.service_id)]


def _size(key: tuple[str, str | None, bytes]) -> int:
    """What one stored item costs, about: its JSON and its names, twice (the item is kept both
    as JSON, in the key, and as a model)."""
    service_id, client, item = key
    return 2 * len(item) + len(service_id) + len(client or "")
