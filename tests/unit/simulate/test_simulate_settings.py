"""The simulation reads the deployment's settings as the service does, so it decides as the
service decides; settings it cannot use are refused before anything runs."""

import datetime
import json
from pathlib import Path

import pytest

from iris_prompt.cli import main
from iris_prompt.codesets.files import default_codesets_dir, load_codesets
from iris_prompt.codesets.live import SERVICE_CHECKS, CodeSetRegistry
from iris_prompt.engine.record import read_record
from iris_prompt.engine.rules import decide
from iris_prompt.engine.service import PRACTICE_TIME_ZONE, Engine
from iris_prompt.settings import Settings
from iris_prompt.simulate.cli import simulate
from tests.support.records import (
    ENQUIRY_MADE,
    VICTIM_OF_DOMESTIC_ABUSE,
    observation,
    patient,
)
from tests.unit.simulate.conftest import AS_OF, BUNDLES

pytestmark = pytest.mark.slow

# Abuse recorded long ago, and a routine enquiry recorded 40 days before the simulated visit.
RECORD = [
    patient("p1", "1990-01-01"),
    observation(VICTIM_OF_DOMESTIC_ABUSE, "2015-06-01", rid="abuse"),
    observation(ENQUIRY_MADE, (AS_OF - datetime.timedelta(days=40)).isoformat(), rid="asked"),
]


def test_the_known_abuse_enquiry_window_is_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_KNOWN_ABUSE_ENQUIRY_WINDOW_DAYS", "30")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    bundle["entry"] = [{"resource": r} for r in RECORD]
    (tmp_path / "p1.json").write_text(json.dumps(bundle), encoding="utf-8")

    # What the service decides for this record, with the rule settings it builds itself.
    service = Engine.from_settings(
        CodeSetRegistry(default_codesets_dir(), checks=SERVICE_CHECKS), Settings(local_mode=True)
    )
    sets = load_codesets(default_codesets_dir())
    now = datetime.datetime.combine(AS_OF, datetime.time(12), tzinfo=PRACTICE_TIME_ZONE)
    decision = decide(
        read_record(RECORD, sets),
        sets,
        now=now,
        household=None,
        settings=service.rules,
        user_type="Practitioner",
    )
    assert decision.known_abuse and decision.suppressed_by is None  # 40 days > 30

    report = simulate(tmp_path, as_of=AS_OF, workers=1)
    assert (report.new.known_abuse, report.new.suppressed) == (1, 0)


def test_settings_it_cannot_use_are_refused_before_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_PORT", "70000")
    assert main(["simulate", str(BUNDLES), "--as-of", "2026-12-01", "--workers", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("iris-prompt simulate: the settings are refused: IRIS_PORT: ")
    assert "Traceback" not in err and "70000" not in err
