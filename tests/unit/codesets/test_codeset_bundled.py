"""The bundled code sets: they load, they hold what the engine and template need, and every code
and term is found in the sourced list its `source` column names (patient safety: no code may be
invented)."""

import csv
import re
from pathlib import Path

import pytest

from iris_prompt.codes import READ_V2, SNOMED_CT, check_code
from iris_prompt.codeset_model import RECORDING_CATEGORIES
from iris_prompt.codesets import CodeSets, Member, check_folder, default_codesets_dir

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sets() -> CodeSets:
    report = check_folder(default_codesets_dir())
    assert report.errors == []
    assert report.codesets is not None
    return report.codesets


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
        assert systems == {SNOMED_CT, READ_V2}, category  # legacy history triggers too
    for settings in trigger.categories.values():
        assert settings.lookback is not None and settings.reason  # no trigger fires for ever


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
        "online-access-review": {"1364731000000104"},
        "mappa": {"495021000000105"},
    }
    for category, codes in expected.items():
        found = {m.code for m in recording.in_category(category) if m.system == SNOMED_CT}
        assert found == codes, category
    # A legacy (Read v2) enquiry record is recognised too.
    assert recording.lookup(READ_V2, "9r0..00").category == "enquiry-made"
    assert recording.lookup(READ_V2, "8IC0.").category == "enquiry-declined"


def test_known_abuse_set(sets: CodeSets) -> None:
    known = sets.known_abuse
    assert set(known.categories) == {
        "victim",
        "history",
        "at-risk",
        "marac",
        "police-report",
        "household",
    }
    assert known.lookup(SNOMED_CT, "879911000000102").category == "victim"
    assert known.lookup(READ_V2, "14X3.00").category == "history"
    assert known.lookup(SNOMED_CT, "895141000000105").category == "police-report"
    assert known.lookup(SNOMED_CT, "758941000000108").category == "marac"


def test_versions(sets: CodeSets) -> None:
    assert sets.versions() == {
        "iris-prompt-trigger": "1.0.0",
        "iris-prompt-recording": "1.0.0",
        "iris-prompt-known-abuse": "1.0.0",
    }


# --- every code is in its source --------------------------------------------------------------
SOURCE_LINE = re.compile(r"^(\S+) <- repo (\S+), path (\S+), commit ([0-9a-f]{40})")
MEMBER_SOURCE = re.compile(r"^(\S+/\S+) (\S+) @([0-9a-f]{7,40})$")


def reference_entries(reference_dir: Path) -> dict[tuple[str, str, str], set[tuple[str, str]]]:
    """(repo, path, commit) -> {(system, code + term)} for every sourced list we can read."""
    codes = reference_dir / "codes"
    entries: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
    for line in (codes / "SOURCE.txt").read_text(encoding="utf-8").splitlines():
        match = SOURCE_LINE.match(line)
        if not match:
            continue
        local, repo, path, commit = match.groups()
        found: set[tuple[str, str]] = set()
        with (codes / local).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if "system" in row:  # ACEs in EHRs: GOLD rows give Read v2, Aurum rows SNOMED CT
                    if row["system"] == "GOLD_medcode":
                        found.add((READ_V2, row["code_original"][:5] + "|" + row["coding_term"]))
                    elif row["system"] == "Aurum_medcode" and row["SnomedCTConceptId"]:
                        found.add((SNOMED_CT, row["SnomedCTConceptId"] + "|" + row["coding_term"]))
                elif "code" in row:
                    found.add((SNOMED_CT, row["code"] + "|" + row["term"]))
        entries[(repo, path, commit)] = found
    with (codes / "domestic-abuse-and-mappa-codes.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"].startswith("https://"):
                key = (row["source"], "", "")
                code_term = row["snomed_concept_id"] + "|" + row["term_as_in_source"]
                entries.setdefault(key, set()).add((SNOMED_CT, code_term))
    return entries


def find_source(member: Member, entries: dict) -> set[tuple[str, str]] | None:
    if member.source.startswith("https://"):
        return entries.get((member.source, "", ""))
    match = MEMBER_SOURCE.match(member.source)
    assert match, f"{member.code}: source {member.source!r} is not 'owner/repo path @commit'"
    repo, path, commit = match.groups()
    for (r, p, c), found in entries.items():
        if (r, p) == (repo, path) and c.startswith(commit):
            return found
    return None


def test_every_bundled_code_and_term_is_in_the_list_its_source_names(
    sets: CodeSets, reference_dir: Path
) -> None:
    entries = reference_entries(reference_dir)
    missing = []
    checked = 0
    for codeset in sets:
        for member in codeset:
            found = find_source(member, entries)
            assert found is not None, f"{member.code}: no reference list for {member.source!r}"
            if (member.system, f"{member.code}|{member.term}") not in found:
                missing.append(f"{codeset.id}: {member.code} {member.term!r} ({member.source})")
            checked += 1
    assert missing == []
    assert checked == sum(len(codeset) for codeset in sets)


def test_the_reference_check_catches_an_invented_code(sets: CodeSets, reference_dir: Path) -> None:
    entries = reference_entries(reference_dir)
    real = sets.trigger.lookup(SNOMED_CT, "35489007")
    assert (SNOMED_CT, f"{real.code}|{real.term}") in find_source(real, entries)
    invented = Member(SNOMED_CT, "35489015", real.term, real.category, real.source)
    assert (SNOMED_CT, f"{invented.code}|{invented.term}") not in find_source(invented, entries)
    renamed = Member(SNOMED_CT, real.code, "Sadness", real.category, real.source)
    assert (SNOMED_CT, f"{renamed.code}|{renamed.term}") not in find_source(renamed, entries)
