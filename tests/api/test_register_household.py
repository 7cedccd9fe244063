"""The household check consults the register (SQLite and a real PostgreSQL): a partner whose GP
system holds no flag gets the household card from a register flag, which stops showing once
ended or expired; a copy in the GP record counts once; the disclosure is audited and its owner,
and no other organisation, reads the flag's access log."""

import datetime
from typing import Any

from iris_prompt.register.profile import FLAG_IDENTIFIER_SYSTEM
from iris_prompt.store.service import Store
from tests.api.engine_support import (
    call_with,
    cards_of,
    fhir_serving,
    kinds,
    seed_case,
)
from tests.api.register_support import (
    AUDITOR,
    POLICE,
    Partner,
    RegisterService,
    mappa_flag,
    police,
    probation,
    publish,
    register_service,
)
from tests.api.store_support import audit_rows
from tests.support.tokens import SigningKey


def without_gp_flag() -> list[dict[str, Any]]:
    """The seed case, its GP system holding no MAPPA flag on the mother's partner."""
    return [r for r in seed_case().values() if r["resourceType"] != "Flag"]


def household_cards(svc: RegisterService, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with fhir_serving(resources) as fhir:
        return cards_of(call_with(svc.service, resources, fhir, pid="seed-mum"))


def end(svc: RegisterService, partner: Partner, flag: dict[str, Any]) -> None:
    headers = svc.auth(partner) | {"If-Match": f'W/"{flag["meta"]["versionId"]}"'}
    response = svc.client.request(
        "PUT", f"/fhir/Flag/{flag['id']}", json=flag | {"status": "inactive"}, headers=headers
    )
    assert response.status_code == 200, response.text


def test_a_register_flag_reaches_the_household_card_until_it_is_ended(
    es384_key: SigningKey,
    store: Store,
) -> None:
    resources = without_gp_flag()
    with register_service(es384_key, store, probation) as svc:
        before = household_cards(svc, resources)
        flag = publish(svc, probation, mappa_flag())
        shown = household_cards(svc, resources)
        end(svc, probation, flag)
        after = household_cards(svc, resources)
        reference = svc.register.flags.reference(flag["id"])
    assert "mappa" not in kinds(before)
    assert "mappa" in kinds(shown)
    [card] = [c for c, k in zip(shown, kinds(shown), strict=True) if k == "mappa"]
    assert "very high" in card["detail"] and "partner" in card["detail"]
    assert card["indicator"] == "critical"
    assert "mappa" not in kinds(after)
    [row] = audit_rows(store.engine)  # the one disclosure, naming the register's flag
    assert row.entities == [reference] and row.card_uuid == card["uuid"]


def test_a_register_flag_past_its_review_date_is_never_shown(
    es384_key: SigningKey,
    store: Store,
) -> None:
    resources = without_gp_flag()
    with register_service(es384_key, store, probation) as svc:
        publish(svc, probation, mappa_flag(end="2026-11-26T10:30:00Z"))
        shown = household_cards(svc, resources)
        svc.clock.now += datetime.timedelta(hours=1)  # 11:00, past the end
        expired = household_cards(svc, resources)
    assert "mappa" in kinds(shown)
    assert "mappa" not in kinds(expired)


def test_the_same_flag_in_the_register_and_the_gp_record_counts_once(
    es384_key: SigningKey,
    store: Store,
) -> None:
    resources = without_gp_flag()
    with register_service(es384_key, store, probation) as svc:
        flag = publish(svc, probation, mappa_flag())
        copy = {
            "resourceType": "Flag",
            "id": "gp-copy",
            "identifier": [{"system": FLAG_IDENTIFIER_SYSTEM, "value": flag["id"]}],
            "status": "active",
            "code": flag["code"],
            "subject": {"reference": "Patient/seed-partner"},
            "period": flag["period"],
            "extension": flag["extension"],
        }
        cards = household_cards(svc, [*resources, copy])
        reference = svc.register.flags.reference(flag["id"])
    assert kinds(cards).count("mappa") == 1
    [row] = audit_rows(store.engine)
    assert row.entities == [reference]  # the register's, once; not the GP copy as well


def test_the_owner_reads_the_access_log_and_no_other_organisation_does(
    es384_key: SigningKey,
    store: Store,
) -> None:
    resources = without_gp_flag()
    with register_service(es384_key, store, probation, police) as svc:
        flag = publish(svc, probation, mappa_flag())
        household_cards(svc, resources)  # disclosed in a card
        police_read = svc.client.get(f"/fhir/Flag/{flag['id']}", headers=svc.auth(police))
        url = "/fhir/AuditEvent"
        params = {"entity": f"Flag/{flag['id']}"}
        owner = svc.client.get(url, params=params, headers=svc.auth(probation))
        other = svc.client.get(url, params=params, headers=svc.auth(police))
        anonymous = svc.client.get(url, params=params)
        auditor = svc.client.get(
            url,
            params={"entity": svc.register.flags.reference(flag["id"])},
            headers={"Authorization": f"Bearer {AUDITOR}"},
        )
    assert police_read.status_code == 200
    assert owner.status_code == 200, owner.text
    events = [e["resource"] for e in owner.json()["entry"]]
    purposes = sorted(e["purposeOfEvent"][0]["text"] for e in events)
    assert purposes == ["register API", "shown in a household card"]
    [read] = [e for e in events if e["purposeOfEvent"][0]["text"] == "register API"]
    assert read["agent"][0]["who"]["identifier"]["value"] == POLICE
    [shown] = [e for e in events if e["purposeOfEvent"][0]["text"] != "register API"]
    assert "Patient" not in str(shown)  # where, not whose record
    assert other.status_code == 403
    assert anonymous.status_code == 401
    assert auditor.json()["total"] == 1  # the auditor still reads the full disclosure audit


def test_every_answer_about_a_person_is_kept_out_of_caches(
    es384_key: SigningKey,
    store: Store,
) -> None:
    """A card naming household risk, a MAPPA flag, its versions, its access log and the
    service's refusals concern people and are for one caller: no browser, proxy or client
    cache may keep a copy (`Cache-Control: no-store`), whoever asks. The rules page, which
    names no one, may be kept but is checked again each time."""
    resources = without_gp_flag()
    with register_service(es384_key, store, probation) as svc:
        flag = publish(svc, probation, mappa_flag())
        path = f"/fhir/Flag/{flag['id']}"
        with fhir_serving(resources) as fhir:
            card_answer = call_with(svc.service, resources, fhir, pid="seed-mum")
        auth = svc.auth(probation)
        answers = {
            "card": card_answer,
            "flag": svc.client.get(path, headers=auth),
            "history": svc.client.get(f"{path}/_history", headers=auth),
            "version": svc.client.get(f"{path}/_history/1", headers=auth),
            "search": svc.client.get("/fhir/Flag", params={"status": "active"}, headers=auth),
            "owner's log": svc.client.get(
                "/fhir/AuditEvent", params={"entity": f"Flag/{flag['id']}"}, headers=auth
            ),
            "auditor's log": svc.client.get(
                "/fhir/AuditEvent", headers={"Authorization": f"Bearer {AUDITOR}"}
            ),
            "no token": svc.client.get(path),
            "no such flag": svc.client.get("/fhir/Flag/no-such-flag", headers=auth),
        }
        rules = svc.client.get("/rules")
    assert "mappa" in kinds(cards_of(card_answer))
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {name: 200 for name in answers} | {"no token": 401, "no such flag": 404}
    kept = {name: answer.headers.get("cache-control") for name, answer in answers.items()}
    assert kept == {name: "no-store" for name in answers}
    assert rules.status_code == 200 and rules.headers["cache-control"] == "no-cache"


def test_a_flag_nobody_has_seen_has_an_empty_access_log_in_valid_fhir(
    es384_key: SigningKey,
    store: Store,
) -> None:
    """FHIR JSON has no empty arrays: a log with no events is a Bundle with total 0 and no
    entry at all."""
    with register_service(es384_key, store, probation) as svc:
        flag = publish(svc, probation, mappa_flag())
        params = {"entity": f"Flag/{flag['id']}"}
        log = svc.client.get("/fhir/AuditEvent", params=params, headers=svc.auth(probation))
    assert log.status_code == 200, log.text
    assert log.json()["total"] == 0 and "entry" not in log.json()
