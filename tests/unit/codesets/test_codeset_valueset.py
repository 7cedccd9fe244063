"""FHIR R4 ValueSet export and import: valid FHIR, grouped by system, and a lossless round trip."""

import copy
import json

import pytest
from fhir.resources.R4B.valueset import ValueSet

from iris_prompt.codesets.codes import CTV3, READ_V2, SNOMED_CT
from iris_prompt.codesets.files import CodeSetError, CodeSets, default_codesets_dir, load_codesets
from iris_prompt.codesets.valueset import codeset_from_valueset, codeset_to_valueset


@pytest.fixture(scope="module")
def sets() -> CodeSets:
    return load_codesets(default_codesets_dir())


def test_export_is_a_valid_r4_valueset_grouped_by_system(sets: CodeSets) -> None:
    resource = codeset_to_valueset(sets.trigger, base_url="https://fhir.example.nhs.uk/")
    parsed = ValueSet.model_validate(resource)
    assert parsed.url == "https://fhir.example.nhs.uk/ValueSet/iris-prompt-trigger"
    assert (parsed.version, parsed.status) == (sets.trigger.version, "active")
    assert parsed.name == "IrisPromptTrigger"
    assert [include.system for include in parsed.compose.include] == [SNOMED_CT, READ_V2, CTV3]
    total = sum(len(include.concept) for include in parsed.compose.include)
    assert total == len(sets.trigger)
    first = parsed.compose.include[0].concept[0]
    member = sets.trigger.lookup(SNOMED_CT, first.code)
    assert first.display == member.term
    # The trigger set's per-category minimum number of entries goes with it.
    assert '"minEntries"' in json.dumps(resource)
    known = codeset_to_valueset(sets.known_abuse)
    assert CTV3 not in json.dumps(known)  # no CTV3 codes: no empty include


@pytest.mark.parametrize("purpose", ["trigger", "recording", "known_abuse"])
def test_export_then_import_gives_the_identical_set(sets: CodeSets, purpose: str) -> None:
    original = getattr(sets, purpose)
    resource = json.loads(json.dumps(codeset_to_valueset(original)))
    back = codeset_from_valueset(resource)
    assert back == original
    assert back.members == original.members
    assert dict(back.categories) == dict(original.categories)


def test_import_checks_the_codes_like_a_file(sets: CodeSets) -> None:
    resource = codeset_to_valueset(sets.recording)
    tampered = copy.deepcopy(resource)
    tampered["compose"]["include"][0]["concept"][0]["code"] = "700410006"
    with pytest.raises(CodeSetError, match="check digit") as raised:
        codeset_from_valueset(tampered, file="edited.json")
    assert all(p.file == "edited.json" and p.line is None for p in raised.value.problems)


def test_import_refuses_a_valueset_that_did_not_come_from_a_code_set() -> None:
    foreign = {"resourceType": "ValueSet", "status": "active", "compose": {"include": []}}
    with pytest.raises(CodeSetError, match="not exported from a code set"):
        codeset_from_valueset(foreign)


def test_import_refuses_invalid_fhir() -> None:
    with pytest.raises(CodeSetError, match="not a valid FHIR ValueSet"):
        codeset_from_valueset({"resourceType": "ValueSet", "status": "active", "url": 12})
