"""Values out of raw FHIR JSON, type-checked: lists, strings, codes, and dates at their precision.

Records arrive as plain dicts (orjson output) and are never validated whole (too slow for the
service's budget), so every field the engine reads goes through these helpers: a field of the
wrong type reads as absent, and one malformed resource costs only itself.

Dates. FHIR dates and dateTimes carry a precision ("2026", "2026-11", "2026-11-26") and, with a
time, an offset. They are read for the practice's time zone, `PRACTICE_TIME_ZONE` (England):

- `fhir_date`: the first day a value allows, in the practice's calendar. An entry's date, or a
  period's start. "2026-06-01T23:30:00Z" is 2 June in England (British Summer Time).
- `last_day`: the last day a value allows: "2026" is 31 December 2026. A birth date (the youngest
  age it allows) and a period's end (FHIR period ends are inclusive at their precision).
- `has_started` and `has_ended`: a period bound against the time of the call. A value with a time
  is compared as an instant (an end of "2026-11-26T00:01:00Z" has passed by 10:00 that day); a
  value without one by the day.

Spec: https://hl7.org/fhir/R4/datatypes.html#dateTime and #Period ("the end ... is inclusive").

>>> fhir_date("2026-06-01T23:30:00Z"), last_day("2026-02"), fhir_date("14/05/1992")
(datetime.date(2026, 6, 2), datetime.date(2026, 2, 28), None)
"""

import calendar
import datetime
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "PRACTICE_TIME_ZONE",
    "FhirTime",
    "as_dict",
    "as_list",
    "as_str",
    "codes_of",
    "fhir_date",
    "fhir_time",
    "has_ended",
    "has_started",
    "last_day",
    "local_date",
    "years_old",
]

# Dates in the record and "today" are the practice's: England.
PRACTICE_TIME_ZONE = ZoneInfo("Europe/London")

# FHIR date, dateTime and instant (R4 datatypes): YYYY, YYYY-MM, YYYY-MM-DD, then optionally
# Thh:mm:ss with fractional seconds and an offset (Z or +hh:mm). The time without seconds is
# not FHIR but appears in real exports, and is read. Digits are ASCII, as FHIR's own pattern
# has them (\d would take any script's, and int() reads them).
_FHIR_TIME = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)


def as_list(value: object) -> list[Any]:
    """`value` if it is a JSON array, else empty: a malformed repeating field reads as absent."""
    return value if isinstance(value, list) else []


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else empty."""
    return value if isinstance(value, dict) else {}


def as_str(value: object) -> str | None:
    """`value` if it is a string, else None (so `in frozenset` never meets an unhashable)."""
    return value if isinstance(value, str) else None


def codes_of(concept: object, system: str | None = None) -> tuple[str, ...]:
    """The string codes of a CodeableConcept's codings (of `system` only, when given).

    >>> codes_of({"coding": [{"code": "refuted"}, {"code": 5}, "junk"]})
    ('refuted',)
    """
    found = []
    for coding in as_list(as_dict(concept).get("coding")):
        if not isinstance(coding, dict):
            continue
        code = coding.get("code")
        if isinstance(code, str) and (system is None or coding.get("system") == system):
            found.append(code)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class FhirTime:
    """A FHIR date or dateTime: the first and last day it allows in the practice's calendar, and
    the instant it names when it has a time (timezone-aware), else None."""

    first_day: datetime.date
    last_day: datetime.date
    instant: datetime.datetime | None


def fhir_time(value: object) -> FhirTime | None:
    """`value` read as a FHIR date or dateTime; None when it is not one.

    >>> time = fhir_time("2026")
    >>> time.first_day, time.last_day, time.instant
    (datetime.date(2026, 1, 1), datetime.date(2026, 12, 31), None)
    """
    if not isinstance(value, str):
        return None
    match = _FHIR_TIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if hour is not None:
            zone: datetime.tzinfo = PRACTICE_TIME_ZONE  # no offset: not FHIR; take it as local
            if offset == "Z":
                zone = datetime.UTC
            elif offset is not None:
                sign = -1 if offset[0] == "-" else 1
                hours, minutes = int(offset[1:3]), int(offset[4:6])
                zone = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
            instant = datetime.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                int((fraction or "0")[:6].ljust(6, "0")),
                tzinfo=zone,
            )
            local = instant.astimezone(PRACTICE_TIME_ZONE).date()
            return FhirTime(local, local, instant)
        if day is not None:
            date = datetime.date(int(year), int(month), int(day))
            return FhirTime(date, date, None)
        if month is not None:
            first = datetime.date(int(year), int(month), 1)
            last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
            return FhirTime(first, last, None)
        return FhirTime(datetime.date(int(year), 1, 1), datetime.date(int(year), 12, 31), None)
    except (ValueError, OverflowError):
        return None  # a month 13, a 30 February, an offset of 99 hours


def fhir_date(value: object) -> datetime.date | None:
    """The first day `value` allows, in the practice's calendar ("2019-03" is 1 March 2019).

    >>> fhir_date("2019-03-04T23:30:00+01:00"), fhir_date("2019-03"), fhir_date("garbage")
    (datetime.date(2019, 3, 4), datetime.date(2019, 3, 1), None)
    """
    time = fhir_time(value)
    return time.first_day if time is not None else None


def last_day(value: object) -> datetime.date | None:
    """The last day `value` allows ("2026" is 31 December 2026).

    >>> last_day("2026"), last_day("2024-02"), last_day("2026-11-26T00:01:00Z")
    (datetime.date(2026, 12, 31), datetime.date(2024, 2, 29), datetime.date(2026, 11, 26))
    """
    time = fhir_time(value)
    return time.last_day if time is not None else None


def years_old(born: datetime.date | None, today: datetime.date) -> int | None:
    """Whole years from `born` to `today` (None when unknown or in the future).

    >>> years_old(datetime.date(2010, 5, 2), datetime.date(2026, 5, 1))
    15
    """
    if born is None or born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def local_date(now: datetime.date) -> datetime.date:
    """The practice's calendar date of `now` (a date is taken as it is)."""
    if isinstance(now, datetime.datetime):
        if now.tzinfo is None:
            return now.date()
        return now.astimezone(PRACTICE_TIME_ZONE).date()
    return now


def has_ended(end: object, now: datetime.date) -> bool:
    """Whether a period ending `end` is over at `now` (False when `end` is absent or unreadable).

    `now` is the time of the call (a datetime); given only a date, a timed end is compared by its
    day in the practice's calendar.

    >>> at_ten = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=PRACTICE_TIME_ZONE)
    >>> has_ended("2026", at_ten), has_ended("2026-11-25", at_ten)
    (False, True)
    >>> has_ended("2026-11-26T00:01:00Z", at_ten), has_ended("2026-11-26T00:01:00Z", at_ten.date())
    (True, False)
    """
    time = fhir_time(end)
    if time is None:
        return False
    if time.instant is not None and isinstance(now, datetime.datetime) and now.tzinfo:
        return now > time.instant
    return time.last_day < local_date(now)


def has_started(start: object, now: datetime.date) -> bool:
    """Whether a period starting `start` has begun at `now` (True when `start` is absent or
    unreadable: a period with no start has always applied)."""
    time = fhir_time(start)
    if time is None:
        return True
    if time.instant is not None and isinstance(now, datetime.datetime) and now.tzinfo:
        return time.instant <= now
    return time.first_day <= local_date(now)
