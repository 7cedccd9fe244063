"""The safety case report: run the tests the hazard log names, say which controls ran green.

`make safety-case` (`python -m iris_prompt.safety`, from the repository's root) reads
`docs/safety/hazard-log.toml`, runs every test a control names in one pytest process (the
plugin `iris_prompt.safety.outcomes` deselects the rest), and writes `build/safety-case.md`.
A control is green when every test it names passed in that run; a test that failed, was
skipped or does not exist leaves it red. The command exits 1 unless every control is green.

`verdicts` and `render` are pure; `run_tests` and `main` do the I/O.
"""

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from iris_prompt.safety.hazard_log import Control, Hazard, HazardLog, HazardLogError, load
from iris_prompt.safety.outcomes import named_by, worst

__all__ = ["Run", "Verdict", "main", "render", "run_tests", "verdicts"]

LOG = Path("docs/safety/hazard-log.toml")
OUTPUT = Path("build/safety-case.md")


@dataclass(frozen=True)
class Run:
    """One run of the named tests: each collected test's outcome, and where and when it ran."""

    outcomes: Mapping[str, str]
    when: str
    commit: str


@dataclass(frozen=True)
class Verdict:
    """A control and the outcome of each test it names in this run."""

    control: Control
    tests: tuple[tuple[str, str], ...]

    @property
    def green(self) -> bool:
        return all(outcome == "passed" for _, outcome in self.tests)


@dataclass(frozen=True)
class Row:
    """A hazard in the report: its ratings and its controls' verdicts in this run."""

    hazard: Hazard
    initial: int
    residual: int
    verdicts: tuple[Verdict, ...]

    @property
    def green(self) -> int:
        return sum(v.green for v in self.verdicts)


def outcome_of(node_id: str, outcomes: Mapping[str, str]) -> str:
    """A named test's outcome: the worst of its parameters', or "missing" when none ran."""
    return worst(o for collected, o in outcomes.items() if named_by(collected, node_id))


def verdicts(hazard: Hazard, outcomes: Mapping[str, str]) -> tuple[Verdict, ...]:
    return tuple(
        Verdict(control, tuple((t, outcome_of(t, outcomes)) for t in control.tests))
        for control in hazard.controls
    )


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a pipe or a line break would end the cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("iris_prompt.safety", "templates"),
        autoescape=False,  # Markdown, not HTML: table cells go through `cell`
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["cell"] = _cell
    return environment


def render(log: HazardLog, run: Run, intended_use: str) -> str:
    """The report as Markdown."""
    matrix = log.matrix
    rows = [
        Row(
            hazard,
            matrix.rating(hazard.initial),
            matrix.rating(hazard.residual),
            verdicts(hazard, run.outcomes),
        )
        for hazard in log.hazards
    ]
    named = log.node_ids()
    counts = {
        outcome: sum(outcome_of(t, run.outcomes) == outcome for t in named)
        for outcome in ("passed", "failed", "skipped", "missing")
    }
    all_verdicts = [v for row in rows for v in row.verdicts]
    return (
        _templates()
        .get_template("safety-case.md")
        .render(
            log=log,
            matrix=matrix,
            run=run,
            intended_use=intended_use.strip(),
            rows=rows,
            areas=[(area, [r for r in rows if r.hazard.area == area.id]) for area in log.areas],
            controls=len(all_verdicts),
            green=sum(v.green for v in all_verdicts),
            tests=len(named),
            counts=counts,
        )
    )


def run_tests(node_ids: Sequence[str], root: Path) -> dict[str, str]:
    """Run the named tests under `root` in one pytest process; each collected test's outcome.

    Files that do not exist are not passed to pytest (which would then run nothing at all);
    their tests, like any name that matches no test, are simply absent from the answer.
    """
    files = sorted(
        {n.partition("::")[0] for n in node_ids if (root / n.partition("::")[0]).is_file()}
    )
    if not files:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        named, out = Path(scratch, "named.json"), Path(scratch, "outcomes.json")
        named.write_text(json.dumps(list(node_ids)), encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-p", "iris_prompt.safety.outcomes"]
        # As `--option=value`: pytest looks for the project's configuration from the paths on
        # its command line before it knows these options, and would take a separate value (a
        # file in the temporary folder) for a test path, miss the project's pytest settings
        # and run the tests without its markers and warning filters.
        command += [f"--safety-named={named}", f"--safety-outcomes={out}"]
        command += ["--rootdir", str(root), "--continue-on-collection-errors", "-q"]
        command += ["-p", "no:cacheprovider", *files]
        subprocess.run(command, cwd=root, check=False)
        if not out.is_file():
            return {}
        outcomes: dict[str, str] = json.loads(out.read_text(encoding="utf-8"))
        return outcomes


def _commit(root: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    return commit + (" with uncommitted changes" if git("status", "--porcelain") else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iris_prompt.safety",
        description="Run the tests the hazard log names and write the safety case report.",
    )
    parser.add_argument("--log", type=Path, default=LOG, help=f"the hazard log (default {LOG})")
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help=f"the report (default {OUTPUT})"
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="where the tests are")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    log_path = args.log if args.log.is_absolute() else root / args.log
    try:
        log = load(log_path)
    except (HazardLogError, OSError) as error:
        sys.stderr.write(f"{error}\n")
        return 2
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    outcomes = run_tests(log.node_ids(), root)
    intended_use_path = root / log.intended_use
    intended_use = (
        intended_use_path.read_text(encoding="utf-8") if intended_use_path.is_file() else ""
    )
    report = render(log, Run(outcomes, started, _commit(root)), intended_use)
    output = args.output if args.output.is_absolute() else root / args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report, encoding="utf-8")
    controls = [v for h in log.hazards for v in verdicts(h, outcomes)]
    green = sum(v.green for v in controls)
    sys.stdout.write(f"{output}: {green} of {len(controls)} controls green in this run\n")
    return 0 if green == len(controls) else 1
