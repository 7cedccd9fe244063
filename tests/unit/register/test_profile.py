"""The register's profile as a pure check: NHS number check digits, the period rules, and the
StructureDefinition it publishes (valid R4)."""

import datetime

import pytest
from fhir.resources.R4B.structuredefinition import StructureDefinition

from iris_prompt.register.profile import (
    PROFILE_URL,
    check_flag,
    nhs_number_valid,
    period_end_instant,
)
from iris_prompt.register.structure import structure_definition
from tests.api.register_support import mappa_flag

NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)

NHS_NUMBERS = [
    # (number, valid, why)
    ("9990000018", True, "check digit 8"),
    ("9434765919", True, "a published example number"),
    ("9990000019", False, "wrong check digit"),
    ("9990000020", False, "check digit would be 10: no such number"),
    ("999000001", False, "nine digits"),
    ("99900000181", False, "eleven digits"),
    ("999 000 0018", False, "spaces are not stripped here"),
    ("999000001a", False, "a letter"),
    ("９９９００００018", False, "full-width digits"),
]


@pytest.mark.parametrize(("number", "valid", "why"), NHS_NUMBERS, ids=[n[2] for n in NHS_NUMBERS])
def test_nhs_number_modulus_11(number: str, valid: bool, why: str) -> None:
    assert nhs_number_valid(number) is valid, why


def test_a_well_formed_flag_passes() -> None:
    assert check_flag(mappa_flag(), now=NOW) == []


def test_the_review_date_may_be_twelve_months_ahead_not_more() -> None:
    assert check_flag(mappa_flag(end="2027-11-25"), now=NOW) == []
    [problem] = check_flag(mappa_flag(end="2027-11-27"), now=NOW)
    assert problem.expression == "Flag.period.end"


def test_an_ended_flag_may_keep_its_old_review_date() -> None:
    # Ending a flag (inactive) is never refused for its review date having passed.
    assert (
        check_flag(mappa_flag(status="inactive", end="2025-01-01", start="2024-06-01"), now=NOW)
        == []
    )


def test_a_date_review_ends_at_the_end_of_that_day_in_england() -> None:
    end = period_end_instant(mappa_flag(end="2027-06-01"))
    assert end == datetime.datetime(2027, 6, 1, 23, 0, tzinfo=datetime.UTC)  # BST midnight


def test_a_period_a_datetime_cannot_hold_is_named_not_raised() -> None:
    """The end of 9999-12-31 is the next day, which no datetime holds (OverflowError)."""
    flag = mappa_flag(status="inactive", start="2024-06-01", end="9999-12-31")
    [problem] = check_flag(flag, now=NOW)
    assert problem.expression == "Flag.period.end"
    assert "9999-12-31" not in problem.message
    assert period_end_instant(flag) is None


def test_the_published_profile_is_a_valid_r4_structure_definition() -> None:
    definition = StructureDefinition.model_validate(structure_definition())
    assert definition.url == PROFILE_URL and definition.type == "Flag"
    paths = {e.path for e in definition.differential.element}
    assert {"Flag.subject.identifier.value", "Flag.period.end", "Flag.author.identifier"} <= paths
