"""`iris-prompt codesets`: validate, diff (folders and git revisions), stats, import, export."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iris_prompt.cli import main
from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.codesets.files import default_codesets_dir, load_codesets

pytestmark = pytest.mark.slow


def copy_bundled(target: Path) -> Path:
    """A copy of the bundled sets with every version 1.0.0, whatever the bundled ones are."""
    shutil.copytree(default_codesets_dir(), target)
    for manifest in target.glob("*.toml"):
        text = re.sub(r'(?m)^version = ".*"$', 'version = "1.0.0"', manifest.read_text("utf-8"))
        manifest.write_text(text, encoding="utf-8")
    return target


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_bundled(tmp_path / "codesets")


@pytest.fixture
def unedited(tmp_path: Path) -> Path:
    """A second, untouched copy to compare an edit with."""
    return copy_bundled(tmp_path / "unedited")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def real_edit(folder: Path) -> None:
    """What a lead might do: add a sourced code, drop one, fix a term, widen a window."""
    source = "opensafely/lockdown-and-vulnerable-groups codelists/"
    source += "user-hjforbes-anxiety-symptoms-and-diagnoses.csv @a7bd5e7e"
    with (folder / "trigger.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"SNOMED CT,25501002,Social phobia,anxiety,{source},\n")
    edit(folder / "trigger.csv", "Read v2,1B1V.,C/O - panic attack,anxiety,", "REMOVED,")
    text = (folder / "trigger.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("REMOVED,")]
    (folder / "trigger.csv").write_text("".join(lines), encoding="utf-8")
    edit(folder / "trigger.csv", ",Cannot sleep - insomnia,", ",Cannot sleep - insomnia (edited),")
    edit(folder / "trigger.toml", 'version = "1.0.0"', 'version = "1.1.0"')
    sleep = 'title = "Sleep disorders (insomnia)"\nlookback = '
    edit(folder / "trigger.toml", sleep + '"1 year"', sleep + '"18 months"')


def test_validate_a_good_folder(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codesets", "validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "valid: trigger 1.0.0 (546 codes)" in out


def test_validate_a_broken_folder(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(folder / "trigger.csv", "SNOMED CT,35489007,", "SNOMED CT,35489008,")
    assert main(["codesets", "validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "trigger.csv, line" in err and "check digit" in err and "not usable" in err


def test_validate_applies_the_service_checks(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        folder / "recording.csv",
        "SNOMED CT,700411009,Routine enquiry about domestic abuse declined,enquiry-declined,",
        "SNOMED CT,700411009,Routine enquiry about domestic abuse declined,enquiry-made,",
    )
    assert main(["codesets", "validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "recording.csv, line" in err and "column 4 (category)" in err
    assert "the recording template writes SNOMED CT 700411009" in err and "not usable" in err


def test_diff_of_a_real_edit_as_text(
    folder: Path, unedited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_edit(folder)
    assert main(["codesets", "diff", str(unedited), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "trigger (1.0.0 -> 1.1.0)" in out
    assert "  version: 1.0.0 -> 1.1.0" in out
    assert "  category sleep: lookback 1 year -> 18 months" in out
    assert "    + SNOMED CT 25501002 Social phobia" in out
    assert "    - Read v2 1B1V. C/O - panic attack" in out
    assert "term 'Cannot sleep - insomnia' -> 'Cannot sleep - insomnia (edited)'" in out
    assert "  total: 1 added, 1 removed, 1 changed" in out
    assert "recording (1.0.0 -> 1.0.0)\n  no differences" in out


def test_diff_as_json(folder: Path, unedited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real_edit(folder)
    assert main(["codesets", "diff", "--json", str(unedited), str(folder)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is True
    trigger = result["sets"][0]
    assert trigger["purpose"] == "trigger" and trigger["newVersion"] == "1.1.0"
    assert [m["code"] for m in trigger["added"]] == ["25501002"]
    assert trigger["added"][0]["system"] == SNOMED_CT
    assert [m["code"] for m in trigger["removed"]] == ["1B1V."]
    assert trigger["changed"][0]["new"]["term"] == "Cannot sleep - insomnia (edited)"
    assert all(not s["added"] and not s["removed"] for s in result["sets"][1:])


def test_diff_warns_of_changed_content_under_an_unchanged_version(
    folder: Path, unedited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(folder / "known-abuse.csv", "At low risk of domestic violence,at-risk", "Z,at-risk")
    edit(folder / "recording.toml", 'lookback = "whole record"', 'lookback = "5 years"')
    edit(folder / "trigger.toml", "Depression coded in the last", "Depression recorded in the last")
    assert main(["codesets", "diff", str(unedited), str(folder)]) == 0
    out = capsys.readouterr().out
    for purpose in ("recording", "known-abuse"):
        assert (
            f"  WARNING: {purpose}: the codes or categories changed but the version is still 1.0.0"
        ) in out
    assert "WARNING: trigger" not in out  # wording only: no behaviour changed
    assert main(["codesets", "diff", "--json", str(unedited), str(folder)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["warnings"]) == 2
    assert [len(s["warnings"]) for s in result["sets"]] == [0, 1, 1]


def test_diff_does_not_warn_when_the_version_was_raised(
    folder: Path, unedited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_edit(folder)
    assert main(["codesets", "diff", "--json", str(unedited), str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def test_diff_between_git_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    copy_bundled(repo / "codesets")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    real_edit(repo / "codesets")
    git(repo, "commit", "-qam", "second")
    monkeypatch.chdir(repo)
    assert main(["codesets", "diff", "HEAD~1", "HEAD"]) == 0
    assert "trigger (1.0.0 -> 1.1.0)" in capsys.readouterr().out
    assert main(["codesets", "diff", "HEAD~1:codesets", "codesets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    with pytest.raises(SystemExit, match="neither a folder nor a git revision"):
        main(["codesets", "diff", "no-such-revision", "HEAD"])


def test_diff_of_git_revisions_from_any_folder_of_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "notes.md").write_text("notes\n", encoding="utf-8")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "before the code sets")
    copy_bundled(repo / "codesets")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    real_edit(repo / "codesets")
    git(repo, "commit", "-qam", "second")
    for folder in (repo / "docs", repo / "codesets"):
        monkeypatch.chdir(folder)
        assert main(["codesets", "diff", "HEAD~1", "HEAD"]) == 0
        assert "trigger (1.0.0 -> 1.1.0)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="revision 'HEAD~2' has no folder 'codesets'"):
        main(["codesets", "diff", "HEAD~2", "HEAD"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # whatever holds tmp_path
    with pytest.raises(SystemExit, match="not in a git repository"):
        main(["codesets", "diff", "HEAD~1", "HEAD"])


def test_stats(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codesets", "stats", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    trigger = result["trigger"]
    assert trigger["total"] == 546
    assert sum(trigger["bySystem"].values()) == 546
    assert trigger["byCategory"]["ptsd"] == {"CTV3": 4, "Read v2": 1, "SNOMED CT": 3}
    assert main(["codesets", "stats", str(folder)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^  ptsd +5 years +3 +1 +4 +8$", text, re.M)
    # Columns line up whatever the longest category name.
    header = next(line for line in text.splitlines() if line.startswith("  category"))
    long_row = next(line for line in text.splitlines() if "referral-child-safeguarding" in line)
    assert long_row.index("whole record") == header.index("lookback")


def test_import_an_opencodelists_csv(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codelist = tmp_path / "opencodelists.csv"
    codelist.write_text(
        "code,term\n25501002,Social phobia\n21897009,Generalized anxiety disorder\n\n",
        encoding="utf-8",
    )
    source = "opensafely/lockdown-and-vulnerable-groups codelists/x.csv @a7bd5e7e"
    command = ["codesets", "import", "csv", str(codelist), "--set", "trigger"]
    command += ["--category", "anxiety", "--source", source, "--dir", str(folder)]
    assert main(command) == 0
    assert "added 1 code(s)" in capsys.readouterr().out  # 21897009 was already there
    member = load_codesets(folder).trigger.lookup(SNOMED_CT, "25501002")
    assert (member.term, member.category, member.source) == ("Social phobia", "anxiety", source)


def test_import_that_would_break_the_set_changes_nothing(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (folder / "trigger.csv").read_bytes()
    codelist = tmp_path / "list.csv"
    codelist.write_text("id,name\n35489008,Typo\n895141000000105,Police report\n", "utf-8")
    command = ["codesets", "import", "csv", str(codelist), "--set", "trigger", "--category"]
    command += ["anxiety", "--source", "s", "--dir", str(folder)]
    assert main([*command, "--code-column", "id", "--term-column", "name"]) == 1
    err = capsys.readouterr().err.splitlines()
    # Each problem names the lead's own list, its line and column, never a temporary copy.
    assert err[0].startswith(f"{codelist}, line 2, column 1 (id): '35489008' fails the SNOMED CT")
    assert err[1].startswith(f"{codelist}, line 3, column 1 (id): SNOMED CT 895141000000105 is")
    assert f"also in {folder / 'known-abuse.csv'} (line " in err[1] and "already known" in err[1]
    assert err[2].startswith("nothing imported") and len(err) == 3
    assert (folder / "trigger.csv").read_bytes() == before
    assert main(command) == 1
    assert "no column 'code'" in capsys.readouterr().err


def test_import_problems_with_values_from_the_command_name_the_option(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codelist = tmp_path / "list.csv"
    codelist.write_text("code,term\n\n25501002,Social phobia\n", "utf-8")
    command = ["codesets", "import", "csv", str(codelist), "--set", "trigger"]
    assert main([*command, "--category", "phobia", "--source", "s", "--dir", str(folder)]) == 1
    (problem, _) = capsys.readouterr().err.splitlines()
    assert problem.startswith(f"{codelist}, option --category: category 'phobia' is not")


def test_importing_a_code_another_set_has_names_the_list_in_that_problem(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codelist = tmp_path / "list.csv"
    codelist.write_text("code,term\n35489007,Depressive disorder\n", "utf-8")
    command = ["codesets", "import", "csv", str(codelist), "--set", "known-abuse"]
    assert main([*command, "--category", "victim", "--source", "s", "--dir", str(folder)]) == 1
    problem = capsys.readouterr().err.splitlines()[0]
    assert problem.startswith(f"{folder / 'trigger.csv'}, line ")
    assert f"also in {codelist} (line 2, category 'victim')" in problem


def test_export_one_set_to_stdout(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codesets", "export", str(folder), "--set", "recording"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "iris-prompt-recording"
    assert main(["codesets", "export", str(folder)]) == 2


def test_the_installed_command_exits_with_the_status() -> None:
    broken = subprocess.run(
        [sys.executable, "-m", "iris_prompt.cli", "codesets", "validate", "/nonexistent"],
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 1
    assert "folder not found" in broken.stderr


def test_diff_shows_a_changed_minimum_number_of_entries(
    folder: Path, unedited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for 2 urinary tract infections instead of 3 changes who is prompted: the diff
    says so and warns while the version is unchanged."""
    edit(folder / "trigger.toml", "min_entries = 3", "min_entries = 2")
    assert main(["codesets", "diff", str(unedited), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "  category uti: min_entries 3 -> 2" in out
    assert "WARNING: trigger: the codes or categories changed" in out


def test_import_into_a_category_the_set_lacks_is_refused_even_if_nothing_is_new(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (folder / "trigger.csv").read_bytes()
    codelist = tmp_path / "list.csv"
    codelist.write_text("code,term\n48694002,Anxiety\n", "utf-8")
    command = ["codesets", "import", "csv", str(codelist), "--set", "trigger"]
    assert main([*command, "--category", "anxeity", "--source", "s", "--dir", str(folder)]) == 1
    problem, last = capsys.readouterr().err.splitlines()
    assert problem.startswith(
        f"{codelist}, option --category: category 'anxeity' is not in the manifest (known: "
    )
    assert last.startswith("nothing imported")
    assert (folder / "trigger.csv").read_bytes() == before


def test_import_names_codes_left_in_another_category(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lead importing an anxiety list must learn that mixed anxiety and depressive disorder
    stays under depression, not read "already there" and think it is now an anxiety code."""
    before = (folder / "trigger.csv").read_text("utf-8")
    line = next(n for n, text in enumerate(before.splitlines(), 1) if ",231504006," in text)
    codelist = tmp_path / "list.csv"
    codelist.write_text(
        "code,term\n21897009,Generalized anxiety disorder\n"
        "231504006,Mixed anxiety and depressive disorder\n",
        "utf-8",
    )
    command = ["codesets", "import", "csv", str(codelist), "--set", "trigger"]
    assert main([*command, "--category", "anxiety", "--source", "s", "--dir", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{codelist}, line 3, column 1 (code): warning: SNOMED CT 231504006 is already in "
        f"category 'depression' ({folder / 'trigger.csv'}, line {line}), so it was not added "
        "to 'anxiety': a code belongs to one category; move its row by hand if it should"
    ]
    assert "added 0 code(s)" in out
    assert "1 already in category anxiety, 1 in another category (above)" in out
    assert load_codesets(folder).trigger.lookup(SNOMED_CT, "231504006").category == "depression"


def test_export_to_a_folder_that_cannot_be_made_is_one_line_not_a_traceback(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "valuesets"
    taken.write_text("a file, not a folder", "utf-8")
    for out in (taken, taken / "inside"):
        assert main(["codesets", "export", str(folder), "--out", str(out)]) == 2
        (said,) = capsys.readouterr().err.splitlines()
        assert said.startswith(f"--out {out}: cannot be written (")


def test_import_csv_into_a_folder_it_cannot_write_is_one_line_not_a_traceback(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (folder / "trigger.csv").read_bytes()
    (folder / ".trigger.csv.importing").mkdir()  # the new members file cannot be staged
    codelist = tmp_path / "list.csv"
    codelist.write_text("code,term\n25501002,Social phobia\n", "utf-8")
    command = ["codesets", "import", "csv", str(codelist), "--set", "trigger"]
    assert main([*command, "--category", "anxiety", "--source", "s", "--dir", str(folder)]) == 1
    problem, last = capsys.readouterr().err.splitlines()
    assert problem.startswith(f"{folder}: cannot be written (") and last.startswith("nothing")
    assert (folder / "trigger.csv").read_bytes() == before
