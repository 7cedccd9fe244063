"""Code sets: load the folder ICB leads maintain, checked, into indexed values; write one back.

A folder holds one set per purpose (trigger, recording, known-abuse). Each set is two files
with the same name: `NAME.toml`, the manifest, and `NAME.csv`, the members (columns system,
code, term, category, source, note). `codesets/README.md` explains them for the people who
edit them.

    >>> sets = load_codesets(default_codesets_dir())
    >>> sets.trigger.lookup(SNOMED_CT, "35489007").category
    'depression'

This module is the thin I/O layer; the checking is `codeset_validation`, pure over file text.
"""

import csv
import datetime
import io
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from iris_prompt.codesets.codes import CTV3, READ_V2, SNOMED_CT, SYSTEM_NAMES
from iris_prompt.codesets.members import COLUMNS
from iris_prompt.codesets.model import (
    PURPOSES,
    RECORDING_CATEGORIES,
    CategorySettings,
    CodeSet,
    CodeSetError,
    CodeSets,
    Member,
    Problem,
)
from iris_prompt.codesets.validation import Checked, check_across_sets, check_codeset

__all__ = [
    "CTV3",
    "PURPOSES",
    "READ_V2",
    "RECORDING_CATEGORIES",
    "SNOMED_CT",
    "CategorySettings",
    "CodeSet",
    "CodeSetCheck",
    "CodeSetError",
    "CodeSets",
    "FolderReport",
    "Member",
    "Problem",
    "check_folder",
    "codeset_csv_text",
    "codeset_manifest_text",
    "default_codesets_dir",
    "load_codesets",
    "manifest_toml",
    "members_csv",
    "write_codeset",
]


def default_codesets_dir() -> Path:
    """The bundled code sets.

    In a source checkout (and an editable install, as `make serve` uses) that is the
    repository's `codesets/` folder. A wheel installs the same files as data under
    `<prefix>/share/iris-prompt/codesets` (pyproject `data-files`). A deployment that keeps its
    own sets passes their folder instead.
    """
    checkout = Path(__file__).resolve().parents[2] / "codesets"
    installed = Path(sys.prefix) / "share" / "iris-prompt" / "codesets"
    for folder in (checkout, installed):
        if any(folder.glob("*.toml")):
            return folder
    return checkout


# A rule the running program needs of sets that are otherwise valid (such as "the recording set
# holds every code the template writes"). It gets the sets and the checked files, to name file and
# line, and returns its problems; any error makes the folder unusable.
CodeSetCheck = Callable[[CodeSets, Sequence[Checked]], list[Problem]]


@dataclass
class FolderReport:
    """Everything found in a folder: the sets (None unless all is well) and every problem."""

    codesets: CodeSets | None
    problems: list[Problem]
    checked: list[Checked]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def check_folder(
    directory: Path,
    *,
    today: datetime.date | None = None,
    checks: Sequence[CodeSetCheck] = (),
) -> FolderReport:
    """Check every set in `directory`, the rules between them, and then (only when those pass)
    each of `checks`."""
    today = today or datetime.date.today()
    if not directory.is_dir():
        problem = Problem(str(directory), "folder not found")
        return FolderReport(None, [problem], [])
    problems: list[Problem] = []
    checked: list[Checked] = []
    for manifest_path in sorted(directory.glob("*.toml")):
        members_path = manifest_path.with_suffix(".csv")
        manifest_text = _read_text(manifest_path, problems)
        if not members_path.is_file():
            problems.append(
                Problem(str(manifest_path), f"its members file {members_path.name} is missing")
            )
            continue
        members_text = _read_text(members_path, problems)
        if manifest_text is None or members_text is None:
            continue
        item = check_codeset(
            manifest_text,
            members_text,
            manifest_file=str(manifest_path),
            members_file=str(members_path),
            today=today,
        )
        checked.append(item)
        problems.extend(item.problems)
    for members_path in sorted(directory.glob("*.csv")):
        if not members_path.with_suffix(".toml").is_file():
            message = f"no manifest {members_path.with_suffix('.toml').name} for these members"
            problems.append(Problem(str(members_path), message))
    problems.extend(check_across_sets(checked, folder=str(directory)))
    report = FolderReport(None, problems, checked)
    if report.errors:
        return report
    by_purpose = {item.codeset.purpose: item.codeset for item in checked if item.codeset}
    codesets = CodeSets(
        trigger=by_purpose["trigger"],
        recording=by_purpose["recording"],
        known_abuse=by_purpose["known-abuse"],
    )
    for check in checks:
        problems.extend(check(codesets, checked))
    if not report.errors:
        report.codesets = codesets
    return report


def load_codesets(
    directory: Path,
    *,
    today: datetime.date | None = None,
    checks: Sequence[CodeSetCheck] = (),
) -> CodeSets:
    """Load and check the three sets; raise one `CodeSetError` listing every error."""
    report = check_folder(directory, today=today, checks=checks)
    if report.codesets is None:
        raise CodeSetError(report.errors)
    return report.codesets


def _read_text(path: Path, problems: list[Problem]) -> str | None:
    # utf-8-sig: spreadsheet programs often save CSV with a byte-order mark.
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        problems.append(Problem(str(path), "not UTF-8 text: save it as 'CSV UTF-8'"))
    except OSError as error:
        problems.append(Problem(str(path), f"cannot be read ({error.strerror})"))
    return None


# --- writing ---------------------------------------------------------------------------------
def members_csv(members: Iterable[Member]) -> str:
    """Members as CSV text in the project's format (an unknown system URI is written as is)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for m in members:
        system = SYSTEM_NAMES.get(m.system, m.system)
        writer.writerow([system, m.code, m.term, m.category, m.source, m.note])
    return out.getvalue()


def manifest_toml(manifest: dict[str, Any], *, comment: str = "") -> str:
    """A manifest (field name to value, categories as a table of tables) as TOML text."""
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + tomli_w.dumps(manifest, multiline_strings=True)


def codeset_csv_text(codeset: CodeSet) -> str:
    """The set's members as CSV text, in canonical order."""
    return members_csv(codeset.members)


def codeset_manifest_text(codeset: CodeSet, *, comment: str = "") -> str:
    """The set's manifest as TOML text."""
    manifest: dict[str, Any] = {
        "id": codeset.id,
        "title": codeset.title,
        "version": codeset.version,
        "status": codeset.status,
        "owner": codeset.owner,
        "last_reviewed": codeset.last_reviewed,
        "next_review_due": codeset.next_review_due,
        "purpose": codeset.purpose,
        "description": codeset.description,
        "categories": {name: _category_table(s) for name, s in codeset.categories.items()},
    }
    return manifest_toml(manifest, comment=comment)


def _category_table(settings: CategorySettings) -> dict[str, Any]:
    table: dict[str, Any] = {
        "title": settings.title,
        "lookback": settings.lookback_text,
        "reason": settings.reason,
    }
    if settings.min_entries != 1:
        table["min_entries"] = settings.min_entries
    return table


def write_codeset(codeset: CodeSet, directory: Path, name: str, *, comment: str = "") -> None:
    """Write `NAME.toml` and `NAME.csv` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.toml").write_text(
        codeset_manifest_text(codeset, comment=comment), encoding="utf-8"
    )
    (directory / f"{name}.csv").write_text(codeset_csv_text(codeset), encoding="utf-8")
