"""Importing into a folder of code sets, all or nothing: codes from a published code list (an
OpenCodelists-style CSV) into one category of a set, or whole sets read from FHIR ValueSets.

Both change a trial copy of the whole folder (`trial_copy`) and check it as the service does at
start-up (`SERVICE_CHECKS`); only if that passes is the folder itself written. So an import never
leaves a folder the service refuses to load.

`import_codelist` names every problem by the lead's own list, line and column (or the command
option that gave the value), not the trial copy: the trial file is the lead's file with the new
rows appended, so its line numbers map back one to one. `import_sets` names the ValueSet file a
set came from (no line: its files are made from the JSON).

    result = import_codelist(folder, Path("codelist.csv"), ImportOptions(...))
    result.problems   # empty when the codes went in
    problems = import_sets(folder, [Incoming(codeset, "trigger", Path("ValueSet.json"))])
"""

import csv
import datetime
import io
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from iris_prompt.codesets.codes import SYSTEM_NAMES, normalise_code
from iris_prompt.codesets.files import check_folder, members_csv, write_codeset
from iris_prompt.codesets.live import SERVICE_CHECKS
from iris_prompt.codesets.model import CodeSet, Member, Problem
from iris_prompt.codesets.replacing import PartlyReplaced, replace_files
from iris_prompt.codesets.validation import Checked

__all__ = [
    "SET_NAME",
    "ImportOptions",
    "ImportResult",
    "Incoming",
    "PartlyWritten",
    "import_codelist",
    "import_sets",
    "trial_copy",
]

# The name of a set's two files (NAME.toml, NAME.csv), as the bundled ones are named (trigger,
# known-abuse): lower-case letters, digits and hyphens. So a name never reaches another folder.
SET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


@contextmanager
def trial_copy(directory: Path) -> Iterator[Path]:
    """A temporary copy of `directory` (empty when it does not exist yet) to change and check
    before the folder itself is touched; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="codesets-") as temporary:
        trial = Path(temporary) / "codesets"
        if directory.is_dir():
            shutil.copytree(directory, trial)
        else:
            trial.mkdir()
        yield trial


@dataclass(frozen=True, slots=True)
class PartlyWritten(Problem):
    """A folder an import left part changed: the message names each file and what to do."""


def _unwritten(directory: Path, error: OSError) -> Problem:
    if not isinstance(error, PartlyReplaced):
        reason = error.strerror or type(error).__name__
        return Problem(str(directory), f"cannot be written ({reason}); nothing in it was changed")
    reason = error.error.strerror or type(error.error).__name__
    said = []
    for target in error.changed:
        old = error.kept.get(target)
        where = f"its old content is in {old.name}" if old else "it is new"
        said.append(f"{target.name} was changed and could not be put back ({where})")
    if error.untouched:
        names = ", ".join(target.name for target in error.untouched)
        said.append(f"{names} {'was' if len(error.untouched) == 1 else 'were'} not changed")
    return PartlyWritten(
        str(directory),
        f"cannot be written ({reason}) part way: {'; '.join(said)}. Import again, or put the old "
        "content back, before the code sets are reloaded",
    )


@dataclass(frozen=True)
class ImportOptions:
    """Where the codes go and what the list's columns are called."""

    purpose: str
    category: str
    source: str
    system: str = "SNOMED CT"
    code_column: str = "code"
    term_column: str = "term"
    note: str = ""


@dataclass
class ImportResult:
    """The members file written (None when nothing was), counts, and every problem found.

    `skipped` counts the list's codes already in the category; `elsewhere` warns of each code
    already in another category of the set, which stays there (a code belongs to one).
    """

    members_file: Path | None = None
    added: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    elsewhere: list[Problem] = field(default_factory=list)


def import_codelist(directory: Path, codelist: Path, options: ImportOptions) -> ImportResult:
    """Add the codes of `codelist` to one category of the set in `directory`, all or nothing."""
    result = ImportResult()
    report = check_folder(directory, checks=SERVICE_CHECKS)
    if report.codesets is None:
        result.problems = report.errors
        return result
    item = next(c for c in report.checked if c.purpose == options.purpose)
    codeset = next(s for s in report.codesets if s.purpose == options.purpose)
    if options.category not in codeset.categories:
        # Checked here, not only in the trial copy: a list whose codes are all in the set
        # already adds no row for that check to see, and would be reported as imported.
        known = ", ".join(codeset.categories)
        message = f"category {options.category!r} is not in the manifest (known: {known})"
        result.problems.append(Problem(str(codelist), message, column="option --category"))
        return result
    rows = _read_rows(codelist, options, result)
    if rows is None:
        return result
    header, listed = rows
    system = next(uri for uri, name in SYSTEM_NAMES.items() if name == options.system)
    seen = {(m.system, m.code) for m in codeset.members}
    added: list[tuple[Member, int]] = []
    for line, cells in listed:
        code = normalise_code(system, cells.get(options.code_column, "").strip())
        if not code:
            continue
        if (system, code) in seen:
            present = codeset.lookup(system, code)
            if present is None or present.category == options.category:
                result.skipped += 1
            else:
                result.elsewhere.append(_elsewhere(present, options, item, codelist, header, line))
            continue
        seen.add((system, code))
        term = cells.get(options.term_column, "").strip()
        member = Member(system, code, term, options.category, options.source, options.note)
        added.append((member, line))
    members_file = Path(item.members_file)
    with trial_copy(directory) as trial:
        text = members_file.read_text(encoding="utf-8-sig")
        text += "" if text.endswith("\n") else "\n"
        first_new_line = text.count("\n") + 1
        appended = _rows_in_order_of(text, [m for m, _ in added])
        (trial / members_file.name).write_text(text + appended, encoding="utf-8")
        trial_report = check_folder(trial, checks=SERVICE_CHECKS)
        lines = {first_new_line + n: line for n, (_, line) in enumerate(added)}
        where = _Relocation(trial, directory, trial / members_file.name, codelist, header, lines)
        result.problems = [where.problem(p, options) for p in trial_report.errors]
    if trial_report.codesets is not None:
        new = next(s for s in trial_report.codesets if s.purpose == options.purpose)
        try:
            replace_files({members_file: members_csv(new.members).encode("utf-8")})
        except OSError as error:
            result.problems.append(_unwritten(directory, error))
            return result
        result.members_file, result.added = members_file, len(added)
    return result


def _elsewhere(
    present: Member,
    options: ImportOptions,
    item: Checked,
    codelist: Path,
    header: list[str],
    line: int,
) -> Problem:
    """The warning for a listed code that another category of the set already holds."""
    row = item.member_lines.get((present.system, present.code), "?")
    message = (
        f"{SYSTEM_NAMES[present.system]} {present.code} is already in category "
        f"{present.category!r} ({item.members_file}, line {row}), so it was not added to "
        f"{options.category!r}: a code belongs to one category; move its row by hand if it should"
    )
    column = f"column {header.index(options.code_column) + 1} ({options.code_column})"
    return Problem(str(codelist), message, line, column, severity="warning")


@dataclass(frozen=True)
class Incoming:
    """A set to import, the name of the files it goes into, and the ValueSet it was read from."""

    codeset: CodeSet
    name: str
    file: Path


def import_sets(
    directory: Path,
    incoming: Sequence[Incoming],
    *,
    replace_existing: bool = False,
    today: datetime.date | None = None,
) -> list[Problem]:
    """Write each set as NAME.toml and NAME.csv in `directory` (made if missing), all or none:
    only if the folder with them passes every check the service applies at start-up. The
    problems, each naming the ValueSet file or the folder's file to fix; empty when written.

    A set replaces one of the same name only with `replace_existing`; the replaced manifest's
    comments are not kept (the new one starts with a line naming the ValueSet it came from).
    """
    today = today or datetime.date.today()
    problems: list[Problem] = []
    names: dict[str, Path] = {}
    for item in incoming:
        if not SET_NAME.fullmatch(item.name):
            raise ValueError(f"{item.name!r} is not a set name: {SET_NAME.pattern}")
        if item.name in names:
            message = f"{names[item.name]} is also written as {item.name!r}: import one per set"
            problems.append(Problem(str(item.file), message))
        names[item.name] = item.file
        files = [directory / f"{item.name}{suffix}" for suffix in (".toml", ".csv")]
        existing = next((path for path in files if path.exists()), None)
        if existing is not None and not replace_existing:
            problems.append(Problem(str(existing), "exists: add --replace to overwrite that set"))
    if problems:
        return problems
    with trial_copy(directory) as trial:
        for item in incoming:
            comment = f"Imported from {item.file.name} on {today.isoformat()}."
            write_codeset(item.codeset, trial, item.name, comment=comment)
        report = check_folder(trial, today=today, checks=SERVICE_CHECKS)
        problems = [_from_valueset(p, trial, directory, incoming) for p in report.errors]
        if report.codesets is not None:
            written = [f"{item.name}{end}" for item in incoming for end in (".toml", ".csv")]
            try:
                directory.mkdir(parents=True, exist_ok=True)
                # The files checked, byte for byte, every one or none.
                replace_files({directory / name: (trial / name).read_bytes() for name in written})
            except OSError as error:
                problems.append(_unwritten(directory, error))
    return problems


def _from_valueset(
    found: Problem, trial: Path, directory: Path, incoming: Sequence[Incoming]
) -> Problem:
    """A problem in the trial copy, naming the ValueSet for a set made from one (without line or
    column, which would point into files made from the JSON) and the folder for the others."""
    file, message, own = found.file, found.message, False
    for item in incoming:
        for suffix in (".toml", ".csv"):
            written = str(trial / f"{item.name}{suffix}")
            own = own or file == written
            file = file.replace(written, str(item.file))
            message = re.sub(re.escape(written) + r" \(line [^,]*, ", f"{item.file} (", message)
            message = message.replace(written, str(item.file))
    file = _in_folder(file, trial, directory)
    message = _in_folder(message, trial, directory)
    if own:
        return replace(found, file=file, message=message, line=None, column=None)
    return replace(found, file=file, message=message)


def _in_folder(text: str, trial: Path, directory: Path) -> str:
    """`text` with the trial copy's paths as the paths of the folder it is a copy of."""
    return text.replace(str(trial), str(directory))


def _rows_in_order_of(members_text: str, members: list[Member]) -> str:
    """CSV rows for `members`, in the column order of the members file they are added to."""
    header = [cell.strip().lower() for cell in next(csv.reader(io.StringIO(members_text)), [])]
    rows = csv.DictReader(io.StringIO(members_csv(members)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([row.get(column, "") for column in header] for row in rows)
    return out.getvalue()


def _read_rows(
    codelist: Path, options: ImportOptions, result: ImportResult
) -> tuple[list[str], list[tuple[int, dict[str, str]]]] | None:
    """The list's header and (line, cells) rows; None, with a problem, if it cannot be used."""
    try:
        text = codelist.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        result.problems.append(Problem(str(codelist), f"cannot be read: {error}"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip() for cell in next(reader, [])]
    for column in (options.code_column, options.term_column):
        if column not in header:
            message = f"no column {column!r} (columns: {', '.join(header)})"
            result.problems.append(Problem(str(codelist), message, line=1))
            return None
    rows = [(reader.line_num, dict(zip(header, row, strict=False))) for row in reader]
    return header, rows


@dataclass
class _Relocation:
    """Moves a problem found in the trial copy to where the lead can fix it."""

    trial: Path
    directory: Path
    trial_members: Path
    codelist: Path
    header: list[str]
    lines: dict[int, int]  # trial members file line -> code-list line

    def problem(self, found: Problem, options: ImportOptions) -> Problem:
        message = found.message
        for trial_line, line in self.lines.items():
            message = message.replace(
                f"{self.trial_members} (line {trial_line},", f"{self.codelist} (line {line},"
            )
        message = _in_folder(message, self.trial, self.directory)
        if found.file == str(self.trial_members) and found.line in self.lines:
            column = self._column(found.column, options)
            return replace(
                found,
                file=str(self.codelist),
                line=self.lines[found.line],
                column=column,
                message=message,
            )
        file = _in_folder(found.file, self.trial, self.directory)
        return replace(found, file=file, message=message)

    def _column(self, column: str | None, options: ImportOptions) -> str | None:
        """'column 2 (code)' of the members file as the list's column, or the option given."""
        name = column.rpartition("(")[2].rstrip(")") if column else ""
        listed = {"code": options.code_column, "term": options.term_column}.get(name)
        if listed is not None:
            return f"column {self.header.index(listed) + 1} ({listed})"
        if name in ("category", "source", "note", "system"):
            return f"option --{name}"
        return column
