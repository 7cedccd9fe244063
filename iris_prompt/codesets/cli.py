"""`iris-prompt codesets ...`: the commands ICB safeguarding leads (and CI) use on code sets.

    iris-prompt codesets validate [DIR]            check; exit 0 when usable, 1 when not
    iris-prompt codesets diff OLD NEW [--json]     OLD/NEW: folders or git revisions
    iris-prompt codesets stats [DIR] [--json]      counts by category and system
    iris-prompt codesets export [DIR] --out OUT    each set as a FHIR R4 ValueSet (JSON)
    iris-prompt codesets import csv FILE --set trigger --category anxiety --source "..."
    iris-prompt codesets import valueset FILE...   ValueSets back into NAME.toml + NAME.csv

`validate` and both imports apply the service's own checks (`SERVICE_CHECKS`) on top of the file
rules, so a folder they pass is one the service loads: an import changes a trial copy of the
folder, checks it, and writes nothing unless it passes. `diff`, `stats` and `export` do not, so
they also work on an older version written for an older template.

`add_parser` registers the subcommand on the main parser; `run` carries it out. The FHIR
ValueSet models load only for `export` and `import valueset`, so that the other commands, and
the `iris-prompt` command line as a whole, start without them.
"""

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from iris_prompt.codesets.codes import SYSTEM_NAMES
from iris_prompt.codesets.diff import (
    diff_as_json,
    diff_as_text,
    diff_codesets,
    stats,
    stats_as_text,
)
from iris_prompt.codesets.files import (
    FolderReport,
    check_folder,
    default_codesets_dir,
)
from iris_prompt.codesets.importer import (
    SET_NAME,
    ImportOptions,
    Incoming,
    PartlyWritten,
    import_codelist,
    import_sets,
)
from iris_prompt.codesets.live import SERVICE_CHECKS
from iris_prompt.codesets.model import PURPOSES, CodeSetError
from iris_prompt.urls import CANONICAL_BASE

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
    export.add_argument("--base-url", default=CANONICAL_BASE, help="canonical FHIR base URL")

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
    from_valueset = kinds.add_parser(
        "valueset",
        help="ValueSets exported by this tool",
        description="Write each ValueSet as NAME.toml and NAME.csv, all or none: only if the "
        "folder with them passes the service's checks. A new folder needs all three sets in one "
        "command. --replace does not keep the replaced manifest's comments.",
    )
    from_valueset.add_argument("file", type=Path, nargs="+")
    from_valueset.add_argument("--dir", type=Path, help="folder to write into")
    from_valueset.add_argument(
        "--name",
        help="set name, for one FILE: lower-case letters, digits, hyphens (default: "
        "the set's purpose)",
    )
    from_valueset.add_argument(
        "--replace", action="store_true", help="overwrite a set of that name (not its comments)"
    )


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
    """A folder as given, or the code sets at a git revision extracted to a temporary folder.

    Git runs from the repository's top folder, so a revision works from any folder inside it,
    and `path_in_repo` (or `REV:path`) is always from the top of the repository.
    """
    if Path(spec).is_dir():
        yield Path(spec)
        return
    revision, _, path = spec.partition(":")
    path = path or path_in_repo
    top = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    if top is None:
        raise SystemExit(f"{spec!r} is not a folder, and {Path.cwd()} is not in a git repository")
    root = Path(top.decode().strip())
    if _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}") is None:
        raise SystemExit(f"{spec!r} is neither a folder nor a git revision of {root}")
    if not _git(root, "ls-tree", "-d", revision, "--", path):
        raise SystemExit(
            f"git revision {revision!r} has no folder {path!r}: the code sets were not there "
            "yet, or were in another folder (name it with --path or REVISION:FOLDER)"
        )
    archive = _git(root, "archive", "--format=tar", revision, "--", path)
    if archive is None:  # pragma: no cover - the revision and folder were just found
        raise SystemExit(f"git could not read {path!r} at {revision!r}")
    with tempfile.TemporaryDirectory(prefix="codesets-") as temporary:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(temporary, filter="data")
        yield Path(temporary) / path


def _git(folder: Path, *args: str) -> bytes | None:
    """What a git command prints, run in `folder`; None if git is missing or the command fails."""
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout


def _stats(args: argparse.Namespace) -> int:
    report = _load_or_report(args.dir or default_codesets_dir())
    if report.codesets is None:
        return 1
    result = stats(report.codesets)
    _out(json.dumps(result, indent=2) if args.json else stats_as_text(report.codesets))
    return 0


def _export(args: argparse.Namespace) -> int:
    from iris_prompt.codesets.valueset import codeset_to_valueset

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
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for codeset in chosen:
            target = args.out / f"ValueSet-{codeset.id}.json"
            resource = codeset_to_valueset(codeset, base_url=args.base_url)
            target.write_text(json.dumps(resource, indent=2) + "\n", encoding="utf-8")
            _out(f"wrote {target}")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        _err(f"--out {args.out}: cannot be written ({reason}): give a folder that can be")
        return 2
    return 0


def _import_csv(args: argparse.Namespace) -> int:
    options = ImportOptions(
        purpose=args.set,
        category=args.category,
        source=args.source,
        system=args.system,
        code_column=args.code_column,
        term_column=args.term_column,
        note=args.note,
    )
    directory = args.dir or default_codesets_dir()
    if not _a_folder(directory):
        return 2
    result = import_codelist(directory, args.file, options)
    for problem in [*result.problems, *result.elsewhere]:
        _err(str(problem))
    if result.members_file is None:
        _err(f"nothing imported from {args.file}: fix the problems above first")
        return 1
    elsewhere = f", {len(result.elsewhere)} in another category (above)" if result.elsewhere else ""
    _out(
        f"added {result.added} code(s) to {result.members_file} (category {args.category}); "
        f"{result.skipped} already in category {args.category}{elsewhere}. Now raise 'version' "
        f"and set 'last_reviewed' in {result.members_file.with_suffix('.toml').name}, and open "
        "a pull request."
    )
    return 0


def _a_folder(directory: Path) -> bool:
    """Whether `directory` is a folder or can be made one; said when not."""
    if directory.exists() and not directory.is_dir():
        _err(f"--dir {directory}: is a file, not a folder of code sets")
        return False
    return True


def _import_valueset(args: argparse.Namespace) -> int:
    from iris_prompt.codesets.valueset import codeset_from_valueset

    if args.name is not None and (len(args.file) != 1 or not SET_NAME.fullmatch(args.name)):
        _err(
            f"--name {args.name!r}: give one FILE, and a set name of lower-case letters, digits "
            "and hyphens, such as trigger or known-abuse (the files go into --dir)"
        )
        return 2
    incoming = []
    for file in args.file:
        try:
            resource = json.loads(file.read_text(encoding="utf-8"))
            codeset = codeset_from_valueset(resource, file=str(file))
        except (OSError, ValueError) as error:
            found = error.problems if isinstance(error, CodeSetError) else ()
            for problem in found:
                _err(str(problem))
            if not found:
                _err(f"{file}: cannot be read as JSON: {error}")
            return 1
        incoming.append(Incoming(codeset, args.name or codeset.purpose, file))
    directory = args.dir or default_codesets_dir()
    if not _a_folder(directory):
        return 2
    new_folder = not any(directory.glob("*.toml"))
    problems = import_sets(directory, incoming, replace_existing=args.replace)
    for problem in problems:
        _err(str(problem))
    if problems:
        if any(isinstance(problem, PartlyWritten) for problem in problems):
            _err("imported in part: finish or undo it as said above")
            return 1
        if new_folder and len(incoming) < len(PURPOSES):
            _err(
                f"a new folder needs every set: import the {', '.join(PURPOSES)} ValueSets together"
            )
        _err("nothing imported: fix the problems above first")
        return 1
    for item in incoming:
        _out(
            f"wrote {directory / item.name}.toml and {directory / item.name}.csv "
            f"({len(item.codeset)} codes) from {item.file}"
        )
    return 0
