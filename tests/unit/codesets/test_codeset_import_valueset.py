"""`iris-prompt codesets import valueset`: sets back from ValueSets, all or nothing, and only into
a folder the service would load (the same trial copy and checks as `import csv`)."""

import copy
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from iris_prompt.cli import main
from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.codesets.files import default_codesets_dir, load_codesets

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(default_codesets_dir(), tmp_path / "codesets"))


def line_of(members: Path, code: str) -> int:
    lines = members.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if f",{code}," in line)


def test_export_then_import_through_the_command(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "valuesets"
    assert main(["codesets", "export", str(folder), "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "ValueSet-iris-prompt-known-abuse.json",
        "ValueSet-iris-prompt-recording.json",
        "ValueSet-iris-prompt-trigger.json",
    ]
    rebuilt = tmp_path / "rebuilt"
    command = ["codesets", "import", "valueset", *(str(out / f) for f in files)]
    assert main([*command, "--dir", str(rebuilt)]) == 0
    for name in ("trigger", "recording", "known-abuse"):
        assert (rebuilt / f"{name}.csv").read_bytes() == (folder / f"{name}.csv").read_bytes()
    assert load_codesets(rebuilt) == load_codesets(folder)
    capsys.readouterr()
    again = ["codesets", "import", "valueset", str(out / files[0]), "--dir", str(rebuilt)]
    assert main(again) == 1
    assert "--replace" in capsys.readouterr().err
    assert main([*again, "--replace"]) == 0


def exported_trigger(folder: Path, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """The folder's trigger set exported as a ValueSet: its file and its JSON, to edit."""
    out = tmp_path / "valuesets"
    assert main(["codesets", "export", str(folder), "--out", str(out)]) == 0
    file = out / "ValueSet-iris-prompt-trigger.json"
    return file, json.loads(file.read_text(encoding="utf-8"))


def test_importing_a_valueset_the_service_could_not_load_changes_nothing(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trigger that is also a known-abuse code, and one that is also a recording code: the
    folder would fail at start-up, so nothing is written and each conflict is named."""
    file, resource = exported_trigger(folder, tmp_path)
    snomed = resource["compose"]["include"][0]  # type: ignore[index]
    assert snomed["system"] == SNOMED_CT
    for code, term in (
        ("895141000000105", "Police domestic incident report received"),
        ("700410005", "Routine enquiry about domestic abuse"),
    ):
        extension = copy.deepcopy(snomed["concept"][0]["extension"])
        snomed["concept"].append({"code": code, "display": term, "extension": extension})
    file.write_text(json.dumps(resource), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()
    command = ["codesets", "import", "valueset", str(file), "--dir", str(folder), "--replace"]
    assert main(command) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{file}: SNOMED CT 895141000000105 is also in ")
    line = line_of(folder / "known-abuse.csv", "895141000000105")
    assert f"{folder / 'known-abuse.csv'} (line {line}, category 'police-report')" in err[0]
    assert err[1].startswith(f"{file}: SNOMED CT 700410005 is also in ")
    assert (
        f"{folder / 'recording.csv'} (line {line_of(folder / 'recording.csv', '700410005')}, "
        in err[1]
    )
    assert err[2].startswith("nothing imported") and len(err) == 3
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert main(["codesets", "validate", str(folder)]) == 0


def test_importing_a_second_set_of_one_purpose_changes_nothing(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, _ = exported_trigger(folder, tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    capsys.readouterr()
    command = ["codesets", "import", "valueset", str(file), "--dir", str(folder)]
    assert main([*command, "--name", "trigger2"]) == 1
    err = capsys.readouterr().err
    assert "2 sets have purpose 'trigger'; keep one" in err
    assert str(tmp_path / "valuesets") not in err.replace(str(file), "")  # no trial copy named
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize("name", ["../x", "sub/trigger", "ABSOLUTE", "..", "Trigger", "a b", ""])
def test_import_valueset_refuses_a_name_that_is_not_a_plain_set_name(
    name: str, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, _ = exported_trigger(folder, tmp_path)
    inside = tmp_path / "inside" / "codesets"
    shutil.copytree(folder, inside)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    command = ["codesets", "import", "valueset", str(file), "--dir", str(inside), "--replace"]
    name = str(tmp_path / "x") if name == "ABSOLUTE" else name
    assert main([*command, "--name", name]) == 2
    assert "--name" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_import_valueset_into_a_new_folder_needs_every_set(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One set alone is not a folder the service loads; the three together are."""
    out = tmp_path / "valuesets"
    assert main(["codesets", "export", str(folder), "--out", str(out)]) == 0
    files = [str(p) for p in sorted(out.iterdir())]
    rebuilt = tmp_path / "rebuilt"
    capsys.readouterr()
    assert main(["codesets", "import", "valueset", files[0], "--dir", str(rebuilt)]) == 1
    said = capsys.readouterr().err
    assert "no code set has purpose 'recording'" in said
    assert "a new folder needs every set: import the trigger, recording, known-abuse" in said
    assert not rebuilt.exists()
    # A file where the folder should be: said, not a traceback, and the file is untouched.
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("mine", encoding="utf-8")
    for kind in (["valueset", *files], ["csv", files[0], "--set", "trigger"]):
        argv = ["codesets", "import", *kind, "--dir", str(a_file)]
        if kind[0] == "csv":
            argv += ["--category", "depression", "--source", "a list"]
        assert main(argv) == 2
        assert capsys.readouterr().err.startswith(f"--dir {a_file}: is a file, not a folder")
    assert a_file.read_text(encoding="utf-8") == "mine"
    twice = ["codesets", "import", "valueset", *files, files[0], "--dir", str(rebuilt)]
    assert main(twice) == 1
    assert f"{files[0]} is also written as 'known-abuse'" in capsys.readouterr().err
    assert not rebuilt.exists()
    assert main(["codesets", "import", "valueset", *files, "--dir", str(rebuilt)]) == 0
    assert load_codesets(rebuilt) == load_codesets(folder)
    assert sorted(p.name for p in rebuilt.iterdir() if p.name.startswith(".")) == []
    assert main(["codesets", "import", "valueset", *files, "--name", "x", "--dir", "d"]) == 2


def test_an_import_that_cannot_write_every_file_changes_none(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A set's manifest and members go in together or not at all: a new manifest beside the old
    members would go live, on the next reload, as a version that does not match its codes."""
    file, valueset = exported_trigger(folder, tmp_path)
    valueset["version"] = "9.0.0"
    file.write_text(json.dumps(valueset), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    (folder / ".trigger.csv.importing").mkdir()  # the members file cannot be staged
    command = ["codesets", "import", "valueset", str(file), "--replace", "--dir", str(folder)]
    assert main(command) == 1
    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith(f"{folder}: cannot be written (") and len(said) == 2
    assert said[1].startswith("nothing imported")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [
        ".trigger.csv.importing"
    ]


def failing_renames(monkeypatch: pytest.MonkeyPatch, *, from_call: int, then: int) -> None:
    """`os.replace` fails (an I/O error) on calls `from_call` to `then` (counted from 1; 0 for
    every call after): the failure a disk or network folder can give part way through."""
    calls = 0
    rename = os.replace

    def replace(source: Any, target: Any) -> None:
        nonlocal calls
        calls += 1
        if from_call <= calls and (then == 0 or calls <= then):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        rename(source, target)

    monkeypatch.setattr(os, "replace", replace)


def a_new_trigger_version(folder: Path, tmp_path: Path) -> list[str]:
    """The command importing the folder's trigger set as version 9.0.0 (both its files change)."""
    file, valueset = exported_trigger(folder, tmp_path)
    valueset["version"] = "9.0.0"
    file.write_text(json.dumps(valueset), encoding="utf-8")
    return ["codesets", "import", "valueset", str(file), "--replace", "--dir", str(folder)]


def test_a_rename_that_fails_part_way_puts_back_the_files_already_renamed(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The manifest is renamed into place, then the members' rename fails: the old manifest is
    put back, so the folder is as it was, as the message says, and no file is left over."""
    command = a_new_trigger_version(folder, tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    failing_renames(monkeypatch, from_call=2, then=2)
    assert main(command) == 1
    said = capsys.readouterr().err.splitlines()
    assert said == [
        f"{folder}: cannot be written (Input/output error); nothing in it was changed",
        "nothing imported: fix the problems above first",
    ]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_rename_that_fails_part_way_and_cannot_be_undone_says_what_changed(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Putting the old manifest back fails too: the message must not say nothing changed. It
    names the file changed, the one that was not, and where the old content is."""
    command = a_new_trigger_version(folder, tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    failing_renames(monkeypatch, from_call=2, then=0)
    assert main(command) == 1
    said = capsys.readouterr().err.splitlines()
    assert said == [
        f"{folder}: cannot be written (Input/output error) part way: trigger.toml was changed "
        "and could not be put back (its old content is in .trigger.toml.before-import); "
        "trigger.csv was not changed. Import again, or put the old content back, before the code "
        "sets are reloaded",
        "imported in part: finish or undo it as said above",
    ]
    assert (folder / "trigger.toml").read_bytes() != before["trigger.toml"]
    assert (folder / ".trigger.toml.before-import").read_bytes() == before["trigger.toml"]
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "trigger.toml"} == {
        **{n: b for n, b in before.items() if n != "trigger.toml"},
        ".trigger.toml.before-import": before["trigger.toml"],
    }


def test_a_rename_into_a_new_folder_that_fails_part_way_leaves_it_empty(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files that were not there before are taken away again."""
    out = tmp_path / "valuesets"
    assert main(["codesets", "export", str(folder), "--out", str(out)]) == 0
    rebuilt = tmp_path / "rebuilt"
    failing_renames(monkeypatch, from_call=3, then=3)
    command = ["codesets", "import", "valueset", *map(str, sorted(out.iterdir()))]
    assert main([*command, "--dir", str(rebuilt)]) == 1
    said = capsys.readouterr().err
    assert f"{rebuilt}: cannot be written (Input/output error); nothing in it was changed" in said
    assert list(rebuilt.iterdir()) == []
