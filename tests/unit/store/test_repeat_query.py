"""The repeat hold-back's question to the card log (docs/rules.md, rule 9), on SQLite and on
PostgreSQL, for records still queued and for records written: which of these cards has another
service already given this patient in the same consultation?"""

import dataclasses

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from iris_prompt.store.cardlog import CardLog
from tests.unit.store.card_records import NOW, given


def shown(log: CardLog, *, encounter: str | None = None, service: str = "other") -> set[str]:
    return log.shown_elsewhere(
        patient_key="p1",
        service_id=service,
        encounter_key=encounter,
        content_keys={"ask", "review"},
        now=NOW,
    )


@pytest.mark.parametrize("written", [False, True])
def test_a_card_another_service_gave_within_the_window_is_found(
    engine: Engine, written: bool
) -> None:
    log = CardLog(engine)
    log.add(given(5))
    if written:
        assert log.flush()
    assert shown(log) == {"ask"}
    assert shown(log, service="s") == set()  # the same service again: answered in full
    other = log.shown_elsewhere(
        patient_key="p2", service_id="other", encounter_key=None, content_keys={"ask"}, now=NOW
    )
    assert other == set()  # another patient


@pytest.mark.parametrize("written", [False, True])
def test_the_encounter_decides_when_both_calls_know_it(engine: Engine, written: bool) -> None:
    log = CardLog(engine)
    log.add(given(60, encounter="e1"))  # an hour ago, in the same encounter
    log.add(dataclasses.replace(given(1, encounter="e2"), content_keys=("review",)))
    if written:
        assert log.flush()
    assert shown(log, encounter="e1") == {"ask"}
    assert shown(log, encounter="e2") == {"review"}
    assert shown(log, encounter="e3") == set()
    assert shown(log) == {"review"}  # encounter unknown: the last ten minutes only


def test_a_card_given_after_an_earlier_question_is_found_by_the_next(engine: Engine) -> None:
    """Each question sees what has been written by then: the connection kept for them (on
    SQLite) holds no view of the card log from an earlier question."""
    log = CardLog(engine)
    try:
        assert shown(log) == set()
        log.add(given(5))
        assert log.flush()
        assert shown(log) == {"ask"}
        log.add(dataclasses.replace(given(2), content_keys=("review",), call_uid="second"))
        assert log.flush()
        assert shown(log) == {"ask", "review"}
    finally:
        log.stop()


def test_a_card_log_that_cannot_be_read_raises_a_database_error(engine: Engine) -> None:
    """The store then shows the cards (a prompt shown twice is the safe failure)."""
    log = CardLog(engine)
    try:
        assert shown(log) == set()  # on SQLite, the kept connection is open now
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE issued_card"))
        with pytest.raises(SQLAlchemyError):
            shown(log)
    finally:
        log.stop()
