"""Values out of raw FHIR JSON: dates at their precision, in England, and type-checked fields."""

import datetime

import pytest

from iris_prompt.engine.fhir_values import (
    PRACTICE_TIME_ZONE,
    as_dict,
    as_list,
    as_str,
    codes_of,
    fhir_date,
    has_ended,
    has_started,
    last_day,
)

D = datetime.date
# 10:00 on 26 November 2026 in London (GMT: UTC+0).
NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=PRACTICE_TIME_ZONE)


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("2026", D(2026, 1, 1), D(2026, 12, 31)),
        ("2024-02", D(2024, 2, 1), D(2024, 2, 29)),
        ("2026-11-26", D(2026, 11, 26), D(2026, 11, 26)),
        # British Summer Time: 23:30 UTC on 1 June is 00:30 on 2 June in England.
        ("2026-06-01T23:30:00Z", D(2026, 6, 2), D(2026, 6, 2)),
        ("2026-06-01T22:59:59.123456789Z", D(2026, 6, 1), D(2026, 6, 1)),
        # Winter: UTC is England's time.
        ("2026-12-01T23:30:00Z", D(2026, 12, 1), D(2026, 12, 1)),
        ("2026-06-02T00:30:00+01:00", D(2026, 6, 2), D(2026, 6, 2)),
        ("2026-06-01T20:00:00-05:00", D(2026, 6, 2), D(2026, 6, 2)),
        ("2026-06-01T10:00", D(2026, 6, 1), D(2026, 6, 1)),  # no seconds, no offset: local
    ],
)
def test_dates_at_their_precision_in_england(value: str, first: D, last: D) -> None:
    assert (fhir_date(value), last_day(value)) == (first, last)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("14/05/1992", "not FHIR's order"),
        ("1992-5-14", "month and day need two digits"),
        ("2026-02-30", "no such day"),
        ("2026-13", "no such month"),
        ("2026-06-01T25:00:00Z", "no such hour"),
        ("2026-06-01T10:00:00+99:00", "no such offset"),
        ("202", "too short"),
        ("\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661", "not ASCII digits (FHIR's)"),
        ("2026-01-01T1\u0660:00:00Z", "an hour not in ASCII digits"),
        ("", "empty"),
        (19920514, "a number"),
        (["2026-01-01"], "a list"),
        (None, "absent"),
    ],
)
def test_what_is_not_a_date_reads_as_none(value: object, why: str) -> None:
    assert fhir_date(value) is None and last_day(value) is None, why


@pytest.mark.parametrize(
    ("end", "ended"),
    [
        ("2026", False),
        ("2026-11", False),
        ("2026-11-26", False),  # inclusive: today is its last day
        ("2026-11-25", True),
        ("2026-10", True),
        ("2025", True),
        ("2026-11-26T00:01:00Z", True),  # an instant: ten hours ago
        ("2026-11-26T09:59:00Z", True),
        ("2026-11-26T10:01:00Z", False),
        (None, False),
        ("unreadable", False),
    ],
)
def test_period_ends(end: object, ended: bool) -> None:
    assert has_ended(end, NOW) is ended


def test_with_only_a_date_a_timed_end_counts_by_its_day() -> None:
    assert not has_ended("2026-11-26T00:01:00Z", NOW.date())
    assert has_ended("2026-11-25T23:59:00Z", NOW.date())


@pytest.mark.parametrize(
    ("start", "started"),
    [
        ("2026-11", True),
        ("2026-11-26", True),
        ("2026-11-26T09:00:00Z", True),
        ("2026-11-26T10:30:00Z", False),
        ("2026-11-27", False),
        ("2026-12", False),
        ("2027", False),
        (None, True),
    ],
)
def test_period_starts(start: object, started: bool) -> None:
    assert has_started(start, NOW) is started


def test_a_call_time_in_another_zone_is_the_practices_day() -> None:
    # 23:30 UTC on 1 June is already 2 June in England: a period ending 1 June is over.
    late = datetime.datetime(2026, 6, 1, 23, 30, tzinfo=datetime.UTC)
    assert has_ended("2026-06-01", late)


@pytest.mark.parametrize(
    ("value", "as_list_", "as_dict_", "as_str_"),
    [
        ([1], [1], {}, None),
        ({"a": 1}, [], {"a": 1}, None),
        ("x", [], {}, "x"),
        (5, [], {}, None),
        (None, [], {}, None),
    ],
)
def test_type_checked_fields(value: object, as_list_: list, as_dict_: dict, as_str_: str) -> None:
    assert (as_list(value), as_dict(value), as_str(value)) == (as_list_, as_dict_, as_str_)


def test_codes_of_a_concept_skip_what_is_not_a_coding() -> None:
    concept = {
        "coding": [
            {"system": "s", "code": "a"},
            {"system": "t", "code": "b"},
            {"code": ["c"]},
            "d",
            None,
        ]
    }
    assert codes_of(concept) == ("a", "b")
    assert codes_of(concept, "t") == ("b",)
    for malformed in ({"coding": 3}, {"coding": {"code": "a"}}, ["a"], "a", None):
        assert codes_of(malformed) == ()
