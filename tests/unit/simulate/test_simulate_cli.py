"""`iris-prompt simulate`, as a lead runs it."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from iris_prompt.cli import main
from iris_prompt.simulate.cli import Progress
from tests.unit.simulate.conftest import BUNDLES

pytestmark = pytest.mark.slow

ARGS = [str(BUNDLES), "--as-of", "2026-12-01", "--workers", "1"]


def test_the_table_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *ARGS]) == 0
    out, err = capsys.readouterr()
    assert "Enquiry prompt" in out and "54.5%" in out
    assert "36 records in" in err and "per second" in err


def test_json_for_machines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *ARGS, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["enquiry_prompt"]["count"] == 18


def test_csv_for_machines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *ARGS, "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["section", "item", "system", "code", "term", "count", "percent"]
    assert ["summary", "mappa_household_card", "", "", "", "2", "6.1"] in rows


def test_html_beside_the_table(
    tmp_path: Path, old_codesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert main(["simulate", *ARGS, "--compare", str(old_codesets), "--html", str(page)]) == 0
    assert "<svg" in page.read_text(encoding="utf-8")
    out, err = capsys.readouterr()
    assert "Change in who gets an enquiry prompt" in out and f"wrote {page}" in err


@pytest.mark.parametrize("where", ["missing/report.html", "a-folder"])
def test_an_html_report_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-folder").mkdir()
    page = tmp_path / where
    assert main(["simulate", *ARGS, "--html", str(page)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # refused before the run: no report
    assert err.startswith(f"iris-prompt simulate: --html {page}: ") and "records in" not in err
    assert not (tmp_path / "missing").exists()


def test_unusable_code_sets_stop_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "trigger.toml").write_text("id = 'x'\n")
    assert main(["simulate", *ARGS, "--codesets", str(tmp_path)]) == 1
    assert "problem" in capsys.readouterr().err


def test_a_missing_population_stops_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(tmp_path / "nowhere")]) == 1
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [["--as-of", "1 April"], ["--json", "--csv"], ["--workers", "0"], ["--workers", "\u00b9"]],
)
def test_bad_arguments_are_refused(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["simulate", str(BUNDLES), *extra])
    assert stopped.value.code == 2


def test_the_installed_command_runs_on_two_processes(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "iris_prompt.cli",
            "simulate",
            str(BUNDLES),
            "--as-of",
            "2026-12-01",
            "--workers",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["enquiry_prompt"]["count"] == 18
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_waits_then_draws_then_clears() -> None:
    now = [0.0]
    stream = Terminal()
    bar = Progress(10, stream, delay=2.0, clock=lambda: now[0], width=10)
    bar(1)
    assert stream.getvalue() == ""  # quick runs stay quiet
    now[0] = 2.5
    bar(5)
    assert stream.getvalue() == "\r[#####.....]  5/10 patients  50%  2.5 s"
    now[0] = 2.55
    bar(6)  # too soon to redraw
    assert stream.getvalue().count("\r") == 1
    bar(10)  # the last one is always drawn
    assert stream.getvalue().endswith("[##########] 10/10 patients 100%  2.5 s")
    bar.finish()
    assert stream.getvalue().endswith("\r")


def test_no_progress_bar_off_a_terminal() -> None:
    stream = io.StringIO()
    bar = Progress(10, stream, delay=0.0)
    bar(5)
    bar.finish()
    assert stream.getvalue() == ""
