"""What a report is asked for, by the analytics API and `iris-prompt report` alike: a period
between two days or times (`parse_day`), and a grouping of the figures (`GROUPINGS`).

No database here: the command line builds its parser from it without loading the store.
"""

import datetime

__all__ = ["GROUPINGS", "parse_day"]

GROUPINGS = ("category", "code", "practice", "codeset-version")


def parse_day(text: str) -> datetime.datetime:
    """A date ("2026-01-05", midnight UTC) or a dateTime with a time zone."""
    if len(text) == 10:
        day = datetime.date.fromisoformat(text)
        return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a time needs a time zone")
    return value
