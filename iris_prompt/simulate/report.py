"""The simulation's report: one `Report`, written as a terminal table, JSON or CSV.

Every figure is a count of patients and a percentage of the adults the rules considered. No
report holds a patient identifier: only counts, codes and category names, and for skipped
records the file (and line) and the reason.
"""

import csv
import datetime
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from iris_prompt.codesets.codes import SYSTEM_NAMES
from iris_prompt.simulate.population import Skipped
from iris_prompt.simulate.tally import Change, Comparison, Hit, Tally, percent

__all__ = [
    "SUMMARY",
    "TOP_CODES",
    "Report",
    "ranked",
    "ranked_codes",
    "report_csv",
    "report_json",
    "report_json_text",
    "report_text",
    "system_name",
]

# The headline rows: (key, label, attribute of Tally).
SUMMARY = (
    ("adults_considered", "Adults considered (16 or over)", "considered"),
    ("enquiry_prompt", "Enquiry prompt", "enquiry"),
    ("known_abuse_card", "Known-abuse card (instead of an enquiry)", "known_abuse"),
    ("mappa_household_card", "MAPPA household card", "mappa"),
    ("suppressed_by_recent_enquiry", "Held back by a recent recorded enquiry", "suppressed"),
)
TOP_CODES = 10


@dataclass
class Report:
    """Everything one run found. `old` and `comparison` are set when comparing versions."""

    population: str
    kind: str
    as_of: datetime.date
    codesets: dict[str, str]
    new: Tally
    titles: dict[str, str] = field(default_factory=dict)  # category -> manifest title
    old_codesets: dict[str, str] | None = None
    old: Tally | None = None
    comparison: Comparison | None = None
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def title(self, category: str) -> str:
        return self.titles.get(category, category)


def system_name(hit: Hit) -> str:
    return SYSTEM_NAMES.get(hit.system, hit.system)


def ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def ranked_codes(counter: Counter[Hit]) -> list[tuple[Hit, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


# --- JSON ---------------------------------------------------------------------------------------
def _summary_json(tally: Tally) -> dict[str, Any]:
    return {
        key: {
            "count": getattr(tally, attr),
            "percent": percent(getattr(tally, attr), tally.considered),
        }
        for key, _label, attr in SUMMARY
    }


def _categories_json(report: Report, counter: Counter[str], total: int) -> list[dict[str, Any]]:
    return [
        {"category": c, "title": report.title(c), "count": n, "percent": percent(n, total)}
        for c, n in ranked(counter)
    ]


def _codes_json(counter: Counter[Hit], total: int) -> list[dict[str, Any]]:
    return [
        {
            "system": hit.system,
            "system_name": system_name(hit),
            "code": hit.code,
            "term": hit.term,
            "category": hit.category,
            "count": n,
            "percent": percent(n, total),
        }
        for hit, n in ranked_codes(counter)
    ]


def _change_json(report: Report, change: Change, total: int) -> dict[str, Any]:
    return {
        "newly": len(change.newly),
        "no_longer": len(change.no_longer),
        "newly_by_category": _categories_json(report, change.newly_by_category, total),
        "newly_by_code": _codes_json(change.newly_by_code, total),
        "no_longer_by_category": _categories_json(report, change.no_longer_by_category, total),
        "no_longer_by_code": _codes_json(change.no_longer_by_code, total),
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON data (see docs/simulation.md for the fields)."""
    new, total = report.new, report.new.considered
    out: dict[str, Any] = {
        "population": {
            "path": report.population,
            "kind": report.kind,
            "records": new.records,
            "skipped": len(report.skipped),
        },
        "as_of": report.as_of.isoformat(),
        "codesets": report.codesets,
        "summary": _summary_json(new),
        "not_considered": dict(ranked(new.not_considered)),
        "mappa_household_card_not_considered": new.mappa_not_considered,
        "enquiry_by_category": _categories_json(report, new.enquiry_by_category, total),
        "enquiry_by_code": _codes_json(new.enquiry_by_code, total),
        "known_abuse_by_category": _categories_json(report, new.known_abuse_by_category, total),
        "suppressed_by_category": _categories_json(report, new.suppressed_by_category, total),
        "skipped": [{"where": s.where, "reason": s.reason} for s in report.skipped],
        "seconds": round(report.seconds, 3),
    }
    if report.old is not None and report.comparison is not None:
        out["compare"] = {
            "codesets": report.old_codesets,
            "summary": _summary_json(report.old),
            "enquiry_by_category": _categories_json(
                report, report.old.enquiry_by_category, report.old.considered
            ),
            "enquiry": _change_json(report, report.comparison.enquiry, total),
            "known_abuse": _change_json(report, report.comparison.known_abuse, total),
        }
    return out


def report_json_text(report: Report) -> str:
    return json.dumps(report_json(report), indent=2) + "\n"


# --- CSV ----------------------------------------------------------------------------------------
CSV_COLUMNS = ("section", "item", "system", "code", "term", "count", "percent")


def report_csv(report: Report) -> str:
    """The report as one long CSV table: a row per figure, `section` saying which."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    data = report_json(report)

    def summary(section: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            writer.writerow([section, key, "", "", "", value["count"], value["percent"]])

    def categories(section: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            writer.writerow(
                [section, row["category"], "", "", row["title"], row["count"], row["percent"]]
            )

    def codes(section: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            writer.writerow(
                [section, row["category"], row["system_name"], row["code"], row["term"]]
                + [row["count"], row["percent"]]
            )

    summary("summary", data["summary"])
    for reason, count in data["not_considered"].items():
        writer.writerow(["not-considered", reason, "", "", "", count, ""])
    mappa_others = data["mappa_household_card_not_considered"]
    writer.writerow(["mappa-not-considered", "", "", "", "", mappa_others, ""])
    categories("enquiry-by-category", data["enquiry_by_category"])
    codes("enquiry-by-code", data["enquiry_by_code"])
    categories("known-abuse-by-category", data["known_abuse_by_category"])
    categories("suppressed-by-category", data["suppressed_by_category"])
    compare = data.get("compare")
    if compare is not None:
        summary("old-summary", compare["summary"])
        categories("old-enquiry-by-category", compare["enquiry_by_category"])
        for card in ("enquiry", "known_abuse"):
            name = card.replace("_", "-")
            change = compare[card]
            writer.writerow([f"{name}-change", "newly", "", "", "", change["newly"], ""])
            writer.writerow([f"{name}-change", "no_longer", "", "", "", change["no_longer"], ""])
            for way in ("newly", "no_longer"):
                label = f"{name}-{way.replace('_', '-')}"
                categories(f"{label}-by-category", change[f"{way}_by_category"])
                codes(f"{label}-by-code", change[f"{way}_by_code"])
    for skipped in data["skipped"]:
        writer.writerow(["skipped", skipped["where"], "", "", skipped["reason"], 1, ""])
    return out.getvalue()


# --- terminal table -----------------------------------------------------------------------------
def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def _pct(count: int, total: int) -> str:
    return f"{percent(count, total):.1f}%"


def _signed(number: int) -> str:
    return f"{number:+d}" if number else "0"


def report_text(report: Report) -> str:
    """The report for a person at a terminal."""
    new, total = report.new, report.new.considered
    old = report.old
    versions = ", ".join(f"{k} {v}" for k, v in report.codesets.items())
    lines = [
        f"Alert-burden simulation: {new.records} patient records in {report.population} "
        f"({report.kind}), as of {report.as_of.isoformat()}",
        f"Code sets: {versions}",
    ]
    if report.old_codesets is not None:
        lines.append(
            "Compared with: " + ", ".join(f"{k} {v}" for k, v in report.old_codesets.items())
        )
    lines.append("")
    header: tuple[str, ...] = ("", "patients", "% of adults")
    if old is not None:
        header = ("", "old", "new", "change", "% of adults (new)")
    rows: list[tuple[str, ...]] = [header]
    for _key, label, attr in SUMMARY:
        count = getattr(new, attr)
        if old is None:
            rows.append((label, str(count), _pct(count, total)))
        else:
            before = getattr(old, attr)
            rows.append(
                (label, str(before), str(count), _signed(count - before), _pct(count, total))
            )
    lines += _table(rows, set(range(1, len(header))))
    for reason, count in ranked(new.not_considered):
        lines.append(f"  Not considered ({reason}): {count}")
    if new.mappa_not_considered:
        lines.append(
            f"  MAPPA household cards for patients not considered: {new.mappa_not_considered}"
        )
    lines.append(f"  Records skipped (unreadable or invalid): {len(report.skipped)}")

    lines += ["", "Enquiry prompts by category"]
    categories = set(new.enquiry_by_category) | (set(old.enquiry_by_category) if old else set())
    if not categories:
        lines.append("  (none)")
    else:
        order = sorted(categories, key=lambda c: (-new.enquiry_by_category[c], c))
        rows = (
            [("category", "old", "new", "change", "% of adults")]
            if old
            else [("category", "patients", "% of adults")]
        )
        for c in order:
            n = new.enquiry_by_category[c]
            if old is None:
                rows.append((report.title(c), str(n), _pct(n, total)))
            else:
                o = old.enquiry_by_category[c]
                rows.append((report.title(c), str(o), str(n), _signed(n - o), _pct(n, total)))
        lines += _table(rows, set(range(1, len(rows[0]))))

    lines += ["", f"Top codes behind enquiry prompts (of {len(new.enquiry_by_code)})"]
    top = new.top_codes(TOP_CODES)
    if not top:
        lines.append("  (none)")
    else:
        rows = [("system", "code", "term", "category", "patients", "% of adults")]
        rows += [
            (system_name(h), h.code, h.term, h.category, str(n), _pct(n, total)) for h, n in top
        ]
        lines += _table(rows, {4, 5})

    if report.comparison is not None:
        for name, change in (
            ("enquiry prompt", report.comparison.enquiry),
            ("known-abuse card", report.comparison.known_abuse),
        ):
            lines += ["", f"Change in who gets an {name}"]
            lines.append(f"  newly: {len(change.newly)}   no longer: {len(change.no_longer)}")
            for way, by_category, by_code in (
                ("newly", change.newly_by_category, change.newly_by_code),
                ("no longer", change.no_longer_by_category, change.no_longer_by_code),
            ):
                for c, n in ranked(by_category):
                    lines.append(f"  {way}, {report.title(c)}: {n}")
                for h, n in ranked_codes(by_code):
                    lines.append(f"  {way}, {system_name(h)} {h.code} {h.term}: {n}")

    if report.skipped:
        lines += ["", "Skipped records"]
        lines += [f"  {s.where}: {s.reason}" for s in report.skipped]
    return "\n".join(lines) + "\n"
