"""`iris-prompt simulate`: what a code-set change does to a practice's prompts, before it goes live.

    iris-prompt simulate POPULATION [--codesets DIR] [--compare OLD_DIR] [--as-of DATE]
                         [--json | --csv] [--html FILE] [--workers N]

POPULATION is a folder of FHIR R4 Bundles, one per patient, or a FHIR Bulk Data export (NDJSON
files). The service's own rules run on every record as they would for a clinician opening it on
the as-of date; the report counts the adults considered and those who would see an enquiry
prompt, a known-abuse card or a MAPPA household card, prompts by category and code, and
prompts held back by a recent recorded enquiry. With --compare, the same population under the
old code sets too, and who would newly get, or no longer get, a prompt, and because of which
codes. docs/simulation.md explains how to read the report.
"""

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from iris_prompt.codesets.files import default_codesets_dir, load_codesets
from iris_prompt.codesets.model import CodeSetError, CodeSets
from iris_prompt.engine.fhir_values import PRACTICE_TIME_ZONE
from iris_prompt.engine.rules import RuleSettings, rule_settings
from iris_prompt.simulate.html import report_html
from iris_prompt.simulate.population import (
    PopulationError,
    Skipped,
    nobody_read,
    open_population,
)
from iris_prompt.simulate.report import Report, report_csv, report_json_text, report_text
from iris_prompt.simulate.run import (
    RunSettings,
    choose_workers,
    run_population,
    scanner,
)
from iris_prompt.simulate.tally import Comparison, Tally

__all__ = ["Progress", "add_parser", "run", "simulate"]


def _titles(*codesets: CodeSets | None) -> dict[str, str]:
    titles: dict[str, str] = {}
    for sets in codesets:
        if sets is not None:
            for codeset in (sets.trigger, sets.known_abuse):
                for name, category in codeset.categories.items():
                    titles.setdefault(name, category.title or name)
    return titles


def simulate(
    population_path: Path,
    codesets_dir: Path | None = None,
    *,
    compare_dir: Path | None = None,
    as_of: datetime.date | None = None,
    rules: RuleSettings | None = None,
    workers: int | None = None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> Report:
    """Run the rules over a population and count what they decide.

    Raises `CodeSetError` when a code-set folder is not usable and `PopulationError` when the
    population cannot be read at all (an NDJSON file unreadable, no patient's record read);
    single bad records are skipped and listed in the report.
    `rules`: the rule settings (default: the deployment's, from the IRIS_ environment variables
    as the service reads them). `workers`: processes to use (default: every core, for a
    population big enough to gain).
    `progress(total)`, once the number of patients is known, gives a callback told how many
    are done.
    """
    started = time.perf_counter()
    codesets_dir = codesets_dir or default_codesets_dir()
    new_sets = load_codesets(codesets_dir)
    old_sets = None if compare_dir is None else load_codesets(compare_dir)
    # Imported here, not at the top: worker processes import the command's module, and the
    # settings load the protocol layer, which would cost each of them most of a second.
    from iris_prompt.settings import Settings

    day = as_of or datetime.datetime.now(PRACTICE_TIME_ZONE).date()
    # Midday at the practice: the service's clock, on the day of the simulated visit.
    now = datetime.datetime.combine(day, datetime.time(12), tzinfo=PRACTICE_TIME_ZONE)
    settings = RunSettings(codesets_dir, compare_dir, now, rules or rule_settings(Settings()))
    processes = choose_workers(population_path, workers)
    with scanner(processes) as mapper:
        population = open_population(population_path, mapper)
    tell = progress(len(population.units)) if progress is not None else (lambda _done: None)
    new, old = Tally(), None if old_sets is None else Tally()
    comparison = None if old_sets is None else Comparison()
    skipped: list[Skipped] = list(population.skipped)
    # Tallied as each result comes, so nothing is kept per patient but where they were counted
    # from. One patient in two Bundle files (a copy, a re-export) is counted once, from the file
    # first by name: results come in the order of the units, which is by name, whichever worker
    # finishes first. The other file is listed as skipped.
    counted: dict[str, str] = {}
    for result in run_population(population, settings, workers=processes, progress=tell):
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        if result.patient_id in counted:
            reason = f"the same patient as {counted[result.patient_id]} (its Patient id)"
            skipped.append(Skipped(result.where, reason + ": counted once"))
            continue
        counted[result.patient_id] = result.where
        new.add(result.new)
        if old is not None and comparison is not None and result.old is not None:
            old.add(result.old)
            comparison.add(result.patient_id, result.old, result.new)
    if not new.records:
        raise nobody_read(population, skipped)
    return Report(
        population=str(population_path),
        kind=population.kind,
        as_of=settings.as_of,
        codesets=new_sets.versions(),
        new=new,
        titles=_titles(new_sets, old_sets),
        old_codesets=None if old_sets is None else old_sets.versions(),
        old=old,
        comparison=comparison,
        skipped=sorted(skipped, key=lambda s: (s.where, s.reason)),
        seconds=time.perf_counter() - started,
    )


# --- the command --------------------------------------------------------------------------------
def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-04-01") from None


def _workers(text: str) -> int:
    # Imported here: `iris-prompt --help` loads the command line alone (no protocol package).
    from cds_hooks.numbers import ascii_number

    workers = ascii_number(text)
    if workers is None or workers < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return workers


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `simulate` to the `iris-prompt` parser."""
    parser = subparsers.add_parser(
        "simulate",
        help="how many patients a code-set version would prompt, over a population",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "population", type=Path, help="folder of FHIR Bundles (one per patient) or NDJSON files"
    )
    parser.add_argument(
        "--codesets", type=Path, metavar="DIR", help="code sets to simulate (default: bundled)"
    )
    parser.add_argument(
        "--compare", type=Path, metavar="OLD_DIR", help="code sets to compare with (the old ones)"
    )
    parser.add_argument(
        "--as-of", type=_date, metavar="DATE", help="the day to simulate (default: today)"
    )
    machine = parser.add_mutually_exclusive_group()
    machine.add_argument("--json", action="store_true", help="print JSON instead of the table")
    machine.add_argument("--csv", action="store_true", help="print CSV instead of the table")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML report")
    parser.add_argument(
        "--workers", type=_workers, metavar="N", help="processes (default: one per core)"
    )
    parser.set_defaults(func=run)


def _deployment_rules() -> RuleSettings | None:
    """The rule settings as the service reads them; None, said why on stderr, when the settings
    are refused (each by its variable, never its value)."""
    from iris_prompt.settings import Settings, refusal

    try:
        return rule_settings(Settings())
    except ValueError as error:  # pydantic's ValidationError is one
        sys.stderr.write(f"iris-prompt simulate: the settings are refused: {refusal(error)}\n")
        return None


def _unwritable(file: Path) -> str | None:
    """Why a report could not be written to `file`; None if it can. Checked before the run, so
    that a slip in a path never costs the whole run."""
    folder = file.parent
    if file.is_dir():
        return "is a folder; give the report's file name"
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK) or (file.exists() and not os.access(file, os.W_OK)):
        return "cannot be written (permission denied)"
    return None


def run(args: argparse.Namespace) -> int:
    """Carry out `simulate`; the exit status (0 done, 1 unusable code sets or population, 2
    refused settings or an output file that cannot be written)."""
    if args.html is not None and (problem := _unwritable(args.html)) is not None:
        sys.stderr.write(f"iris-prompt simulate: --html {args.html}: {problem}\n")
        return 2
    bars: list[Progress] = []

    def start(total: int) -> Callable[[int], None]:
        bars.append(Progress(total))
        return bars[0]

    rules = _deployment_rules()
    if rules is None:
        return 2
    try:
        report = simulate(
            args.population,
            args.codesets,
            compare_dir=args.compare,
            as_of=args.as_of,
            rules=rules,
            workers=args.workers,
            progress=start,
        )
    except (CodeSetError, PopulationError) as error:
        sys.stderr.write(f"iris-prompt simulate: {error}\n")
        return 1
    finally:
        for bar in bars:
            bar.finish()
    if args.json:
        sys.stdout.write(report_json_text(report))
    elif args.csv:
        sys.stdout.write(report_csv(report))
    else:
        sys.stdout.write(report_text(report))
    if args.html is not None:
        args.html.write_text(report_html(report), encoding="utf-8")
        sys.stderr.write(f"wrote {args.html}\n")
    records = report.new.records + len(report.skipped)
    rate = records / report.seconds if report.seconds else 0.0
    sys.stderr.write(f"{records} records in {report.seconds:.1f} s ({rate:.0f} per second)\n")
    return 0


class Progress:
    """A progress bar on stderr, shown only on a terminal and only once a run has taken
    `delay` seconds, so quick runs and logs stay clean.

        [#########...........]  450/1000 patients  45%  2.1 s
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        delay: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        width: int = 30,
    ) -> None:
        self.total, self.delay, self.clock, self.width = total, delay, clock, width
        self.stream = sys.stderr if stream is None else stream
        self.started = clock()
        self.drawn_at: float | None = None
        self.shown = self.stream.isatty()

    def __call__(self, done: int) -> None:
        if not self.shown:
            return
        now = self.clock()
        elapsed = now - self.started
        if elapsed < self.delay:
            return
        recent = self.drawn_at is not None and now - self.drawn_at < 0.1
        if recent and done < self.total:
            return
        self.drawn_at = now
        fraction = done / self.total if self.total else 1.0
        filled = int(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r[{bar}] {done:>{len(str(self.total))}}/{self.total} patients "
            f"{fraction:4.0%}  {elapsed:.1f} s"
        )
        self.stream.flush()

    def finish(self) -> None:
        """Clear the bar, if one was drawn."""
        if self.drawn_at is not None:
            self.stream.write("\r" + " " * (self.width + 40) + "\r")
            self.stream.flush()
