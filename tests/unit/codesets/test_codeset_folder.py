"""A folder of sets: rules between sets, missing files, and one error listing every problem."""

import shutil
from pathlib import Path

import pytest

from iris_prompt.codesets.files import (
    CodeSetError,
    check_folder,
    default_codesets_dir,
    load_codesets,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "codesets"
    shutil.copytree(default_codesets_dir(), target)
    return target


def append(path: Path, line: str) -> int:
    """Append a CSV line; return its line number."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def messages(folder: Path) -> list[str]:
    return [str(p) for p in check_folder(folder).errors]


def test_a_copy_of_the_bundled_folder_is_clean(folder: Path) -> None:
    assert check_folder(folder).problems == []


def test_a_trigger_that_also_means_known_abuse_is_refused(folder: Path) -> None:
    line = append(
        folder / "trigger.csv",
        "SNOMED CT,895141000000105,Police domestic incident report received,depression,t,",
    )
    (message,) = messages(folder)
    assert message.startswith(f"{folder / 'trigger.csv'}, line {line}, column 2 (code):")
    assert "also in" in message and "known-abuse.csv" in message
    assert "already known" in message


def test_a_recording_code_that_is_also_a_trigger_is_refused(folder: Path) -> None:
    append(folder / "trigger.csv", "Read v2,9r0..,Routine enquiry about domestic abuse,anxiety,t,")
    (message,) = messages(folder)
    assert "recording.csv" in message and "fire the prompt again" in message


def test_recording_and_known_abuse_may_share_a_code(folder: Path) -> None:
    sets = load_codesets(folder)
    assert sets.recording.lookup("http://snomed.info/sct", "879911000000102") is not None
    assert sets.known_abuse.lookup("http://snomed.info/sct", "879911000000102") is not None


def test_each_purpose_exactly_once(folder: Path) -> None:
    shutil.copy(folder / "trigger.toml", folder / "trigger-copy.toml")
    shutil.copy(folder / "trigger.csv", folder / "trigger-copy.csv")
    found = messages(folder)
    assert any("2 sets have purpose 'trigger'" in m for m in found)
    assert any("id 'iris-prompt-trigger' is also the id of" in m for m in found)


def test_a_missing_set_is_named(folder: Path) -> None:
    (folder / "known-abuse.toml").unlink()
    (folder / "known-abuse.csv").unlink()
    assert messages(folder) == [
        f"{folder}: no code set has purpose 'known-abuse': the service needs one"
    ]


def test_files_without_their_partner(folder: Path) -> None:
    (folder / "recording.csv").rename(folder / "recorded.csv")
    found = messages(folder)
    assert any("recording.toml: its members file recording.csv is missing" in m for m in found)
    assert any("recorded.csv: no manifest recorded.toml" in m for m in found)


def test_text_that_is_not_utf8(folder: Path) -> None:
    (folder / "trigger.csv").write_bytes("system,code\nSNOMED CT,1\xa0".encode("cp1252"))
    assert any("not UTF-8 text" in m for m in messages(folder))


def test_a_byte_order_mark_from_a_spreadsheet_is_fine(folder: Path) -> None:
    path = folder / "trigger.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert check_folder(folder).problems == []


def test_load_raises_one_error_listing_every_problem(folder: Path) -> None:
    append(folder / "trigger.csv", "SNOMED CT,35489008,Depressive disorder,depression,test,")
    append(folder / "known-abuse.csv", "Read v2,14X3.00,History of domestic violence,history,t,")
    with pytest.raises(CodeSetError) as raised:
        load_codesets(folder)
    assert len(raised.value.problems) == 2
    text = str(raised.value)
    assert text.startswith("2 problems in the code sets:\n")
    assert "check digit" in text and "term code" in text


def test_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(CodeSetError, match="folder not found"):
        load_codesets(tmp_path / "nowhere")
