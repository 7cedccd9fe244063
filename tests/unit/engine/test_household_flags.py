"""MAPPA flags on household members: which Flags are in force (status, period at its
precision, the MAPPA code only), the risk levels they carry and when they are critical,
unreadable or missing levels, several flags on one member, and flags attached to their member
only. Who is in the household is `test_household_members.py`."""

import datetime
from typing import Any

import pytest

from iris_prompt.engine.household import household_from
from iris_prompt.engine.risk_flags import MappaRisk, mappa_risk, risk_extension, strongest
from tests.support.records import household_group, mappa_flag, patient
from tests.unit.engine.household_support import TODAY

# --- MAPPA flags -------------------------------------------------------------------------


def test_the_seed_case_flag() -> None:
    flag = mappa_flag("partner", risks={"children": "medium", "known-adult": "very-high"})
    risk = mappa_risk(flag, TODAY)
    assert risk == MappaRisk((("known-adult", "very-high"), ("children", "medium")))
    assert risk is not None and risk.critical


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"status": "inactive"}, "inactive"),
        ({"status": "entered-in-error"}, "entered in error"),
        ({"end": "2026-02-28"}, "period ended yesterday"),
        ({"start": "2026-03-02"}, "not started yet"),
    ],
)
def test_flags_not_in_force_show_nothing(changes: dict, why: str) -> None:
    assert mappa_risk(mappa_flag("x", **changes), TODAY) is None, why


def test_a_flag_ending_today_is_still_in_force() -> None:
    assert mappa_risk(mappa_flag("x", end="2026-03-01"), TODAY) == MappaRisk(())


@pytest.mark.parametrize(
    ("end", "in_force"),
    [
        ("2026", True),  # an end is inclusive at its precision: all of 2026
        ("2026-03", True),
        ("2026-02", False),
        ("2025", False),
        ("2026-03-01T09:00:00Z", False),  # an instant: half an hour before the call
        ("2026-03-01T11:00:00Z", True),
    ],
)
def test_flag_period_ends_at_their_precision(end: str, in_force: bool) -> None:
    now = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
    assert (mappa_risk(mappa_flag("x", end=end), TODAY, now=now) is not None) is in_force


def test_only_the_mappa_code_makes_a_mappa_flag() -> None:
    flag = mappa_flag("x")
    flag["code"]["coding"][0]["code"] = "224353004"  # CP-IS child protection finding
    assert mappa_risk(flag, TODAY) is None
    flag = mappa_flag("x")
    flag["code"]["coding"][0]["system"] = (
        "https://fhir.interweavedigital.nhs.uk/CodeSystem/Interweave-FlagType"
    )
    assert mappa_risk(flag, TODAY) is None


@pytest.mark.parametrize(
    ("risks", "critical"),
    [
        ({"known-adult": "high"}, True),
        ({"children": "very-high"}, True),
        ({"known-adult": "medium", "children": "medium"}, False),
        ({"public": "very-high", "staff": "very-high"}, False),
        ({}, True),  # no risk levels: unknown risk is treated as high
    ],
)
def test_critical_when_a_known_adult_or_children_are_at_high_risk(
    risks: dict[str, str], critical: bool
) -> None:
    risk = mappa_risk(mappa_flag("x", risks=risks), TODAY)
    assert risk is not None and risk.critical is critical


def test_other_extensions_are_ignored_and_the_higher_level_stands() -> None:
    flag = mappa_flag("x", risks={"children": "low"})
    flag["extension"] += [
        risk_extension("children", "high"),
        {"url": "https://elsewhere.example/ext", "valueString": "ignored"},
    ]
    assert mappa_risk(flag, TODAY) == MappaRisk((("children", "high"),))
    with pytest.raises(ValueError):
        risk_extension("children", "extreme")


def level_part(**value: object) -> dict:
    return {"url": "level", **value}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda ext: ext["extension"][1]["valueCoding"].update(code="VERY-HIGH"), "capitals"),
        (lambda ext: ext["extension"][1]["valueCoding"].update(code="very high"), "a space"),
        (lambda ext: ext["extension"][1]["valueCoding"].update(system="http://x"), "system"),
        (lambda ext: ext["extension"].__setitem__(1, level_part(valueCode="high")), "valueCode"),
        (lambda ext: ext["extension"].__setitem__(1, level_part(valueString="high")), "text"),
        (lambda ext: ext["extension"].pop(1), "no level"),
        (lambda ext: ext["extension"][0]["valueCoding"].update(code="partner"), "unknown group"),
        (lambda ext: ext.__setitem__("extension", 5), "parts not a list"),
    ],
)
def test_an_unreadable_risk_level_is_said_and_critical(change: Any, why: str) -> None:
    flag = mappa_flag("x", risks={"public": "low", "known-adult": "medium"})
    change(flag["extension"][1])
    risk = mappa_risk(flag, TODAY)
    assert risk == MappaRisk((("public", "low"),), unreadable=True), why
    assert risk.critical, why


@pytest.mark.parametrize("extension", [5, "x", {"url": "x"}, [5]])
def test_a_malformed_extension_element_is_unreadable_risk(extension: object) -> None:
    flag = mappa_flag("x") | {"extension": extension}
    assert mappa_risk(flag, TODAY) == MappaRisk((), unreadable=True)


def test_no_risk_extension_is_no_levels_not_unreadable_but_critical() -> None:
    risk = mappa_risk(mappa_flag("x"), TODAY)
    assert risk == MappaRisk(()) and not risk.unreadable and risk.critical


def test_several_flags_on_one_member_combine() -> None:
    a = MappaRisk((("known-adult", "medium"), ("children", "high")))
    b = MappaRisk((("known-adult", "very-high"),))
    assert strongest([a, b]) == MappaRisk((("known-adult", "very-high"), ("children", "high")))
    assert strongest([a, MappaRisk((), unreadable=True)]) == MappaRisk(a.levels, unreadable=True)
    assert strongest([]) is None


def test_flags_attach_to_their_member_only() -> None:
    household = household_from(
        patient_id="mum",
        today=TODAY,
        groups=[household_group("mum", "partner", "son")],
        patients=[patient("partner", "1992-04-01"), patient("son", "2017-09-01")],
        flags=[
            mappa_flag("partner", risks={"known-adult": "very-high"}),
            mappa_flag("mum", rid="own", risks={"public": "high"}),  # the patient's own: not here
            mappa_flag("stranger", rid="s", risks={"public": "high"}),
            mappa_flag("son", rid="old", end="2020-01-01"),
        ],
    )
    assert [m.mappa for m in household.members] == [
        MappaRisk((("known-adult", "very-high"),)),
        None,
    ]
