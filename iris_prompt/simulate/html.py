"""The simulation report as one self-contained HTML page a lead can attach to a change request.

Everything is inline: the styles, and the bar charts as SVG. No script, no font, no image or
style sheet is fetched, so the page looks the same offline, in a mail client's viewer or in a
document store, and leaks nothing when opened. Like every report, it holds counts, codes and
categories only, never a patient identifier.

This module works out what the page shows as plain data (tables, and each chart's geometry);
`templates/report.html` lays it out, with Jinja2 escaping every value (autoescape on, and a
missing value is an error, not an empty string).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from iris_prompt.simulate.report import (
    SUMMARY,
    TOP_CODES,
    Report,
    ranked,
    ranked_codes,
    system_name,
)
from iris_prompt.simulate.tally import Change, percent

__all__ = ["Bar", "Chart", "ChartRow", "Table", "bar_chart", "chart_geometry", "report_html"]

LABEL_WIDTH = 260
BAR_WIDTH = 360
ROW = 18
GAP = 10


@dataclass(frozen=True)
class Bar:
    """One bar: its colour class, box and the value written at its end."""

    css: str
    x: int
    y: int
    width: float
    height: int
    text: str
    text_x: float
    text_y: int


@dataclass(frozen=True)
class ChartRow:
    """One group of bars and its label, right-aligned left of the bars."""

    label: str
    label_x: int
    label_y: int
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart in SVG units; `legend` is (colour class, label) per series."""

    title: str
    width: int
    height: int
    rows: tuple[ChartRow, ...]
    empty_y: int = ROW
    legend: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Table:
    """A table; `classes` is each column's cell class ("n" numbers align right, "wrap" terms
    and reasons may wrap, "" neither)."""

    header: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ChangeSection:
    """Who newly gets, or no longer gets, a card when the code sets change."""

    name: str
    newly: int
    no_longer: int
    chart: Chart | None
    codes: Table | None


@cache
def _pages() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("iris_prompt.simulate", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def chart_geometry(
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    classes: Sequence[str],
    *,
    unit: str = "%",
    legend: Sequence[tuple[str, str]] = (),
) -> Chart:
    """Horizontal bars, one group per row and one bar per series (`classes` names each
    series' colour). Values are drawn to scale against the largest; each bar carries its value.
    """
    series = len(classes)
    largest = max((v for _, values in rows for v in values), default=0.0) or 1.0
    group = series * ROW + GAP
    chart_rows = []
    for r, (label, values) in enumerate(rows):
        top = GAP + r * group
        bars = []
        for s, value in enumerate(values):
            length = BAR_WIDTH * value / largest
            y = top + s * ROW
            text = f"{value:.1f}{unit}" if unit == "%" else f"{value:g}{unit}"
            bars.append(
                Bar(
                    classes[s],
                    LABEL_WIDTH,
                    y + 2,
                    length,
                    ROW - 4,
                    text,
                    LABEL_WIDTH + length + 5,
                    y + ROW - 5,
                )
            )
        label_y = round(top + series * ROW / 2 + 4)
        chart_rows.append(ChartRow(label, LABEL_WIDTH - 8, label_y, tuple(bars)))
    return Chart(
        title=title,
        width=LABEL_WIDTH + BAR_WIDTH + 70,
        height=max(1, len(rows)) * group + GAP,
        rows=tuple(chart_rows),
        legend=tuple(legend),
    )


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    classes: Sequence[str],
    *,
    unit: str = "%",
) -> str:
    """The chart of `chart_geometry` drawn as SVG, as the page draws it."""
    macros: Any = _pages().get_template("parts.html").module
    return str(macros.svg(chart_geometry(title, rows, classes, unit=unit)))


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    numeric: set[int],
    wrap: frozenset[int] = frozenset(),
) -> Table:
    classes = tuple(
        " ".join(c for c, cols in (("n", numeric), ("wrap", wrap)) if i in cols)
        for i in range(len(header))
    )
    return Table(tuple(header), tuple(tuple(row) for row in rows), classes)


def _signed(number: int) -> str:
    return f"{number:+d}" if number else "0"


def _pct(count: int, total: int) -> str:
    return f"{percent(count, total):.1f}%"


def _summary(report: Report) -> Table:
    new, old, total = report.new, report.old, report.new.considered
    rows: list[list[object]] = []
    for _key, label, attr in SUMMARY:
        count = getattr(new, attr)
        if old is None:
            rows.append([label, count, _pct(count, total)])
        else:
            before = getattr(old, attr)
            rows.append([label, before, count, _signed(count - before), _pct(count, total)])
    for reason, count in ranked(new.not_considered):
        label = f"Not considered ({reason})"
        rows.append([label, count, ""] if old is None else [label, count, count, "", ""])
    if new.mappa_not_considered:
        label, count = "MAPPA household cards for patients not considered", new.mappa_not_considered
        rows.append([label, count, ""] if old is None else [label, count, count, "", ""])
    if old is None:
        return _table(["", "patients", "% of adults"], rows, {1, 2})
    return _table(["", "old", "new", "change", "% of adults (new)"], rows, {1, 2, 3, 4})


def _by_category(report: Report) -> Chart:
    new, old = report.new, report.old
    categories = set(new.enquiry_by_category) | (set(old.enquiry_by_category) if old else set())
    order = sorted(categories, key=lambda c: (-new.enquiry_by_category[c], c))
    if old is None:
        rows = [
            (report.title(c), [percent(new.enquiry_by_category[c], new.considered)]) for c in order
        ]
        return chart_geometry("Enquiry prompt rate by category", rows, ["new"])
    rows = [
        (
            report.title(c),
            [
                percent(old.enquiry_by_category[c], old.considered),
                percent(new.enquiry_by_category[c], new.considered),
            ],
        )
        for c in order
    ]
    return chart_geometry(
        "Enquiry prompt rate by category, old and new",
        rows,
        ["old", "new"],
        legend=[("old", "old code sets"), ("new", "new code sets")],
    )


def _change(report: Report, name: str, change: Change) -> ChangeSection:
    chart = None
    categories = set(change.newly_by_category) | set(change.no_longer_by_category)
    if categories:
        rows = [
            (
                report.title(c),
                [float(change.newly_by_category[c]), float(change.no_longer_by_category[c])],
            )
            for c in sorted(categories)
        ]
        chart = chart_geometry(
            f"Change in {name} by category",
            rows,
            ["gain", "loss"],
            unit="",
            legend=[("gain", "newly"), ("loss", "no longer")],
        )
    code_rows: list[list[object]] = []
    for way, counter in (("newly", change.newly_by_code), ("no longer", change.no_longer_by_code)):
        for hit, n in ranked_codes(counter):
            code_rows.append(
                [way, system_name(hit), hit.code, hit.term, report.title(hit.category), n]
            )
    codes = None
    if code_rows:
        header = ["", "system", "code", "term", "category", "patients"]
        codes = _table(header, code_rows, {5}, frozenset({3, 4}))
    return ChangeSection(name, len(change.newly), len(change.no_longer), chart, codes)


def report_html(report: Report) -> str:
    """The whole page."""
    new, total = report.new, report.new.considered
    changes = []
    if report.comparison is not None:
        changes = [
            _change(report, "an enquiry prompt", report.comparison.enquiry),
            _change(report, "a known-abuse card", report.comparison.known_abuse),
        ]
    skipped = None
    if report.skipped:
        rows = [[s.where, s.reason] for s in report.skipped]
        skipped = _table(["where", "why"], rows, set(), frozenset({1}))
    top = _table(
        ["system", "code", "term", "category", "patients", "% of adults"],
        [
            [system_name(h), h.code, h.term, report.title(h.category), n, _pct(n, total)]
            for h, n in new.top_codes(TOP_CODES)
        ],
        {4, 5},
        frozenset({2, 3}),
    )
    old_versions = None
    if report.old_codesets is not None:
        old_versions = ", ".join(f"{k} {v}" for k, v in report.old_codesets.items())
    return (
        _pages()
        .get_template("report.html")
        .render(
            records=new.records,
            population=report.population,
            kind=report.kind,
            as_of=report.as_of.isoformat(),
            versions=", ".join(f"{k} {v}" for k, v in report.codesets.items()),
            old_versions=old_versions,
            summary=_summary(report),
            skipped_count=len(report.skipped),
            by_category=_by_category(report),
            codes_in_all=len(new.enquiry_by_code),
            top_codes=TOP_CODES,
            top=top,
            changes=changes,
            skipped=skipped,
        )
    )
