"""Card-log records for the store's unit tests: calls on known days, and a card given minutes
before a fixed now."""

import dataclasses
import datetime

from iris_prompt.store.cardlog import CallRecord

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def call(
    n: int,
    patient: str,
    cards: tuple[str, ...],
    categories: tuple[str, ...] = (),
    practice: str = "A",
) -> CallRecord:
    return CallRecord(
        at=T0 + datetime.timedelta(days=n),
        service_id="s",
        hook="patient-view",
        practice=practice,
        codeset_versions="trigger=1.0.0",
        patient_key=patient,
        cards=cards,
        card_uuids=tuple(f"card-{n}-{i}" for i in range(len(cards))),
        categories=categories,
        codes=tuple(f"http://snomed.info/sct|{c}" for c in categories),
        suppressed=False,
        household_checked=True,
    )


NOW = datetime.datetime(2026, 11, 3, 9, 30, tzinfo=datetime.UTC)


def given(minutes_ago: int, encounter: str | None = None) -> CallRecord:
    record = call(0, "p1", ("enquiry",), ("depression",))
    return dataclasses.replace(
        record,
        at=NOW - datetime.timedelta(minutes=minutes_ago),
        encounter_key=encounter,
        content_keys=("ask",),
    )
