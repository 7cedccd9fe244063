"""One row of the benchmark table, timing helpers, and the table itself."""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    section: str
    what: str
    n: int
    median_ms: float
    p95_ms: float
    target: str = ""
    verdict: str = ""


def summarise(
    section: str, what: str, seconds: Sequence[float], target_median_ms: float | None = None
) -> Row:
    """A row from per-operation timings in seconds; the verdict compares median and target."""
    ordered = sorted(seconds)
    median = statistics.median(ordered) * 1000
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
    target, verdict = "", ""
    if target_median_ms is not None:
        target = f"median < {target_median_ms:g} ms"
        verdict = "met" if median < target_median_ms else "MISSED"
    return Row(section, what, len(ordered), median, p95, target, verdict)


def render(rows: Sequence[Row]) -> str:
    header = ("section", "what", "n", "median ms", "p95 ms", "target", "verdict")
    cells = [header] + [
        (r.section, r.what, str(r.n), f"{r.median_ms:.3f}", f"{r.p95_ms:.3f}", r.target, r.verdict)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
