"""Clinical codes as small typed values: SNOMED CT, Read v2 and CTV3.

Each coding system is one frozen class that checks its format when built, so a value of
that class is always well formed. The formats and their sources are given beside each
regular expression; every deliberate departure from a source says why.

    >>> SnomedCtCode("700410005").value
    '700410005'
    >>> ReadV2Code.from_record("14X3.00").value   # GP data may carry the term code
    '14X3.'

Errors are `ValueError`s whose message a code-set maintainer can act on.
"""

import re
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CTV3",
    "READ_V2",
    "SNOMED_CT",
    "SYSTEM_NAMES",
    "Ctv3Code",
    "ReadV2Code",
    "SnomedCtCode",
    "check_code",
    "normalise_code",
    "snomed_namespace",
    "verhoeff_check_digit",
    "verhoeff_is_valid",
]

# Code-system URIs. SNOMED CT: FHIR R4 "Using SNOMED CT with FHIR". Read v2 and CTV3: the URIs
# NHS England's GP Connect and UK Core use (UK Core example Extension-UKCore-CodingSCT-*).
SNOMED_CT = "http://snomed.info/sct"
READ_V2 = "http://read.info/readv2"
CTV3 = "http://read.info/ctv3"

# The names people read and write in the code-set CSV files, one per system.
SYSTEM_NAMES: dict[str, str] = {SNOMED_CT: "SNOMED CT", READ_V2: "Read v2", CTV3: "CTV3"}


# --- Verhoeff check digit -------------------------------------------------------------------
# SNOMED CT identifiers end in a Verhoeff check digit (Verhoeff 1969, as specified in the SNOMED
# CT Release File Specifications, "SCTID check-digit"). The three tables are the dihedral group
# D5 multiplication table, the position permutations and the inverses.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
# Row i of the position table is the permutation (1 5 7 6 2 8 3 0 9 4) applied i times.
_PERMUTATION = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)
_P: tuple[tuple[int, ...], ...] = (tuple(range(10)),)
for _ in range(7):
    _P += (tuple(_P[-1][digit] for digit in _PERMUTATION),)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_is_valid(digits: str) -> bool:
    """True when the last digit of `digits` is the Verhoeff check digit of the others."""
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][int(digit)]]
    return check == 0


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff check digit to append to `digits`."""
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D[check][_P[(position + 1) % 8][int(digit)]]
    return str(_INV[check])


_PARTITION_KINDS = {
    "01": "description",
    "11": "description",
    "02": "relationship",
    "12": "relationship",
}


# --- the code types --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SnomedCtCode:
    """A SNOMED CT concept identifier (SCTID), checked for syntax, partition and check digit."""

    value: str

    # 6 to 18 digits, no leading zero: SNOMED CT Release File Specifications, 6.1 SCTID Data
    # Type (https://confluence.ihtsdotools.org/display/DOCRELFMT/6.1+SCTID+Data+Type).
    regex: ClassVar[re.Pattern[str]] = re.compile(r"[1-9][0-9]{5,17}")
    # The partition identifier is the second and third digits from the right. Concepts are
    # "00" (international short form) or "10" (long form, with a 7-digit namespace such as
    # 1000000 for the UK clinical extension); 01/11 are descriptions, 02/12 relationships, and
    # a code set holds concepts only. Same specification, "Partition identifier".
    concept_partitions: ClassVar[frozenset[str]] = frozenset({"00", "10"})

    def __post_init__(self) -> None:
        value = self.value
        if not self.regex.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a SNOMED CT identifier: it must be 6 to 18 digits with no "
                "leading zero"
            )
        partition = value[-3:-1]
        if partition not in self.concept_partitions:
            kind = _PARTITION_KINDS.get(partition, "non-concept")
            raise ValueError(
                f"{value!r} is not a SNOMED CT concept identifier: its partition (the second and "
                f"third digits from the right) is {partition!r}, which marks a {kind} ID, and a "
                "concept has '00' or '10' there (copy the concept ID, not the description ID)"
            )
        if not verhoeff_is_valid(value):
            raise ValueError(
                f"{value!r} fails the SNOMED CT check digit: the last digit does not fit the "
                "others, so a digit is probably mistyped; copy the code again from its source"
            )


def snomed_namespace(value: str) -> str | None:
    """The 7-digit namespace of a long-form SCTID (partition 1x), or None for a short form."""
    if len(value) >= 11 and value[-3] == "1":
        return value[-10:-3]
    return None


@dataclass(frozen=True, slots=True)
class ReadV2Code:
    """A Read Codes version 2 code in its 5-character form, such as ``14X3.``.

    Format: five characters, each a letter or digit (case matters: ``13Wd.`` and ``13WD.`` are
    different codes), one per level of the hierarchy, with unused levels padded on the right
    with full stops; so a dot never comes before a letter or digit. Sources: NHS Digital,
    "Read Codes" (https://digital.nhs.uk/services/terminology-and-classifications/read-codes);
    Booth N, "What are the Read Codes?", Health Libr Rev 1994;11:177-82.

    Decision: GP systems and CPRD GOLD also write a 2-character term code after the concept
    (``14X3.00`` is the preferred term, ``14X3.11`` a synonym). The term code picks a wording,
    not a different concept, so a code set stores the 5-character concept code and lookups
    accept either form (see `from_record`).
    """

    value: str

    regex: ClassVar[re.Pattern[str]] = re.compile(r"(?=.{5}$)[0-9A-Za-z]+\.*")
    # The same five characters followed by a 2-character term code (00 preferred term, 11.. 1z
    # synonyms), as carried in GP extracts and CPRD GOLD `code_original`.
    with_term_code: ClassVar[re.Pattern[str]] = re.compile(
        r"(?=.{7}$)[0-9A-Za-z]+\.*[0-9A-Za-z]{2}"
    )

    def __post_init__(self) -> None:
        if self.regex.fullmatch(self.value):
            return
        if self.with_term_code.fullmatch(self.value):
            raise ValueError(
                f"{self.value!r} carries a term code: write the 5-character Read v2 code "
                f"{self.value[:5]!r} (the last two characters choose a wording, not a concept)"
            )
        raise ValueError(
            f"{self.value!r} is not a Read v2 code: it must be 5 letters or digits, padded on "
            "the right with full stops, such as '14X3.' or 'E112.'"
        )

    @classmethod
    def from_record(cls, text: str) -> "ReadV2Code":
        """Accept a code as GP records carry it: 5 characters, or 7 with the term code."""
        if cls.with_term_code.fullmatch(text):
            text = text[:5]
        return cls(text)


@dataclass(frozen=True, slots=True)
class Ctv3Code:
    """A Clinical Terms Version 3 (Read v3) code, such as ``XE0Uh`` or ``6664.``.

    Format: five case-sensitive letters or digits; codes inherited from Read v2 keep their
    right-hand dot padding, with at least two letters or digits. Source: NHS Digital, "Read
    Codes" (as above), and OpenSAFELY ehrql `CTV3Code`, which notes that the few CTV3 codes with
    a leading dot or tilde are not used in GP data; we reject them too.
    """

    value: str

    regex: ClassVar[re.Pattern[str]] = re.compile(r"(?=.{5}$)[0-9A-Za-z]{2,}\.*")

    def __post_init__(self) -> None:
        if not self.regex.fullmatch(self.value):
            raise ValueError(
                f"{self.value!r} is not a CTV3 code: it must be 5 letters or digits, or at "
                "least 2 followed by full stops, such as 'XE0Uh' or '6664.'"
            )


_TYPES: dict[str, type[SnomedCtCode] | type[ReadV2Code] | type[Ctv3Code]] = {
    SNOMED_CT: SnomedCtCode,
    READ_V2: ReadV2Code,
    CTV3: Ctv3Code,
}


def check_code(system: str, value: str) -> SnomedCtCode | ReadV2Code | Ctv3Code:
    """Build the typed code for `system`; raises ValueError naming what is wrong."""
    try:
        code_type = _TYPES[system]
    except KeyError:
        raise ValueError(f"unknown code system {system!r}") from None
    return code_type(value)


def normalise_code(system: str, value: str) -> str:
    """The form a code set stores: Read v2 loses a 2-character term code; others unchanged.

    Cheap and total (never raises), for the hot path of matching a patient's record.
    """
    if system == READ_V2 and len(value) == 7:
        return value[:5]
    return value
