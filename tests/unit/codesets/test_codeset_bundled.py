"""The bundled code sets: they load, they hold what the engine and template need, and every code
and term is found in the sourced list its `source` column names (patient safety: no code may be
invented)."""

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iris_prompt.codesets.codes import CTV3, READ_V2, SNOMED_CT, check_code
from iris_prompt.codesets.files import CodeSets, Member, check_folder, default_codesets_dir
from iris_prompt.codesets.model import KNOWN_ABUSE_FOR_PATIENT, RECORDING_CATEGORIES

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


# --- every code is in its source, with a term that source gives it -----------------------------
SOURCE_LINE = re.compile(r"^(\S+) <- repo (\S+), path (\S+), commit ([0-9a-f]{40})")
MEMBER_SOURCE = re.compile(r"^(\S+/\S+) (\S+) @([0-9a-f]{7,40})$")
# Read v2 terms carry chapter markers such as "[X]" or "[V]". Some UK SNOMED CT concepts kept
# them, but those are in the national lists; on any other SNOMED CT code such a term is a Read
# description that CPRD Aurum mapped to it (its mappings are approximate).
READ_MARKER = re.compile(r"^\[[A-Z]+\]")
# Greater Manchester SDE lists give SNOMED CT fully specified names, "Cystitis (disorder)": the
# term is written without its semantic tag.
SEMANTIC_TAG = re.compile(
    r" \((disorder|finding|procedure|situation|regime/therapy|observable entity)\)$"
)
# CPRD GOLD runs some terms' words together ("HOdomesticemotionalabuse"): no space, and longer
# than the single words that are real terms ("Suicidal", "[X]Dysthymia").
ABBREVIATED = re.compile(r"\S{16,}")

Terms = dict[tuple[str, str], set[str]]  # (system, code) -> the terms a list gives it


@dataclass
class Reference:
    """What the sourced lists say about each code.

    A SNOMED CT term is trusted when a national or OpenCodelists list gives it (their terms come
    from the SNOMED CT UK release), or when it is the concept's own description on a CPRD Aurum row
    (the row's medcodeid is its SNOMED CT description id). Other Aurum rows carry CPRD's or EMIS's
    description, which may belong to another concept: such a term is refused where a national
    list names the code otherwise.
    """

    # (repo, path, commit), or (web address, "", ""), -> that list's terms
    lists: dict[tuple[str, str, str], Terms] = field(default_factory=dict)
    national: dict[str, set[str]] = field(default_factory=dict)
    described: dict[str, set[str]] = field(default_factory=dict)
    # SNOMED CT terms the lists in more/ give: trusted, but, as those lists name some concepts by
    # a long fully specified name, not used to refuse another list's term.
    more: dict[str, set[str]] = field(default_factory=dict)


def reference_entries(reference_dir: Path) -> Reference:
    codes = reference_dir / "codes"
    reference = Reference()
    for line in (codes / "SOURCE.txt").read_text(encoding="utf-8").splitlines():
        match = SOURCE_LINE.match(line)
        if not match:
            continue
        local, repo, path, commit = match.groups()
        found: Terms = reference.lists.setdefault((repo, path, commit), {})
        with (codes / local).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if "system" in row:  # ACEs in EHRs: GOLD rows give Read v2, Aurum rows SNOMED CT
                    term, concept = row["coding_term"], row["SnomedCTConceptId"]
                    if row["system"] == "GOLD_medcode":
                        found.setdefault((READ_V2, row["code_original"][:5]), set()).add(term)
                    elif row["system"] == "Aurum_medcode" and concept:
                        found.setdefault((SNOMED_CT, concept), set()).add(term)
                        if row["code"] == row["SnomedCTDescriptionId"]:
                            reference.described.setdefault(concept, set()).add(term)
                elif "code" in row:
                    found.setdefault((SNOMED_CT, row["code"]), set()).add(row["term"])
                    reference.national.setdefault(row["code"], set()).add(row["term"])
    more_lists(codes / "more", reference)
    with (codes / "domestic-abuse-and-mappa-codes.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"].startswith("https://"):
                found = reference.lists.setdefault((row["source"], "", ""), {})
                key = (SNOMED_CT, row["snomed_concept_id"])
                found.setdefault(key, set()).add(row["term_as_in_source"])
    return reference


def more_lists(more: Path, reference: Reference) -> None:
    """The lists in `more/`, each traced in its SOURCES.tsv (repository, path, commit and the
    code system: SNOMED or CTV3). OpenCodelists CSVs have a header (`code,term` or
    `CTV3Code,Description`); Greater Manchester SDE `.txt` files are `code<TAB>term`, no header."""
    with (more / "SOURCES.tsv").open(newline="", encoding="utf-8") as handle:
        traced = list(csv.DictReader(handle, delimiter="\t"))
    assert traced, "more/SOURCES.tsv lists no file"
    for row in traced:
        system = CTV3 if row["code_system"] == "CTV3" else SNOMED_CT
        key = (row["repository"], row["path_in_repository"], row["commit"])
        found: Terms = reference.lists.setdefault(key, {})
        path = more / row["file"]
        if path.suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            pairs = [tuple(line.split("\t", 1)) for line in lines if line.strip()]
            pairs += [(code, SEMANTIC_TAG.sub("", term)) for code, term in pairs]
        else:
            with path.open(newline="", encoding="utf-8") as handle:
                pairs = [(code, term) for code, term, *_ in list(csv.reader(handle))[1:]]
        for code, term in pairs:
            found.setdefault((system, code), set()).add(term)
            if system == SNOMED_CT:
                reference.more.setdefault(code, set()).add(term)


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> Reference:
    return reference_entries(reference_dir)


def find_source(member: Member, reference: Reference) -> Terms | None:
    if member.source.startswith("https://"):
        return reference.lists.get((member.source, "", ""))
    match = MEMBER_SOURCE.match(member.source)
    assert match, f"{member.code}: source {member.source!r} is not 'owner/repo path @commit'"
    repo, path, commit = match.groups()
    for (r, p, c), found in reference.lists.items():
        if (r, p) == (repo, path) and c.startswith(commit):
            return found
    return None


def term_problems(member: Member, reference: Reference) -> list[str]:
    """Why this member's code or term is not as its source gives it (empty when it is)."""
    found = find_source(member, reference)
    if found is None:
        return [f"no reference list for {member.source!r}"]
    terms = found.get((member.system, member.code))
    if not terms:
        return [f"{member.code} is not in {member.source}"]
    if member.term not in terms:
        return [f"{member.term!r} is not the source's term for {member.code}: {sorted(terms)}"]
    if member.system == SNOMED_CT:
        national = reference.national.get(member.code, set())
        trusted = national | reference.described.get(member.code, set())
        if member.term in trusted | reference.more.get(member.code, set()):
            return []
        if national:
            return [
                f"{member.term!r} is a CPRD Aurum description; national lists call "
                f"{member.code} {sorted(national)}"
            ]
        if READ_MARKER.match(member.term):
            return [f"{member.term!r} is a Read v2 term, not a SNOMED CT description"]
    elif ABBREVIATED.fullmatch(member.term) and any(" " in term for term in terms):
        readable = sorted(term for term in terms if " " in term)
        return [f"{member.term!r} is abbreviated; the source also gives {readable}"]
    return []


def test_every_bundled_code_and_term_is_as_its_source_gives_it(
    sets: CodeSets, reference: Reference
) -> None:
    problems = [
        f"{codeset.id} {member.code}: {problem}"
        for codeset in sets
        for member in codeset
        for problem in term_problems(member, reference)
    ]
    assert problems == []


ACES = "shabeer-syed/acesinehrs codelists/IPV_2025ACEsinEHRs.txt @2b5eed23"
MHP = "shabeer-syed/acesinehrs codelists/MHP_2025ACEsinEHRs.txt @2b5eed23"
GM = "UoM-Data-Science-Platforms/gm-sde shared/clinical-code-sets/conditions/"
GM_ANXIETY = GM + "anxiety/1/anxiety.ctv3.txt @6cf10afc"
GM_DEPR = GM + "depression/1/depression.ctv3.txt @6cf10afc"
WALTER = "opensafely/lockdown-and-vulnerable-groups codelists/"
WALTER += "user-S_Walter-domestic-violence-abuse-complexity-factor.csv @a7bd5e7e"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (Member(SNOMED_CT, "35489015", "Depressive disorder", "depression", MHP), "not in"),
        (Member(SNOMED_CT, "429746005", "Sadness", "history", ACES), "not the source's term"),
        (Member(SNOMED_CT, "429746005", "x", "history", "a/b c.csv @abcdef1"), "no reference"),
        # CPRD Aurum rows map Read descriptions to 720741001, which national lists call
        # "History of domestic sexual abuse" (the term the known-abuse set had, wrongly).
        (
            Member(
                SNOMED_CT, "720741001", "[V]Family history of sexual abuse to sibling", "h", ACES
            ),
            "national lists call 720741001 ['History of domestic sexual abuse']",
        ),
        (Member(SNOMED_CT, "193462001", "[D]Insomnia NOS", "sleep", MHP), "Read v2 term"),
        # A CTV3 code that its cited CTV3 list does not hold (XE1Y0 is in the depression list).
        (Member(CTV3, "XE1Y0", "Single major depressive episode", "anxiety", GM_ANXIETY), "not in"),
        # A Read v2 code cited from a CTV3 list: the list is CTV3, whatever the code looks like.
        (Member(READ_V2, "E2B..", "Depressive disorder NEC", "depression", GM_DEPR), "not in"),
        # The same CPRD GOLD list gives the readable term too.
        (Member(READ_V2, "14XD0", "HOdomesticemotionalabuse", "history", ACES), "abbreviated"),
    ],
)
def test_the_reference_check_catches_wrong_codes_and_terms(
    member: Member, why: str, reference: Reference
) -> None:
    problems = term_problems(member, reference)
    assert any(why in problem for problem in problems), problems


@pytest.mark.parametrize(
    "member",
    [
        Member(SNOMED_CT, "720741001", "History of domestic sexual abuse", "history", WALTER),
        # A synonym that is the concept's own SNOMED CT description (on an Aurum row), beside the
        # national list's "Domestic violence education".
        Member(SNOMED_CT, "413457006", "Advice about domestic violence", "info", ACES),
        # The only term the source gives this code.
        Member(READ_V2, "14XD2", "HOdomesticsexualabuse", "history", ACES),
    ],
)
def test_the_reference_check_accepts_sourced_terms(member: Member, reference: Reference) -> None:
    assert term_problems(member, reference) == []


def test_a_read_code_and_the_concept_it_maps_to_share_a_category(
    sets: CodeSets, reference_dir: Path
) -> None:
    """One concept, one category, whatever the system: mixed anxiety and depression was under
    depression in SNOMED CT but under anxiety in Read v2. The Read-to-SNOMED CT pairs are CPRD
    Aurum's (code_original beside SnomedCTConceptId); they are approximate, so a pair that truly
    differs in meaning would be listed here with its reason (none does today)."""
    pairs = set()
    for path in (reference_dir / "codes" / "acesinehrs").glob("*.txt"):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["system"] == "Aurum_medcode" and row["SnomedCTConceptId"]:
                    pairs.add((row["code_original"][:5], row["SnomedCTConceptId"]))
    split = [
        f"{codeset.purpose}: Read v2 {read} {r.category}, SNOMED CT {concept} {c.category}"
        for codeset in sets
        for read, concept in sorted(pairs)
        if (r := codeset.lookup(READ_V2, read)) and (c := codeset.lookup(SNOMED_CT, concept))
        if r.category != c.category
    ]
    assert split == []


# Read v2 triggers whose SNOMED CT twin by the ACEs in EHRs CPRD Aurum mapping is deliberately not
# a trigger, and why (the mapping is approximate: codesets/README.md).
TWIN_LEFT_OUT = {
    ("Eu333", "765176007"): "bipolar disorder, currently depressed: long-term SMI, left out",
    ("Eu341", "1084061000000106"): "depressive personality disorder: a personality disorder",
    ("E28..", "61157009"): "combat fatigue: a known cause that is not domestic",
    ("E28z.", "247854002"): "flying phobia: a wrong mapping; specific phobias are left out",
    ("E28z.", "231507004"): "stage fright: a wrong mapping; specific phobias are left out",
    ("U2...", "44301001"): "suicide (a death): never on a living patient's own record",
    ("ZV113", "371422002"): "history of substance abuse: any substance, broader than alcoholism",
}


def test_every_read_v2_trigger_has_its_snomed_ct_twin(sets: CodeSets, reference_dir: Path) -> None:
    """Since 2018 English GP entries are SNOMED CT-coded: a Read v2 trigger without its SNOMED CT
    twin misses every recent entry of the same indicator."""
    twins: dict[str, set[str]] = {}
    for path in (reference_dir / "codes" / "acesinehrs").glob("*.txt"):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["system"] == "Aurum_medcode" and row["SnomedCTConceptId"]:
                    read = row["code_original"][:5]
                    twins.setdefault(read, set()).add(row["SnomedCTConceptId"])
    trigger = sets.trigger
    missing = [
        f"Read v2 {m.code} ({m.term}): SNOMED CT {concept}"
        for m in trigger
        if m.system == READ_V2
        for concept in sorted(twins.get(m.code, ()))
        if trigger.lookup(SNOMED_CT, concept) is None and (m.code, concept) not in TWIN_LEFT_OUT
    ]
    assert missing == []
    for read, concept in TWIN_LEFT_OUT:  # each exception is still needed
        assert concept in twins[read] and trigger.lookup(SNOMED_CT, concept) is None
