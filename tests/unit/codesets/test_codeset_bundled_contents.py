"""The bundled code sets hold what the engine and template need: the trigger categories and
their lookbacks, the codes each indicator needs (CTV3 only where a sourced list supports it),
what is left out on purpose, the recording codes of each template category, known abuse kept
apart from abuse in the household, and the versions. That every code and term is as its
source gives it is `test_codeset_bundled_sources.py`."""

from pathlib import Path

import pytest

from iris_prompt.codesets.codes import CTV3, READ_V2, SNOMED_CT, check_code
from iris_prompt.codesets.files import CodeSets, default_codesets_dir
from iris_prompt.codesets.model import KNOWN_ABUSE_FOR_PATIENT, RECORDING_CATEGORIES

PROJECT = Path(__file__).resolve().parents[3]


def test_the_bundled_folder_is_the_repository_codesets_folder() -> None:
    assert default_codesets_dir() == PROJECT / "codesets"


def test_every_bundled_code_passes_its_format_check(sets: CodeSets) -> None:
    for codeset in sets:
        for member in codeset:
            check_code(member.system, member.code)
            assert member.term and member.source and member.category in codeset.categories


def test_trigger_set_covers_the_indicators_with_enough_codes(sets: CodeSets) -> None:
    trigger = sets.trigger
    assert len(trigger) >= 160
    required = {"depression", "anxiety", "ptsd", "self-harm", "alcohol", "drugs"}
    assert required <= set(trigger.categories)
    for category in trigger.categories:
        assert trigger.in_category(category), f"category {category} has no codes"
    for category in required:
        systems = {m.system for m in trigger.in_category(category)}
        assert {SNOMED_CT, READ_V2} <= systems, category  # legacy history triggers too
    for settings in trigger.categories.values():
        assert settings.lookback is not None and settings.reason  # no trigger fires for ever


# The categories a sourced CTV3 list supports (codes/more/README.md), and those with none: the
# README must not claim more than the sets hold.
CTV3_CATEGORIES = {
    "depression",
    "anxiety",
    "ptsd",
    "sleep",
    "self-harm",
    "alcohol",
    "reproductive",
    "pregnancy-loss",
    "uti",
    "recurrent-uti",
    "sti",
    "pelvic-pain",
    "chronic-pain",
}


def test_ctv3_members_where_a_sourced_list_supports_them(sets: CodeSets) -> None:
    trigger = sets.trigger
    with_ctv3 = {m.category for m in trigger if m.system == CTV3}
    assert with_ctv3 == CTV3_CATEGORIES
    # No sourced CTV3 list exists for known abuse, drug misuse or assault.
    assert not [m for m in sets.known_abuse if m.system == CTV3]
    assert not [m for m in trigger if m.system == CTV3 and m.category in {"drugs", "assault"}]
    assert trigger.lookup(CTV3, "XE1Y0").category == "depression"  # single major depressive ep.
    assert trigger.lookup(CTV3, "X00Sf").category == "ptsd"
    assert trigger.lookup(READ_V2, "X00Sf") is None  # systems never mix


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("48694002", "anxiety"),  # Anxiety
        ("366979004", "depression"),  # Depressed mood
        ("394924000", "depression"),  # Symptoms of depression
        ("59274003", "self-harm"),  # Intentional drug overdose
        ("276853009", "self-harm"),  # Self inflicted injury
        ("219194004", "assault"),  # Assault by strangulation (Read v2 TL32.)
    ],
)
def test_common_symptom_codes_trigger(sets: CodeSets, code: str, category: str) -> None:
    member = sets.trigger.lookup(SNOMED_CT, code)
    assert member is not None and member.category == category


def test_acute_stress_and_hazardous_drinking_are_narrowed(sets: CodeSets) -> None:
    """An acute reaction to stress passes in weeks: not five years under PTSD. Hazardous alcohol
    use is an AUDIT-C outcome at every NHS Health Check: not a trigger."""
    trigger = sets.trigger
    for system, code in ((READ_V2, "E28.."), (READ_V2, "E28z."), (READ_V2, "Eu430")):
        assert trigger.lookup(system, code).category == "acute-stress"
    assert trigger.lookup(SNOMED_CT, "67195008").category == "acute-stress"
    acute, ptsd = trigger.categories["acute-stress"], trigger.categories["ptsd"]
    assert acute.lookback is not None and ptsd.lookback is not None
    assert acute.lookback < ptsd.lookback and acute.lookback_text == "1 year"
    ptsd_terms = [m.term.lower() for m in trigger.in_category("ptsd")]
    assert not [t for t in ptsd_terms if "acute stress" in t or "reaction to stress" in t]
    assert trigger.lookup(SNOMED_CT, "198421000000108") is None  # Hazardous alcohol use
    assert not [m for m in trigger if "hazardous" in m.term.lower()]


def test_qs116_physical_indicator_categories(sets: CodeSets) -> None:
    trigger = sets.trigger
    windows = {name: s.lookback_text for name, s in trigger.categories.items()}
    for name in ("pregnancy-loss", "uti", "recurrent-uti", "sti", "pelvic-pain"):
        assert windows[name] == "1 year", name
    for name in ("chronic-pain", "gi", "headache"):
        assert windows[name] == "1 year", name
    assert trigger.categories["uti"].min_entries == 3  # recurrence: 3 in 12 months
    assert {s.min_entries for n, s in trigger.categories.items() if n != "uti"} == {1}
    # A termination is often a Procedure: its procedure codes are in the set.
    assert trigger.lookup(SNOMED_CT, "386639001").category == "pregnancy-loss"
    assert trigger.lookup(CTV3, "Xa36H").category == "pregnancy-loss"
    assert trigger.lookup(SNOMED_CT, "197927001").category == "recurrent-uti"
    # Left out on purpose: period pain, migraine and single GI symptoms are too common.
    assert trigger.lookup(SNOMED_CT, "37796009") is None  # Migraine


def test_no_trigger_says_the_indicator_has_resolved(sets: CodeSets) -> None:
    """README: "resolved" codes are left out; "in remission" codes stay, for a reason given."""
    assert [m.term for m in sets.trigger if "resolved" in m.term.lower()] == []
    remission = {m.category for m in sets.trigger if "remission" in m.term.lower()}
    assert remission == {"depression", "alcohol"}  # the two categories the README explains


def test_recording_set_has_exactly_the_template_categories(sets: CodeSets) -> None:
    recording = sets.recording
    assert tuple(recording.categories) == RECORDING_CATEGORIES
    expected = {
        "enquiry-made": {"700410005"},
        "enquiry-declined": {"700411009"},
        "enquiry-not-made": {"887331000000105", "699231000"},
        "victim": {"879911000000102"},
        "history": {"429746005"},
        "abuse-physical": {"720684005"},
        "abuse-sexual": {"720595008"},
        "abuse-emotional": {"720025009", "1045671000000102"},
        "abuse-financial": {"225827005"},
        "risk-checklist": {"886191000000106", "886201000000108"},
        "risk-classification": {"886231000000102"},
        "referral-advocate": {"431719007"},
        "referral-agency": {"758599003", "784861000000102"},
        "referral-marac": {"978091000000105"},
        "referral-child-safeguarding": {"380491000000101"},
        "information-given": {"413457006"},
        "online-access-review": {"1364731000000104"},
        "mappa": {"495021000000105"},
    }
    for category, codes in expected.items():
        found = {m.code for m in recording.in_category(category) if m.system == SNOMED_CT}
        assert found == codes, category
    # A legacy (Read v2) enquiry record is recognised too.
    assert recording.lookup(READ_V2, "9r0..00").category == "enquiry-made"
    assert recording.lookup(READ_V2, "8IC0.").category == "enquiry-declined"
    assert recording.lookup(READ_V2, "67Ia.11").category == "information-given"


def test_information_and_child_referral_codes_have_no_other_role(sets: CodeSets) -> None:
    """Advice given or a child referral records an action: it neither prompts an enquiry nor
    says that abuse is known for this patient."""
    for code in ("413457006", "380491000000101"):
        assert sets.trigger.lookup(SNOMED_CT, code) is None
        assert sets.known_abuse.lookup(SNOMED_CT, code) is None
    assert sets.trigger.lookup(READ_V2, "67Ia.") is None
    assert sets.known_abuse.lookup(READ_V2, "67Ia.") is None


def test_known_abuse_set(sets: CodeSets) -> None:
    known = sets.known_abuse
    assert set(known.categories) == {*KNOWN_ABUSE_FOR_PATIENT, "abuse-in-household"}
    assert known.lookup(SNOMED_CT, "879911000000102").category == "victim"
    assert known.lookup(READ_V2, "14X3.00").category == "history"
    assert known.lookup(SNOMED_CT, "895141000000105").category == "police-report"
    assert known.lookup(SNOMED_CT, "758941000000108").category == "marac"


def test_household_codes_are_not_abuse_known_for_the_patient(sets: CodeSets) -> None:
    """Codes that say abuse is in the household are also on the children's and on the
    perpetrator's records: they must not count as this patient's known abuse."""
    household = {
        (SNOMED_CT, "161051006"),  # At risk violence in the home
        (SNOMED_CT, "881081000000100"),  # Domestic abuse victim in household
        (SNOMED_CT, "983731000000107"),  # Notification received of alleged DV in household
        (READ_V2, "13VF."),
        (READ_V2, "13Wd."),
        (READ_V2, "9GA.."),
    }
    known = sets.known_abuse
    assert {(m.system, m.code) for m in known.in_category("abuse-in-household")} == household
    for member in known:
        if "household" in member.term.lower() or "in the home" in member.term.lower():
            assert member.category not in KNOWN_ABUSE_FOR_PATIENT, member


def test_versions(sets: CodeSets) -> None:
    assert sets.versions() == {
        "iris-prompt-trigger": "2.0.0",
        "iris-prompt-recording": "2.0.0",
        "iris-prompt-known-abuse": "2.1.1",
    }
