"""Checking a code set's members CSV: pure, from file text to its members and the problems,
each naming the file, line and column (see `validation.py` for the rules).
"""

import csv
import io

from iris_prompt.codesets.codes import SNOMED_CT, SYSTEM_NAMES, check_code, snomed_namespace
from iris_prompt.codesets.model import CategorySettings, Member, Problem

__all__ = ["COLUMNS", "EMIS_NAMESPACE", "check_members"]

COLUMNS = ("system", "code", "term", "category", "source", "note")
_REQUIRED_COLUMNS = COLUMNS
_SYSTEMS_BY_NAME = {name: uri for uri, name in SYSTEM_NAMES.items()}
EMIS_NAMESPACE = "1000006"


def check_members(
    text: str,
    file: str,
    categories: dict[str, CategorySettings],
    problems: list[Problem],
    member_lines: dict[tuple[str, str], int],
) -> list[Member]:
    """The rows of a members CSV that pass their checks; every problem goes to `problems`, and
    each member's line to `member_lines` (for messages about conflicts between sets)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [c for c in _REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c and c not in COLUMNS]
    if missing or unknown or not header:
        problems.append(
            Problem(
                file,
                f"the first line must name the columns {', '.join(COLUMNS)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else ""),
                line=1,
            )
        )
        return []
    members: list[Member] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(
                Problem(file, f"{len(row)} values but {len(header)} columns (a stray comma?)", line)
            )
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        member = _check_row(cells, header, file, line, categories, problems)
        if member is None:
            continue
        key = (member.system, member.code)
        if key in member_lines:
            earlier = member_lines[key]
            other = next(m for m in members if (m.system, m.code) == key)
            more = (
                f" in category {other.category!r}; a code belongs to one category"
                if other.category != member.category
                else ""
            )
            problems.append(
                Problem(
                    file,
                    f"{SYSTEM_NAMES[member.system]} {member.code} is already on line {earlier}"
                    f"{more}; delete one of the two lines",
                    line,
                    _column(header, "code"),
                )
            )
            continue
        member_lines[key] = line
        members.append(member)
    return members


def _column(header: list[str], name: str) -> str:
    return f"column {header.index(name) + 1} ({name})"


def _check_row(
    cells: dict[str, str],
    header: list[str],
    file: str,
    line: int,
    categories: dict[str, CategorySettings],
    problems: list[Problem],
) -> Member | None:
    before = len(problems)

    def problem(column: str, message: str) -> None:
        problems.append(Problem(file, message, line, _column(header, column)))

    system = _SYSTEMS_BY_NAME.get(cells.get("system", ""))
    code = cells.get("code", "")
    if system is None:
        names = ", ".join(repr(n) for n in _SYSTEMS_BY_NAME)
        problem("system", f"system {cells.get('system', '')!r} is not one of {names}")
    elif not code:
        problem("code", "the code is missing")
    else:
        try:
            check_code(system, code)
        except ValueError as error:
            problem("code", str(error))
        else:
            if system == SNOMED_CT and snomed_namespace(code) == EMIS_NAMESPACE:
                problem(
                    "code",
                    f"{code} is an EMIS local code (namespace {EMIS_NAMESPACE}), not national "
                    "SNOMED CT: other GP systems will never record it",
                )
    for column, what in (("term", "term"), ("category", "category"), ("source", "source")):
        if not cells.get(column):
            problem(column, f"the {what} is missing")
    category = cells.get("category", "")
    if category and categories and category not in categories:
        known = ", ".join(categories)
        problem("category", f"category {category!r} is not in the manifest (known: {known})")
    if len(problems) > before or system is None:
        return None
    return Member(system, code, cells["term"], category, cells["source"], cells.get("note", ""))
