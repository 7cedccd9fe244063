"""Feedback models (cds-fb-1..3) and the in-memory store."""

import asyncio
import datetime
from typing import Any

import pytest

from cds_hooks.errors import InvalidRequest
from cds_hooks.feedback import InMemoryFeedbackStore, parse_feedback

WHEN = "2021-12-11T10:05:31Z"


def item(**fields: Any) -> dict[str, Any]:
    return {"card": "c1", "outcome": "overridden", "outcomeTimestamp": WHEN} | fields


def refused(*items: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidRequest) as error:
        parse_feedback({"feedback": list(items)})
    return [issue.diagnostics for issue in error.value.issues]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"outcome": "ignored"}, "feedback[0].outcome"),  # cds-fb-1
        ({"outcome": "accepted"}, "cds-fb-2"),
        ({"overrideReason": {}}, "cds-fb-3"),
        ({"outcomeTimestamp": "2021-12-11T10:05:31"}, "timezone"),  # RFC 3339 needs an offset
        ({"outcomeTimestamp": "yesterday"}, "feedback[0].outcomeTimestamp"),
        ({"card": ""}, "feedback[0].card"),
        # An offset that takes a time at the calendar's edge past it names no instant.
        ({"outcomeTimestamp": "0001-01-01T00:00:00+05:00"}, "outside the calendar"),
        ({"outcomeTimestamp": "9999-12-31T23:59:59-01:00"}, "outside the calendar"),
    ],
)
def test_refusals(fields: dict[str, Any], reason: str) -> None:
    assert any(reason in message for message in refused(item(**fields)))


def test_a_field_is_named_by_a_fhirpath_expression_with_list_items_in_brackets() -> None:
    """One style of path in every OperationOutcome the service writes: the store's limits and
    the register name theirs the same way (`feedback[0].overrideReason.userComment`)."""
    accepted = item(outcome="accepted", acceptedSuggestions=[{"id": 5}])
    with pytest.raises(InvalidRequest) as error:
        parse_feedback({"feedback": [item(), accepted]})
    assert [i.expression for i in error.value.issues] == ["feedback[1].acceptedSuggestions[0].id"]


@pytest.mark.parametrize(
    ("sent", "instant"),
    [
        ("2026-11-26T10:05:00+05:00", datetime.datetime(2026, 11, 26, 5, 5, tzinfo=datetime.UTC)),
        ("2026-11-26T10:05:00-08:00", datetime.datetime(2026, 11, 26, 18, 5, tzinfo=datetime.UTC)),
        ("0001-01-01T05:00:00+05:00", datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)),
        ("9999-12-31T23:59:59Z", datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)),
    ],
)
def test_an_outcome_time_is_the_same_instant_in_utc(sent: str, instant: datetime.datetime) -> None:
    (parsed,) = parse_feedback({"feedback": [item(outcomeTimestamp=sent)]}).feedback
    assert parsed.outcome_timestamp == instant
    assert parsed.outcome_timestamp.utcoffset() == datetime.timedelta(0)


def test_empty_feedback_list_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_feedback({"feedback": []})


def test_accepted_and_overridden_with_comment_only() -> None:
    parsed = parse_feedback(
        {
            "feedback": [
                item(outcome="accepted", acceptedSuggestions=[{"id": "s1"}]),
                item(overrideReason={"userComment": "patient not alone"}),
            ]
        }
    )
    assert [f.outcome for f in parsed.feedback] == ["accepted", "overridden"]
    assert parsed.feedback[1].override_reason is not None
    assert parsed.feedback[1].override_reason.user_comment == "patient not alone"


def test_store_keeps_distinct_items_and_tolerates_duplicates() -> None:
    store = InMemoryFeedbackStore(maxsize=3)
    first = parse_feedback({"feedback": [item(), item()]}).feedback
    asyncio.run(store.add("svc", "https://ehr.example", first))
    asyncio.run(store.add("svc", "https://ehr.example", first))
    assert len(store.items("svc")) == 1
    more = parse_feedback({"feedback": [item(card=f"c{n}") for n in range(2, 6)]}).feedback
    asyncio.run(store.add("svc", None, more))
    assert [s.item.card for s in store.items()] == ["c3", "c4", "c5"]  # bounded, oldest out
    assert store.items("other") == []


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"overrideReason": {"userComment": "x" * 4001}}, "feedback[0].overrideReason.userComment"),
        ({"card": "c" * 401}, "feedback[0].card"),
        (
            {"overrideReason": {"reason": {"code": "c", "system": "s" * 401}}},
            "feedback[0].overrideReason.reason.system",
        ),
        (
            {"outcome": "accepted", "acceptedSuggestions": [{"id": "s"}] * 21},
            "feedback[0].acceptedSuggestions",
        ),
    ],
)
def test_free_text_and_lists_are_bounded(fields: dict[str, Any], where: str) -> None:
    assert any(message.startswith(where) for message in refused(item(**fields)))


def test_a_comment_of_the_largest_size_is_kept_whole() -> None:
    comment = "y" * 4000
    parsed = parse_feedback({"feedback": [item(overrideReason={"userComment": comment})]})
    reason = parsed.feedback[0].override_reason
    assert reason is not None and reason.user_comment == comment


def test_the_items_of_one_post_are_bounded() -> None:
    assert parse_feedback({"feedback": [item(card=f"c{n}") for n in range(100)]})
    assert any("feedback:" in m or "feedback " in m for m in refused(*[item()] * 101))


def test_the_in_memory_store_is_bounded_by_bytes_oldest_first() -> None:
    store = InMemoryFeedbackStore(maxbytes=50_000)
    comment = {"userComment": "z" * 4000}
    posts = [
        parse_feedback({"feedback": [item(card=f"c{n}", overrideReason=comment)]}).feedback
        for n in range(30)
    ]
    for post in posts:
        asyncio.run(store.add("s", "iss", post))
    kept = [stored.item.card for stored in store.items()]
    assert 0 < len(kept) < 30 and kept[-1] == "c29"  # the newest kept, the oldest gone
    assert store.bytes <= 50_000
