"""Feedback over HTTP: validated, committed to the store, duplicates tolerated."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from iris_prompt.store.models import FeedbackItem
from tests.conftest import LiveService
from tests.support.services import EVERY_FEATURE_ID

PATH = f"/cds-services/{EVERY_FEATURE_ID}/feedback"
FEEDBACK = {
    "feedback": [
        {
            "card": "6b0f3c2e-8f6a-4b8e-9d39-2f0d3f7f4b11",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {"code": "not-now", "system": "https://example.org/reasons"},
                "userComment": "Partner present",
            },
            "outcomeTimestamp": "2026-01-05T10:05:31Z",
        }
    ]
}


def test_feedback_is_kept_once_even_when_sent_twice(live_service: LiveService) -> None:
    assert live_service.post(PATH, FEEDBACK).status_code == 200
    assert live_service.post(PATH, FEEDBACK).status_code == 200
    card = FEEDBACK["feedback"][0]["card"]
    with Session(live_service.app.state.store.engine) as session:
        [stored] = session.scalars(select(FeedbackItem).where(FeedbackItem.card_uuid == card))
    assert stored.client == "https://ehr.test.example"
    assert stored.service_id == EVERY_FEATURE_ID
    assert (stored.override_code, stored.override_comment) == ("not-now", "Partner present")
    assert stored.matched is False  # this service never issued that card


def test_invalid_feedback_is_400(live_service: LiveService) -> None:
    bad = {
        "feedback": [
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-01-05T10:05:31Z"}
        ]
    }
    response = live_service.post(PATH, bad)
    assert response.status_code == 400
    assert "cds-fb-2" in response.json()["issue"][0]["diagnostics"]


def test_feedback_for_unknown_service_is_404(live_service: LiveService) -> None:
    assert live_service.post("/cds-services/nope/feedback", FEEDBACK).status_code == 404
