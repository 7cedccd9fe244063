"""Shared by the household tests (`test_household_members.py`, `test_household_flags.py`): the
day of the call, and the current members of the patient's Groups."""

import datetime
from typing import Any

from iris_prompt.engine.membership import MEMBER, group_members

TODAY = datetime.date(2026, 3, 1)


def group_member_ids(
    groups: list[dict[str, Any]], patient_id: str, today: datetime.date
) -> list[str]:
    """The other current members (not those who left) of the patient's Groups."""
    members = group_members(groups, patient_id, today)
    return [pid for pid, standing in members.items() if standing == MEMBER]
