"""Code formats: valid and invalid tables, each bad row with the reason it is bad."""

import pytest

from iris_prompt.codesets.codes import (
    CTV3,
    READ_V2,
    SNOMED_CT,
    Ctv3Code,
    ReadV2Code,
    SnomedCtCode,
    check_code,
    normalise_code,
    snomed_namespace,
    verhoeff_check_digit,
    verhoeff_is_valid,
)

VALID_SNOMED = [
    "700410005",  # Routine enquiry about domestic abuse (short form, partition 00)
    "879911000000102",  # Victim of domestic abuse (UK extension, partition 10)
    "1364731000000104",  # Enhanced review indicated ... (16 digits)
    "35489007",  # Depressive disorder
    "100005",  # 6 digits, the shortest an SCTID can be
]

INVALID_SNOMED = [
    ("700410006", "check digit", "a real ID (700410005) with its last digit changed"),
    ("700411005", "check digit", "a real ID (700410005) with one middle digit changed"),
    ("879911000000112", "description", "partition 11: a description ID, not a concept"),
    ("2474290010", "description", "the description ID CPRD lists beside 412732008"),
    ("879911000000122", "relationship", "partition 12: a relationship ID"),
    ("100033", "non-concept", "partition 03 names no component type (check digit is right)"),
    ("070041000", "6 to 18 digits", "leading zero"),
    ("12345", "6 to 18 digits", "too short"),
    ("1234567890123456789", "6 to 18 digits", "19 digits"),
    ("70041000S", "6 to 18 digits", "a letter"),
    (" 700410005", "6 to 18 digits", "whitespace is not stripped by the type"),
    ("", "6 to 18 digits", "empty"),
]


@pytest.mark.parametrize("value", VALID_SNOMED)
def test_valid_snomed(value: str) -> None:
    assert SnomedCtCode(value).value == value


@pytest.mark.parametrize(("value", "message", "reason"), INVALID_SNOMED)
def test_invalid_snomed(value: str, message: str, reason: str) -> None:
    with pytest.raises(ValueError, match=message):
        SnomedCtCode(value)


def test_verhoeff_against_known_identifiers() -> None:
    assert verhoeff_check_digit("70041000") == "5"
    assert verhoeff_check_digit("236") == "3"  # the textbook example
    # Row 4 of the position table is where a hand-typed table most often goes wrong.
    assert verhoeff_is_valid("195967001")  # Asthma
    assert verhoeff_is_valid("14183003")


def test_every_single_digit_change_of_a_real_id_fails_the_check_digit() -> None:
    real = "879911000000102"
    for position in range(len(real)):
        for digit in "0123456789":
            if digit == real[position]:
                continue
            changed = real[:position] + digit + real[position + 1 :]
            assert not verhoeff_is_valid(changed), changed


def test_snomed_namespace() -> None:
    assert snomed_namespace("879911000000102") == "1000000"
    assert snomed_namespace("1626321000006103") == "1000006"  # EMIS local
    assert snomed_namespace("700410005") is None


VALID_READ = ["14X3.", "E112.", "9r0..", "13Wd.", "8IC..", "TK...", "E....", "Eu32z", "ZV1B2"]

INVALID_READ = [
    ("14X3", "5 letters or digits", "4 characters"),
    ("14X3.0", "5 letters or digits", "6 characters"),
    ("14X3.00", "term code", "7 characters: the term code must be dropped in a code set"),
    (".14X3", "5 letters or digits", "leading dot"),
    ("14.X3", "5 letters or digits", "a dot before a letter"),
    ("14X-.", "5 letters or digits", "punctuation other than a dot"),
    ("EMISNQRE101", "5 letters or digits", "an EMIS local code, not Read v2"),
    ("^ESCT", "5 letters or digits", "EMIS SNOMED-mapped local code prefix"),
]


@pytest.mark.parametrize("value", VALID_READ)
def test_valid_read_v2(value: str) -> None:
    assert ReadV2Code(value).value == value


@pytest.mark.parametrize(("value", "message", "reason"), INVALID_READ)
def test_invalid_read_v2(value: str, message: str, reason: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReadV2Code(value)


@pytest.mark.parametrize(
    ("record", "stored"),
    [("14X3.00", "14X3."), ("67Ia.11", "67Ia."), ("14X3.", "14X3."), ("E112100", "E1121")],
)
def test_read_v2_from_record_drops_the_term_code(record: str, stored: str) -> None:
    assert ReadV2Code.from_record(record).value == stored
    assert normalise_code(READ_V2, record) == stored


def test_normalise_leaves_other_systems_alone() -> None:
    assert normalise_code(SNOMED_CT, "1234567") == "1234567"
    assert normalise_code(CTV3, "XE0Uh") == "XE0Uh"


VALID_CTV3 = ["XE0Uh", "Xa1pS", "6664.", "E1400", "Eu8.."]
INVALID_CTV3 = [
    ("E....", "CTV3", "only one letter before the dots"),
    (".9m05", "CTV3", "leading dot: not used in GP data"),
    ("~XE0U", "CTV3", "tilde"),
    ("XE0U", "CTV3", "4 characters"),
]


@pytest.mark.parametrize("value", VALID_CTV3)
def test_valid_ctv3(value: str) -> None:
    assert Ctv3Code(value).value == value


@pytest.mark.parametrize(("value", "message", "reason"), INVALID_CTV3)
def test_invalid_ctv3(value: str, message: str, reason: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ctv3Code(value)


def test_check_code_dispatches_by_system_and_refuses_unknown_systems() -> None:
    assert isinstance(check_code(SNOMED_CT, "700410005"), SnomedCtCode)
    assert isinstance(check_code(READ_V2, "9r0.."), ReadV2Code)
    assert isinstance(check_code(CTV3, "XE0Uh"), Ctv3Code)
    with pytest.raises(ValueError, match="unknown code system"):
        check_code("http://hl7.org/fhir/sid/icd-10", "T742")


def test_codes_are_frozen_values() -> None:
    code = SnomedCtCode("700410005")
    assert code == SnomedCtCode("700410005")
    assert {code, SnomedCtCode("700410005")} == {code}
    with pytest.raises(AttributeError):
        code.value = "700411009"  # type: ignore[misc]
