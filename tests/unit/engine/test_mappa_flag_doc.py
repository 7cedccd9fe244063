"""The MAPPA flag example of docs/mappa-flag.md is valid FHIR and reads as the profile says."""

import datetime
import json
import re
from pathlib import Path

from fhir.resources.R4B.flag import Flag

from iris_prompt.engine.risk_flags import MappaRisk, mappa_risk

DOC = Path(__file__).resolve().parents[3] / "docs" / "mappa-flag.md"


def test_the_documented_flag_example_reads_as_the_profile_says() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)```", text, re.S)
    assert match, "docs/mappa-flag.md shows a complete example Flag"
    example = json.loads(match.group(1))
    Flag.model_validate(example)
    risk = mappa_risk(example, datetime.date(2026, 11, 26))
    assert risk == MappaRisk((("known-adult", "very-high"), ("children", "medium")))
    assert risk.critical
    assert mappa_risk(example, datetime.date(2027, 6, 2)) is None  # after period.end
