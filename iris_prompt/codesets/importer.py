"""Adding codes from a published code list (an OpenCodelists-style CSV) to one category of a set.

`import_codelist` reads the lead's list, adds the codes the set does not have yet to a trial copy
of the whole folder and checks it as the service would. Only if that passes is the set's members
file written. Every problem names the lead's own list, line and column (or the command option
that gave the value), not the trial copy: the trial file is the lead's file with the new rows
appended, so its line numbers map back one to one.

    result = import_codelist(folder, Path("codelist.csv"), ImportOptions(...))
    result.problems   # empty when the codes went in
"""

import csv
import io
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from iris_prompt.codesets.codes import SYSTEM_NAMES, normalise_code
from iris_prompt.codesets.files import check_folder, members_csv
from iris_prompt.codesets.live import SERVICE_CHECKS
from iris_prompt.codesets.model import Member, Problem

__all__ = ["ImportOptions", "ImportResult", "import_codelist"]


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
    """The members file written (None when nothing was), counts, and every problem found."""

    members_file: Path | None = None
    added: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


def import_codelist(directory: Path, codelist: Path, options: ImportOptions) -> ImportResult:
    """Add the codes of `codelist` to one category of the set in `directory`, all or nothing."""
    result = ImportResult()
    report = check_folder(directory, checks=SERVICE_CHECKS)
    if report.codesets is None:
        result.problems = report.errors
        return result
    item = next(c for c in report.checked if c.purpose == options.purpose)
    codeset = next(s for s in report.codesets if s.purpose == options.purpose)
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
            result.skipped += 1
            continue
        seen.add((system, code))
        term = cells.get(options.term_column, "").strip()
        member = Member(system, code, term, options.category, options.source, options.note)
        added.append((member, line))
    members_file = Path(item.members_file)
    with tempfile.TemporaryDirectory(prefix="codesets-") as temporary:
        trial = Path(temporary) / "codesets"
        shutil.copytree(directory, trial)
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
        members_file.write_text(members_csv(new.members), encoding="utf-8")
        result.members_file, result.added = members_file, len(added)
    return result


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
        message = message.replace(str(self.trial), str(self.directory))
        if found.file == str(self.trial_members) and found.line in self.lines:
            column = self._column(found.column, options)
            return replace(
                found,
                file=str(self.codelist),
                line=self.lines[found.line],
                column=column,
                message=message,
            )
        file = found.file.replace(str(self.trial), str(self.directory))
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
