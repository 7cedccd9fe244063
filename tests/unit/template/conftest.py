"""Fixtures for the recording template's unit tests: responses built as the page builds them."""

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from iris_prompt.template.form import response_from_form

WHEN = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)

# A patient on their own, asked safely, who disclosed current physical abuse.
DISCLOSURE: dict[str, Sequence[str]] = {
    "safety.alone": ["true"],
    "safety.safe-to-ask": ["true"],
    "hark.physical": ["true"],
    "outcome": ["disclosed"],
    "disclosure.when": ["current"],
    "disclosure.types": ["physical"],
}

Build = Callable[..., dict[str, Any]]


@pytest.fixture
def when() -> datetime:
    """The time responses are authored and entries dated in these tests."""
    return WHEN


@pytest.fixture
def build() -> Build:
    """build(form_fields..., dash_yes=N, subject=None): a QuestionnaireResponse dict.

    Starts from nothing; pass `DISCLOSURE` (or any page fields) as a mapping. `dash_yes` answers the
    first N DASH topics yes and the rest no.
    """

    def make(
        fields: Mapping[str, Sequence[str]] = DISCLOSURE,
        *,
        dash_yes: int | None = None,
        subject: str | None = None,
        **extra: Sequence[str],
    ) -> dict[str, Any]:
        form = {**fields, **{k.replace("_", "."): v for k, v in extra.items()}}
        if dash_yes is not None:
            for n in range(1, 25):
                form[f"dash.q{n:02d}"] = ["yes" if n <= dash_yes else "no"]
        response = response_from_form(form, authored=WHEN)
        if subject:
            response["subject"] = {"reference": subject}
        return response

    return make
