"""The simulation report as one self-contained HTML page a lead can attach to a change request.

Everything is inline: the styles, and the bar charts as SVG drawn here. No script, no font, no
image or style sheet is fetched, so the page looks the same offline, in a mail client's viewer or
in a document store, and leaks nothing when opened. Like every report, it holds counts, codes and
categories only, never a patient identifier.
"""

from collections.abc import Sequence
from html import escape

from iris_prompt.simulate.report import (
    SUMMARY,
    TOP_CODES,
    Report,
    ranked,
    ranked_codes,
    system_name,
)
from iris_prompt.simulate.tally import Change, percent

__all__ = ["bar_chart", "report_html"]

LABEL_WIDTH = 260
BAR_WIDTH = 360
ROW = 18
GAP = 10

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d1d1b; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; }
p.meta { color: #4c6272; margin: 0.2rem 0; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e0e0e0; text-align: left;
         white-space: nowrap; }
td.wrap { white-space: normal; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { display: block; margin: 0.5rem 0; max-width: 100%; height: auto; }
svg text { font-size: 12px; fill: #1d1d1b; }
.new { fill: #005eb8; } .old { fill: #aeb7bd; } .gain { fill: #b35900; } .loss { fill: #007f3b; }
.legend span { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 1rem;
               vertical-align: middle; }
.legend .new { background: #005eb8; } .legend .old { background: #aeb7bd; }
.legend .gain { background: #b35900; } .legend .loss { background: #007f3b; }
footer { margin-top: 2rem; color: #4c6272; font-size: 0.9rem; }
"""


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    classes: Sequence[str],
    *,
    unit: str = "%",
) -> str:
    """Horizontal bars, one group per row and one bar per series (`classes` names each
    series' colour). Values are drawn to scale against the largest; each bar carries its value.
    """
    series = len(classes)
    largest = max((v for _, values in rows for v in values), default=0.0) or 1.0
    group = series * ROW + GAP
    height = max(1, len(rows)) * group + GAP
    width = LABEL_WIDTH + BAR_WIDTH + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    if not rows:
        parts.append(f'<text x="0" y="{ROW}">(none)</text>')
    for r, (label, values) in enumerate(rows):
        top = GAP + r * group
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{top + series * ROW / 2 + 4:.0f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for s, value in enumerate(values):
            length = BAR_WIDTH * value / largest
            y = top + s * ROW
            text = f"{value:.1f}{unit}" if unit == "%" else f"{value:g}{unit}"
            parts.append(
                f'<rect class="{classes[s]} bar" x="{LABEL_WIDTH}" y="{y + 2}" '
                f'width="{length:.1f}" height="{ROW - 4}"><title>{escape(text)}</title></rect>'
                f'<text x="{LABEL_WIDTH + length + 5:.1f}" y="{y + ROW - 5}">{escape(text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend(*items: tuple[str, str]) -> str:
    spans = "".join(f'<span class="{c}"></span>{escape(label)}' for c, label in items)
    return f'<p class="legend">{spans}</p>'


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    numeric: set[int],
    wrap: frozenset[int] = frozenset(),
) -> str:
    """A table; `numeric` columns align right, `wrap` columns (terms, reasons) may wrap."""

    def cell(tag: str, i: int, value: object) -> str:
        classes = " ".join(c for c, cols in (("n", numeric), ("wrap", wrap)) if i in cols)
        klass = f' class="{classes}"' if classes else ""
        return f"<{tag}{klass}>{escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _signed(number: int) -> str:
    return f"{number:+d}" if number else "0"


def _pct(count: int, total: int) -> str:
    return f"{percent(count, total):.1f}%"


def _summary(report: Report) -> str:
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


def _by_category(report: Report) -> str:
    new, old = report.new, report.old
    categories = set(new.enquiry_by_category) | (set(old.enquiry_by_category) if old else set())
    order = sorted(categories, key=lambda c: (-new.enquiry_by_category[c], c))
    if old is None:
        rows = [
            (report.title(c), [percent(new.enquiry_by_category[c], new.considered)]) for c in order
        ]
        chart = bar_chart("Enquiry prompt rate by category", rows, ["new"])
        return chart
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
    chart = bar_chart("Enquiry prompt rate by category, old and new", rows, ["old", "new"])
    return _legend(("old", "old code sets"), ("new", "new code sets")) + chart


def _change(report: Report, name: str, change: Change) -> str:
    out = [
        f"<h2>Change in who gets {escape(name)}</h2>",
        f"<p>Newly: <strong>{len(change.newly)}</strong> patients. "
        f"No longer: <strong>{len(change.no_longer)}</strong> patients.</p>",
    ]
    categories = set(change.newly_by_category) | set(change.no_longer_by_category)
    if categories:
        rows = [
            (
                report.title(c),
                [float(change.newly_by_category[c]), float(change.no_longer_by_category[c])],
            )
            for c in sorted(categories)
        ]
        out.append(_legend(("gain", "newly"), ("loss", "no longer")))
        out.append(bar_chart(f"Change in {name} by category", rows, ["gain", "loss"], unit=""))
    code_rows: list[list[object]] = []
    for way, counter in (("newly", change.newly_by_code), ("no longer", change.no_longer_by_code)):
        for hit, n in ranked_codes(counter):
            code_rows.append(
                [way, system_name(hit), hit.code, hit.term, report.title(hit.category), n]
            )
    if code_rows:
        header = ["", "system", "code", "term", "category", "patients"]
        out.append(_table(header, code_rows, {5}, frozenset({3, 4})))
    return "".join(out)


def report_html(report: Report) -> str:
    """The whole page."""
    new, total = report.new, report.new.considered
    versions = ", ".join(f"{k} {v}" for k, v in report.codesets.items())
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: no scripts, and only inline styles and images.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        "<title>Alert-burden simulation</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Alert-burden simulation</h1>",
        f'<p class="meta">{new.records} patient records in {escape(report.population)} '
        f"({escape(report.kind)}), as of {report.as_of.isoformat()}.</p>",
        f'<p class="meta">Code sets: {escape(versions)}.</p>',
    ]
    if report.old_codesets is not None:
        old_versions = ", ".join(f"{k} {v}" for k, v in report.old_codesets.items())
        parts.append(f'<p class="meta">Compared with: {escape(old_versions)}.</p>')
    parts += [
        "<h2>Summary</h2>",
        _summary(report),
        f"<p>Records skipped (unreadable or invalid): {len(report.skipped)}.</p>",
        "<h2>Enquiry prompt rate by category</h2>",
        "<p>Patients with an enquiry prompt, as a percentage of the adults considered; a patient "
        "with codes in two categories counts in both.</p>",
        _by_category(report),
        f"<h2>Top codes behind enquiry prompts</h2><p>{len(new.enquiry_by_code)} codes in all; "
        f"the {TOP_CODES} behind most prompts:</p>",
        _table(
            ["system", "code", "term", "category", "patients", "% of adults"],
            [
                [system_name(h), h.code, h.term, report.title(h.category), n, _pct(n, total)]
                for h, n in new.top_codes(TOP_CODES)
            ],
            {4, 5},
            frozenset({2, 3}),
        ),
    ]
    if report.comparison is not None:
        parts.append(_change(report, "an enquiry prompt", report.comparison.enquiry))
        parts.append(_change(report, "a known-abuse card", report.comparison.known_abuse))
    if report.skipped:
        parts.append("<h2>Skipped records</h2>")
        rows = [[s.where, s.reason] for s in report.skipped]
        parts.append(_table(["where", "why"], rows, set(), frozenset({1})))
    parts.append(
        "<footer>Made by <code>iris-prompt simulate</code>, which runs the service's own rules "
        "on each record as a clinician opening it on the as-of date would see them. Counts "
        "only: this page holds no patient identifiers.</footer></body></html>"
    )
    return "\n".join(parts) + "\n"
