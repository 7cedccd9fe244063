"""The simulation reads the deployment's settings as the service does, so it decides as the
service decides."""

import datetime
import json
from pathlib import Path

import pytest

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
from tests.unit.simulate.conftest import AS_OF

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
