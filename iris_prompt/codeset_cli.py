"""`iris-prompt codesets ...`: the commands ICB safeguarding leads (and CI) use on code sets.

    iris-prompt codesets validate [DIR]            check; exit 0 when usable, 1 when not
    iris-prompt codesets diff OLD NEW [--json]     OLD/NEW: folders or git revisions
    iris-prompt codesets stats [DIR] [--json]      counts by category and system
    iris-prompt codesets export [DIR] --out OUT    each set as a FHIR R4 ValueSet (JSON)
    iris-prompt codesets import csv FILE --set trigger --category anxiety --source "..."
    iris-prompt codesets import valueset FILE      a ValueSet back into NAME.toml + NAME.csv

`validate` and `import` apply the service's own checks (`SERVICE_CHECKS`) on top of the file
rules, so a folder they pass is one the service loads. `diff`, `stats` and `export` do not, so
they also work on an older version written for an older template.

`add_parser` registers the subcommand on the main parser; `run` carries it out.
"""

import argparse
import csv
import datetime
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from iris_prompt.codes import SYSTEM_NAMES, normalise_code
from iris_prompt.codeset_diff import diff_as_json, diff_as_text, diff_codesets, stats, stats_as_text
from iris_prompt.codeset_model import PURPOSES, CodeSetError, Member
from iris_prompt.codeset_runtime import SERVICE_CHECKS
from iris_prompt.codeset_valueset import (
    DEFAULT_BASE_URL,
    codeset_from_valueset,
    codeset_to_valueset,
)
from iris_prompt.codesets import (
    FolderReport,
    check_folder,
    default_codesets_dir,
    members_csv,
    write_codeset,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `codesets` and its subcommands to the `iris-prompt` parser."""
    parser = subparsers.add_parser(
        "codesets",
        help="check, compare, import and export code sets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="codesets_command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check a folder of code sets")
    validate.add_argument("dir", nargs="?", type=Path, help="folder (default: bundled sets)")

    diff = commands.add_parser("diff", help="what changed between two versions")
    diff.add_argument("old", help="folder, or git revision such as main or HEAD~1")
    diff.add_argument("new", help="folder, or git revision")
    diff.add_argument("--path", default="codesets", help="folder inside the repository for git")
    diff.add_argument("--json", action="store_true", help="machine-readable output")

    stats_parser = commands.add_parser("stats", help="counts by category and code system")
    stats_parser.add_argument("dir", nargs="?", type=Path)
    stats_parser.add_argument("--json", action="store_true")

    export = commands.add_parser("export", help="each set as a FHIR R4 ValueSet")
    export.add_argument("dir", nargs="?", type=Path)
    export.add_argument("--set", choices=PURPOSES, help="only this set (printed if no --out)")
    export.add_argument("--out", type=Path, help="folder for ValueSet-<id>.json files")
    export.add_argument("--base-url", default=DEFAULT_BASE_URL, help="canonical FHIR base URL")

    imports = commands.add_parser("import", help="add codes from a code list, or a ValueSet")
    kinds = imports.add_subparsers(dest="import_kind", required=True, metavar="KIND")
    from_csv = kinds.add_parser("csv", help="an OpenCodelists-style CSV into one category")
    from_csv.add_argument("file", type=Path)
    from_csv.add_argument("--set", required=True, choices=PURPOSES, help="which code set")
    from_csv.add_argument("--category", required=True, help="category the codes go into")
    from_csv.add_argument("--source", required=True, help="where the list comes from")
    from_csv.add_argument("--system", default="SNOMED CT", choices=list(SYSTEM_NAMES.values()))
    from_csv.add_argument("--code-column", default="code")
    from_csv.add_argument("--term-column", default="term")
    from_csv.add_argument("--note", default="")
    from_csv.add_argument("--dir", type=Path, help="folder of code sets (default: bundled)")
    from_valueset = kinds.add_parser("valueset", help="a ValueSet exported by this tool")
    from_valueset.add_argument("file", type=Path)
    from_valueset.add_argument("--dir", type=Path, help="folder to write into")
    from_valueset.add_argument("--name", help="file name (default: the set's purpose)")
    from_valueset.add_argument("--replace", action="store_true", help="overwrite that set")


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed `codesets` command; the exit status."""
    command = args.codesets_command
    if command == "validate":
        return _validate(args.dir or default_codesets_dir())
    if command == "diff":
        return _diff(args)
    if command == "stats":
        return _stats(args)
    if command == "export":
        return _export(args)
    if args.import_kind == "csv":
        return _import_csv(args)
    return _import_valueset(args)


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def _report(report: FolderReport) -> None:
    for problem in report.problems:
        _err(str(problem))


def _validate(directory: Path) -> int:
    report = check_folder(directory, checks=SERVICE_CHECKS)
    _report(report)
    errors, warnings = len(report.errors), len(report.problems) - len(report.errors)
    if report.codesets is None:
        _err(f"{directory}: {errors} error(s), {warnings} warning(s): not usable")
        return 1
    sizes = ", ".join(f"{s.purpose} {s.version} ({len(s)} codes)" for s in report.codesets)
    _out(f"{directory}: valid: {sizes}" + (f"; {warnings} warning(s)" if warnings else ""))
    return 0


def _load_or_report(directory: Path) -> FolderReport:
    report = check_folder(directory)
    if report.codesets is None:
        _report(report)
    return report


def _diff(args: argparse.Namespace) -> int:
    with _folder(args.old, args.path) as old_dir, _folder(args.new, args.path) as new_dir:
        old, new = _load_or_report(old_dir), _load_or_report(new_dir)
        if old.codesets is None or new.codesets is None:
            return 1
        diffs = diff_codesets(old.codesets, new.codesets)
    _out(json.dumps(diff_as_json(diffs), indent=2) if args.json else diff_as_text(diffs))
    return 0


@contextmanager
def _folder(spec: str, path_in_repo: str) -> Iterator[Path]:
    """A folder as given, or the code sets at a git revision extracted to a temporary folder."""
    if Path(spec).is_dir():
        yield Path(spec)
        return
    revision, _, path = spec.partition(":")
    path = path or path_in_repo
    with tempfile.TemporaryDirectory(prefix="codesets-") as temporary:
        try:
            archive = subprocess.run(
                ["git", "archive", "--format=tar", revision, "--", path],
                capture_output=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            stderr = getattr(error, "stderr", b"") or b""
            detail = stderr.decode(errors="replace").strip() or str(error)
            raise SystemExit(f"{spec!r} is neither a folder nor a git revision: {detail}") from None
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(temporary, filter="data")
        yield Path(temporary) / path


def _stats(args: argparse.Namespace) -> int:
    report = _load_or_report(args.dir or default_codesets_dir())
    if report.codesets is None:
        return 1
    result = stats(report.codesets)
    _out(json.dumps(result, indent=2) if args.json else stats_as_text(report.codesets))
    return 0


def _export(args: argparse.Namespace) -> int:
    report = _load_or_report(args.dir or default_codesets_dir())
    if report.codesets is None:
        return 1
    chosen = [s for s in report.codesets if args.set in (None, s.purpose)]
    if args.out is None:
        if len(chosen) != 1:
            _err("say which set with --set, or give a folder with --out")
            return 2
        _out(json.dumps(codeset_to_valueset(chosen[0], base_url=args.base_url), indent=2))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for codeset in chosen:
        target = args.out / f"ValueSet-{codeset.id}.json"
        resource = codeset_to_valueset(codeset, base_url=args.base_url)
        target.write_text(json.dumps(resource, indent=2) + "\n", encoding="utf-8")
        _out(f"wrote {target}")
    return 0


def _import_csv(args: argparse.Namespace) -> int:
    directory = args.dir or default_codesets_dir()
    report = _load_or_report(directory)
    if report.codesets is None:
        _err("fix the problems above before importing")
        return 1
    item = next(c for c in report.checked if c.codeset and c.codeset.purpose == args.set)
    codeset = next(s for s in report.codesets if s.purpose == args.set)
    system = next(uri for uri, name in SYSTEM_NAMES.items() if name == args.system)
    try:
        rows = list(csv.DictReader(args.file.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as error:
        _err(f"{args.file}: cannot be read: {error}")
        return 1
    columns = rows[0].keys() if rows else []
    for column in (args.code_column, args.term_column):
        if column not in columns:
            _err(f"{args.file}: no column {column!r} (columns: {', '.join(columns)})")
            return 1
    added: list[Member] = []
    skipped = 0
    seen = {(m.system, m.code) for m in codeset.members}
    for row in rows:
        code = normalise_code(system, (row[args.code_column] or "").strip())
        if not code:
            continue
        if (system, code) in seen:
            skipped += 1
            continue
        seen.add((system, code))
        term = (row[args.term_column] or "").strip()
        added.append(Member(system, code, term, args.category, args.source, args.note))
    members_path = Path(item.members_file)
    with tempfile.TemporaryDirectory(prefix="codesets-") as temporary:
        trial = Path(temporary) / "codesets"
        shutil.copytree(directory, trial)
        (trial / members_path.name).write_text(
            members_csv([*codeset.members, *added]), encoding="utf-8"
        )
        trial_report = check_folder(trial, checks=SERVICE_CHECKS)
    if trial_report.codesets is None:
        for problem in trial_report.errors:
            _err(str(problem).replace(str(trial), str(directory)))
        _err(f"nothing imported: the codes from {args.file} would make the set invalid")
        return 1
    members_path.write_text(
        members_csv(next(s for s in trial_report.codesets if s.purpose == args.set).members),
        encoding="utf-8",
    )
    _out(
        f"added {len(added)} code(s) to {members_path} (category {args.category}); "
        f"{skipped} already there. Now raise 'version' and set 'last_reviewed' in "
        f"{members_path.with_suffix('.toml').name}, and open a pull request."
    )
    return 0


def _import_valueset(args: argparse.Namespace) -> int:
    try:
        resource = json.loads(args.file.read_text(encoding="utf-8"))
        codeset = codeset_from_valueset(resource, file=str(args.file))
    except (OSError, ValueError) as error:
        problems = error.problems if isinstance(error, CodeSetError) else ()
        for problem in problems:
            _err(str(problem))
        if not problems:
            _err(f"{args.file}: cannot be read as JSON: {error}")
        return 1
    directory = args.dir or default_codesets_dir()
    name = args.name or codeset.purpose
    existing = [p for p in (directory / f"{name}.toml", directory / f"{name}.csv") if p.exists()]
    if existing and not args.replace:
        _err(f"{existing[0]} exists: add --replace to overwrite that set")
        return 1
    comment = f"Imported from {args.file.name} on {datetime.date.today().isoformat()}."
    write_codeset(codeset, directory, name, comment=comment)
    _out(
        f"wrote {directory / name}.toml and {directory / name}.csv ({len(codeset)} codes); "
        f"check the whole folder with: iris-prompt codesets validate {directory}"
    )
    return 0
