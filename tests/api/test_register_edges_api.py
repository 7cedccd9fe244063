"""The register's FHIR API at the edges of its input, over HTTP: digits that are not ASCII
('¹', Arabic-Indic '١', which `str.isdigit()` accepts) and dates at the calendar's end. Each is
refused (400 or 404, the parameter named) or answered, never a 500, and nothing is half stored:
no access row for a read that was not answered.

The register runs in the real app, called in process, on SQLite and on a real PostgreSQL.
"""

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from iris_prompt.engine.service import SERVICE_ID
from iris_prompt.store.models import FeedbackItem
from iris_prompt.store.service import Store
from tests.api.register_support import (
    AUDITOR,
    mappa_flag,
    probation,
    publish,
    register_service,
    stored_counts,
)
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.slow

NOT_ASCII = ["%C2%B9", "%D9%A1", "%EF%BC%91"]  # superscript one, Arabic-Indic one, fullwidth one


def expressions(response: object) -> list[str]:
    return [e for issue in response.json()["issue"] for e in issue["expression"]]  # type: ignore[attr-defined]


def test_digits_that_are_not_ascii_are_refused_and_leave_no_access_row(
    es384_key: SigningKey, store: Store
) -> None:
    with register_service(es384_key, store, probation) as svc:
        auth = svc.auth(probation)
        created = publish(svc, probation, mappa_flag())
        flag_id = created["id"]
        vreads = [
            svc.client.get(f"/fhir/Flag/{flag_id}/_history/{digit}", headers=auth)
            for digit in NOT_ASCII
        ]
        counts = [svc.client.get(f"/fhir/Flag?_count={d}", headers=auth) for d in NOT_ASCII]
        audit_counts = [
            svc.client.get(
                f"/fhir/AuditEvent?_count={d}", headers={"Authorization": f"Bearer {AUDITOR}"}
            )
            for d in ["%D9%A1%D9%A0", "%C2%B9"]
        ]
        # Header values are Latin-1 on the wire: '¹' (0xB9) and '²' are the digits it can carry.
        updates = [
            svc.client.request(
                "PUT",
                f"/fhir/Flag/{flag_id}",
                json=created,
                headers={**auth, "If-Match": b'W/"' + digit + b'"'},
            )
            for digit in (b"\xb9", b"\xb2")
        ]
        reads = svc.register.flags.reads_of(flag_id)
    assert [r.status_code for r in vreads] == [404] * len(NOT_ASCII)
    assert all(expressions(r) == ["Flag.id"] for r in vreads)
    assert reads == []  # not one read was answered
    assert [r.status_code for r in counts] == [400] * len(NOT_ASCII)
    assert all(expressions(r) == ["_count"] for r in counts)
    assert [r.status_code for r in audit_counts] == [400, 400]
    assert all(expressions(r) == ["_count"] for r in audit_counts)
    assert [r.status_code for r in updates] == [400, 400]
    assert all(expressions(r) == ["If-Match"] for r in updates)
    assert stored_counts(store) == (1, 1)


LAST_INSTANT = "9999-12-31T23:59:59.999999%2B00:00"


def test_dates_at_the_calendars_end_are_searched_not_a_500(
    es384_key: SigningKey, store: Store
) -> None:
    """The day after 9999-12-31 (or the microsecond after its last) cannot be represented: an
    upper bound there is no bound, a lower bound there leaves nothing after it."""
    with register_service(es384_key, store, probation) as svc:
        auth = svc.auth(probation)
        publish(svc, probation, mappa_flag())
        searches = {
            query: svc.client.get(f"/fhir/Flag?{query}", headers=auth)
            for query in [
                "date=9999-12-31",
                "_lastUpdated=9999-12-31",
                "review-date=le9999-12-31",
                f"date=le{LAST_INSTANT}",
                f"date=gt{LAST_INSTANT}",
                "_lastUpdated=gt9999-12-31",
            ]
        }
        auditor = {"Authorization": f"Bearer {AUDITOR}"}
        audits = [
            svc.client.get(f"/fhir/AuditEvent?date={value}", headers=auditor)
            for value in ["9999-12-31", f"gt{LAST_INSTANT}", f"le{LAST_INSTANT}"]
        ]
    found = {query: (r.status_code, r.json().get("total")) for query, r in searches.items()}
    assert found == {
        "date=9999-12-31": (200, 0),  # the flag's period ends in 2027
        "_lastUpdated=9999-12-31": (200, 0),
        "review-date=le9999-12-31": (200, 1),
        f"date=le{LAST_INSTANT}": (200, 1),
        f"date=gt{LAST_INSTANT}": (200, 0),
        "_lastUpdated=gt9999-12-31": (200, 0),
    }
    assert [r.status_code for r in audits] == [200, 200, 200]


@pytest.mark.parametrize(
    ("period", "field"),
    [
        ({"start": "2026-10-01", "end": "9999-12-31"}, "Flag.period.end"),
        ({"start": "2026-10-01", "end": "9999-12-31T23:30:00-05:00"}, "Flag.period.end"),
        ({"start": "0001-01-01T00:00:00+01:00", "end": "2027-01-01"}, "Flag.period.start"),
    ],
)
def test_a_period_at_the_calendars_edge_is_422_naming_it_and_not_stored(
    es384_key: SigningKey, store: Store, period: dict[str, str], field: str
) -> None:
    """An ended flag has no 12-month review limit, so nothing else stops these dates: one the
    register cannot hold as an instant is refused by name, not a 500."""
    flag = mappa_flag(status="inactive") | {"period": period}
    with register_service(es384_key, store, probation) as svc:
        response = svc.client.post("/fhir/Flag", json=flag, headers=svc.auth(probation))
    assert response.status_code == 422, response.text
    assert expressions(response) == [field]
    assert stored_counts(store) == (0, 0)


def test_a_nul_character_anywhere_is_refused_not_a_server_fault(
    es384_key: SigningKey, store: Store
) -> None:
    """PostgreSQL refuses the NUL character (U+0000) in text with an error, not a miss: a
    search value, a flag id in the path, an access-log entity or a feedback comment holding
    one is refused (400, or 404 for an id no flag has), and nothing is kept."""
    with register_service(es384_key, store, probation) as svc:
        flag = publish(svc, probation, mappa_flag())
        auth = svc.auth(probation)
        auditor = {"Authorization": f"Bearer {AUDITOR}"}
        get = svc.client.get
        answers = {
            "audit entity": get("/fhir/AuditEvent?entity=Flag/a%00b", headers=auditor),
            "audit patient": get("/fhir/AuditEvent?patient=p%00", headers=auditor),
            "search": get("/fhir/Flag?subject:identifier=x%00", headers=auth),
            "read": get("/fhir/Flag/a%00b", headers=auth),
            "history": get("/fhir/Flag/a%00b/_history", headers=auth),
            "access log": get(f"/fhir/AuditEvent?entity=Flag/{flag['id']}%00", headers=auth),
        }
        feedback = {
            "feedback": [
                {
                    "card": "c1",
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-12-01T10:00:00Z",
                    "overrideReason": {"userComment": "not \u0000 alone"},
                }
            ]
        }
        comment = svc.service.post(f"/cds-services/{SERVICE_ID}/feedback", feedback)
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {name: 400 for name in answers} | {"read": 404, "history": 404}
    assert comment.status_code == 400
    assert expressions(comment) == ["feedback[0].overrideReason.userComment"]
    assert stored_counts(store) == (1, 1)  # the flag and its version
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(FeedbackItem)) == 0
