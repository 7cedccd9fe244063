"""Shared by the rules' tests (`test_rules_*.py`): the fixed clock, the adult patient, the
household members, and `run`, which reads a record and applies `decide` to it."""

import datetime

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import Household, HouseholdMember
from iris_prompt.engine.record import read_record
from iris_prompt.engine.risk_flags import MappaRisk
from iris_prompt.engine.rules import Decision, RuleSettings, decide
from tests.support.records import DEPRESSIVE_DISORDER, condition, patient

NOW = datetime.datetime(2026, 3, 1, 10, 30, tzinfo=datetime.UTC)
TODAY = NOW.date()
ADULT = patient("p1", "1991-06-01")  # 34 today


def ago(days: int) -> str:
    return (TODAY - datetime.timedelta(days=days)).isoformat()


def run(
    sets: CodeSets,
    *resources: dict,
    person: dict | None = ADULT,
    household: Household | None = None,
    user_type: str = "Practitioner",
    settings: RuleSettings | None = None,
) -> Decision:
    record = read_record([r for r in (person, *resources) if r is not None], sets)
    return decide(
        record,
        sets,
        now=NOW,
        household=household,
        settings=settings or RuleSettings(),
        user_type=user_type,
    )


RECENT_DEPRESSION = condition(DEPRESSIVE_DISORDER, ago(30), rid="dep")
PARTNER_WITH_FLAG = HouseholdMember(
    "partner", 33, MappaRisk((("known-adult", "very-high"), ("children", "medium")))
)
SON = HouseholdMember("son", 8, None)
