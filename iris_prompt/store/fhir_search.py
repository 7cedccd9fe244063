"""FHIR search as the audit and the register answer it: date parameters read as instants, a
page's size (`_count`) and start, and the searchset Bundle of one page, with the total and the
links to this page and the next. Plain functions of text and data: the routers
read the query and send the answer. A page is asked for by `_offset` (the audit) or `_after`
(the register: the id the page starts after, so that a flag changed during a walk moves no
other flag from one page to another).

Spec: https://hl7.org/fhir/R4/search.html#date, #count, #paging (links are the server's own)

>>> bundle = searchset([{"resource": {"resourceType": "Flag"}}], total=3,
...     url="https://iris.example/fhir/Flag", params=[("status", "active"), ("_count", "1")],
...     this_page=[("_count", "1")], next_page=[("_count", "1"), ("_after", "f1")])
>>> [(link["relation"], link["url"]) for link in bundle["link"]]
[('self', 'https://iris.example/fhir/Flag?status=active&_count=1'), \
('next', 'https://iris.example/fhir/Flag?status=active&_count=1&_after=f1')]
"""

import datetime
from typing import Any
from urllib.parse import urlencode

from cds_hooks.numbers import ascii_number

# A query's parameters, in order, each as often as given.
Params = list[tuple[str, str]]

__all__ = [
    "END_OF_TIME",
    "BadParameter",
    "date_bounds",
    "given_once",
    "page_offset",
    "page_size",
    "refuse_nul",
    "searchset",
]


class BadParameter(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


# After every instant a datetime can hold: `gt` the last one leaves nothing to match.
END_OF_TIME = datetime.datetime.max.replace(tzinfo=datetime.UTC)


def _after(moment: datetime.datetime, step: datetime.timedelta) -> datetime.datetime | None:
    """`moment + step`, or None past the last instant a datetime can hold (9999-12-31)."""
    try:
        return moment + step
    except OverflowError:
        return None


def date_bounds(
    values: list[str], name: str = "date"
) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """FHIR date search: `date=2026-01-05` (that day), `ge`/`gt`/`le`/`lt` prefixes; the
    bounds as instants, `until` exclusive. BadParameter names the parameter `name`.

    A FHIR date may be 9999-12-31, whose end (the next day) no datetime holds: an upper bound
    there is no bound (everything is before it), and `gt` it leaves nothing after it. The
    search is answered, as a FHIR server answers any valid date, rather than refused."""
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    for raw in values:
        prefix, text = (
            (raw[:2], raw[2:]) if raw[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", raw)
        )
        try:
            if len(text) == 10:
                day = datetime.date.fromisoformat(text)
                start = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
                end = _after(start, datetime.timedelta(days=1))
            else:
                start = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
                if start.tzinfo is None:
                    raise ValueError("a time needs a time zone")
                end = _after(start, datetime.timedelta(microseconds=1))
        except ValueError:
            raise BadParameter(name, f"{name}: {raw!r} is not a FHIR date or dateTime") from None
        if prefix in ("ge", "eq"):
            since = max(since, start) if since else start
        if prefix == "gt":
            after = end or END_OF_TIME
            since = max(since, after) if since else after
        if prefix in ("le", "eq") and end is not None:
            until = min(until, end) if until else end
        if prefix == "lt":
            until = min(until, start) if until else start
    return since, until


def refuse_nul(params: Params) -> None:
    """BadParameter for the first parameter whose value holds the NUL character: PostgreSQL
    refuses it in text, and no value that is searched for has one."""
    for name, value in params:
        if "\x00" in value:
            raise BadParameter(name, f"{name}: a value holding the NUL character (U+0000)")


def given_once(params: Params, names: tuple[str, ...]) -> None:
    """BadParameter for the first of `names` given more than once: which one was meant?"""
    for name in names:
        if sum(given == name for given, _ in params) > 1:
            raise BadParameter(name, f"{name}: give it once")


def page_size(text: str | None, *, default: int, most: int) -> int:
    """The `_count` a search asks for: from 1 to `most`, `default` when not given."""
    count = default if text is None else ascii_number(text, max_digits=9)
    if count is None or not 1 <= count <= most:
        raise BadParameter("_count", f"_count: a whole number from 1 to {most}")
    return count


def page_offset(text: str | None) -> int:
    """The `_offset` a search asks for: the number of matches before its page (0 when not
    given)."""
    offset = 0 if text is None else ascii_number(text, max_digits=9)
    if offset is None:
        raise BadParameter("_offset", "_offset: a whole number, 0 or more")
    return offset


# The parameters that say which page: replaced in each link, the search's own kept.
PAGING = frozenset({"_count", "_offset", "_after"})


def searchset(
    entries: list[dict[str, Any]],
    *,
    total: int,
    url: str,
    params: Params,
    this_page: Params,
    next_page: Params | None,
) -> dict[str, Any]:
    """The Bundle of one page: `entries`, of `total` matches in all. `self` links this page
    (`this_page`) and `next` the one after it (`next_page`, None on the last), each with the
    search's own parameters (`params`, from the query) at `url`. A page past the last has no
    entries, and FHIR JSON has no empty arrays, so no `entry` either."""
    kept = [(name, value) for name, value in params if name not in PAGING]
    links = [{"relation": "self", "url": f"{url}?{urlencode([*kept, *this_page])}"}]
    if next_page is not None:
        links.append({"relation": "next", "url": f"{url}?{urlencode([*kept, *next_page])}"})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle
