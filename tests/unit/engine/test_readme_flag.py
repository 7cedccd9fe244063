"""The README's MAPPA flag example is valid FHIR and reads as the profile says."""

import datetime
import json
import re
from pathlib import Path

from fhir.resources.R4B.flag import Flag

from iris_prompt.engine.risk_flags import MappaRisk, mappa_risk

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_flag_example() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### The MAPPA risk flag") :]
    match = re.search(r"```json\n(.*?)```", section, re.S)
    assert match, "the README shows a complete example Flag"
    example = json.loads(match.group(1))
    Flag.model_validate(example)
    risk = mappa_risk(example, datetime.date(2026, 11, 26))
    assert risk == MappaRisk((("known-adult", "very-high"), ("children", "medium")))
    assert risk.critical
    assert mappa_risk(example, datetime.date(2027, 6, 2)) is None  # after period.end
