"""The bundled sets reach a non-editable install.

Building a wheel here would need a newer setuptools than the virtual environment has, so this
checks the packaging configuration instead: every file of codesets/ is declared as data for the
folder `default_codesets_dir()` searches after the source checkout. (A wheel built from this
configuration installs them under <prefix>/share/iris-prompt/codesets, where a non-editable
install finds and validates them.)"""

import sys
import tomllib
from pathlib import Path

import pytest

import iris_prompt.codesets.files as codesets_module
from iris_prompt.codesets.files import default_codesets_dir

PROJECT = Path(__file__).resolve().parents[3]


def test_every_codeset_file_is_packaged_as_data() -> None:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    data_files = config["tool"]["setuptools"]["data-files"]
    patterns = data_files["share/iris-prompt/codesets"]
    packaged = {path for pattern in patterns for path in PROJECT.glob(pattern)}
    assert packaged == {p for p in (PROJECT / "codesets").iterdir() if p.is_file()}


def test_an_installed_copy_is_found_when_there_is_no_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "share" / "iris-prompt" / "codesets"
    installed.mkdir(parents=True)
    for path in default_codesets_dir().iterdir():
        (installed / path.name).write_bytes(path.read_bytes())
    fake_module = tmp_path / "site-packages" / "iris_prompt" / "codesets" / "files.py"
    monkeypatch.setattr(codesets_module, "__file__", str(fake_module))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert default_codesets_dir() == installed
