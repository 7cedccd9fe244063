"""The register's FHIR API over HTTP, a flag's life: publish, update with and without the
current version, end, entered in error with its reason, history, no delete; search by NHS
number, status and dates; two writers racing on one flag; the CapabilityStatement and the
published profile.

The register runs in the real app, called in process, on SQLite and on a real PostgreSQL
(`store`, from tests/api/conftest.py); partners sign in with SMART Backend Services
assertions (tests/api/register_support.py).
"""

import datetime
import threading

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.structuredefinition import StructureDefinition

from iris_prompt.register.repository import Accessor, VersionConflict
from iris_prompt.store.service import Store
from tests.api.register_support import (
    PROBATION,
    mappa_flag,
    probation,
    publish,
    put,
    register_service,
    stored_counts,
)
from tests.support.searchset import every_page
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.slow

STATUS_REASON = "https://iris-prompt.invalid/fhir/StructureDefinition/status-reason"


def test_publish_update_end_and_history(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        created = publish(svc, probation, mappa_flag())
        flag_id = created["id"]
        stale = put(
            svc, probation, created | {"period": {"start": "2026-10-01", "end": "2027-03-01"}}, "1"
        )
        assert stale.status_code == 200, stale.text
        again = put(svc, probation, created, "1")  # version 1 is no longer current
        missing = put(svc, probation, created, None)
        ended = put(
            svc, probation, stale.json() | {"status": "inactive"}, stale.json()["meta"]["versionId"]
        )
        read = svc.client.get(f"/fhir/Flag/{flag_id}", headers=svc.auth(probation))
        history = svc.client.get(f"/fhir/Flag/{flag_id}/_history", headers=svc.auth(probation))
        first = svc.client.get(f"/fhir/Flag/{flag_id}/_history/1", headers=svc.auth(probation))
        deleted = svc.client.request("DELETE", f"/fhir/Flag/{flag_id}", headers=svc.auth(probation))
    assert created["meta"]["versionId"] == "1"
    assert created["identifier"][-1]["value"] == flag_id
    assert stale.headers["ETag"] == 'W/"2"'
    assert again.status_code == 412
    assert again.json()["issue"][0]["expression"] == ["If-Match"]
    assert missing.status_code == 428
    assert ended.status_code == 200 and ended.json()["meta"]["versionId"] == "3"
    assert read.json()["status"] == "inactive" and read.headers["ETag"] == 'W/"3"'
    versions = [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]]
    assert versions == ["3", "2", "1"]  # every version kept
    assert first.json()["period"]["end"] == "2027-04-01"
    assert deleted.status_code == 405 and deleted.headers["Allow"] == "GET, PUT"
    assert stored_counts(store) == (1, 3)


def test_entered_in_error_needs_a_reason(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        created = publish(svc, probation, mappa_flag())
        no_reason = put(svc, probation, created | {"status": "entered-in-error"}, "1")
        reason = {"url": STATUS_REASON, "valueString": "wrong person: NHS number mistyped"}
        with_reason = created | {
            "status": "entered-in-error",
            "extension": [*created["extension"], reason],
        }
        ended = put(svc, probation, with_reason, "1")
    assert no_reason.status_code == 422
    assert no_reason.json()["issue"][0]["expression"] == ["Flag.extension('status-reason')"]
    assert ended.status_code == 200 and ended.json()["status"] == "entered-in-error"


def test_search_by_nhs_number_status_dates_and_review_date(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        soon = publish(svc, probation, mappa_flag(end="2026-12-15"))
        later = publish(svc, probation, mappa_flag("9990000026", end="2027-06-01"))
        auth = svc.auth(probation)

        def ids(**params: str) -> list[str]:
            response = svc.client.get("/fhir/Flag", params=params, headers=auth)
            assert response.status_code == 200, response.text
            found = [e["resource"]["id"] for e in response.json().get("entry", [])]
            assert response.json()["total"] == len(found)  # one page holds them all
            return sorted(found)

        by_number = ids(**{"subject:identifier": "https://fhir.nhs.uk/Id/nhs-number|9990000026"})
        due = ids(
            **{
                "status": "active",
                "review-date": "le2026-12-26",
                "author:identifier": f"https://fhir.nhs.uk/Id/ods-organization-code|{PROBATION}",
            }
        )
        active_in_may = ids(date="2027-05-01")
        updated = ids(_lastUpdated="ge2026-11-26")
        inactive = ids(status="inactive")
        bad = svc.client.get("/fhir/Flag", params={"colour": "red"}, headers=auth)
        bad_date = svc.client.get("/fhir/Flag", params={"date": "tuesday"}, headers=auth)
    assert by_number == [later["id"]]
    assert due == [soon["id"]]  # the owner's review summary: due within 30 days
    assert active_in_may == [later["id"]]
    assert updated == sorted([soon["id"], later["id"]])
    assert inactive == []
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["colour"]
    assert bad_date.status_code == 400 and bad_date.json()["issue"][0]["expression"] == ["date"]


def test_a_search_past_one_page_says_how_many_and_links_the_next(
    es384_key: SigningKey,
    store: Store,
) -> None:
    """A partner's review summary of five flags, two to a page: each page says five in all,
    and following `next` until there is none gives every flag once, in order of id. A summary
    read from the first page alone would miss three."""
    with register_service(es384_key, store, probation) as svc:
        published = [publish(svc, probation, mappa_flag()) for _ in range(5)]
        auth = svc.auth(probation)
        pages = every_page(svc.client, "/fhir/Flag?status=active&_count=2", auth)
        last = max(f["id"] for f in published)
        past_the_end = svc.client.get(f"/fhir/Flag?status=active&_after={last}", headers=auth)
        bad = svc.client.get("/fhir/Flag", params={"_after": "not an id"}, headers=auth)
    found = [[e["resource"]["id"] for e in page["entry"]] for page in pages]
    assert [len(ids) for ids in found] == [2, 2, 1]
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [i for ids in found for i in ids] == sorted(f["id"] for f in published)
    assert [link["relation"] for link in pages[-1]["link"]] == ["self"]  # the last has no next
    assert pages[1]["link"][0]["url"].endswith(
        f"/fhir/Flag?status=active&_count=2&_after={found[0][1]}"
    )
    assert past_the_end.json()["total"] == 5 and "entry" not in past_the_end.json()
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["_after"]


def test_a_flag_changed_while_a_partner_walks_the_pages_moves_no_flag_out_of_the_walk(
    es384_key: SigningKey,
    store: Store,
) -> None:
    """Flags updated, ended or published between two pages: every flag there was at the start
    is read once, none twice, because a change moves no flag from one page to another."""
    with register_service(es384_key, store, probation) as svc:
        published = [publish(svc, probation, mappa_flag()) for _ in range(5)]
        auth = svc.auth(probation)
        first = svc.client.get("/fhir/Flag?_count=2", headers=auth).json()
        for flag in published:  # each changed after the first page was read
            svc.clock.now += datetime.timedelta(minutes=1)
            changed = flag | {"period": {"start": "2026-10-01", "end": "2027-03-01"}}
            assert put(svc, probation, changed, "1").status_code == 200
        following = next(k["url"] for k in first["link"] if k["relation"] == "next")
        rest = every_page(svc.client, following, auth)
    read = [e["resource"]["id"] for page in [first, *rest] for e in page.get("entry", [])]
    assert sorted(read) == sorted(f["id"] for f in published) and len(read) == 5


def test_two_writers_racing_on_one_flag_one_wins_nothing_lost(
    store: Store,
    es384_key: SigningKey,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        created = publish(svc, probation, mappa_flag())
        register = svc.register.flags
        who = Accessor(probation.client_id, PROBATION)
        start = threading.Barrier(2)
        results: dict[str, str] = {}

        def write(name: str, end: str) -> None:
            start.wait()
            change = created | {"period": {"start": "2026-10-01", "end": end}}
            try:
                register.update(created["id"], change, 1, who, svc.clock())
                results[name] = "won"
            except VersionConflict:
                results[name] = "412"

        threads = [
            threading.Thread(target=write, args=("a", "2027-01-01")),
            threading.Thread(target=write, args=("b", "2027-02-01")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        history = svc.client.get(
            f"/fhir/Flag/{created['id']}/_history", headers=svc.auth(probation)
        )
    assert sorted(results.values()) == ["412", "won"]
    versions = history.json()["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in versions] == ["2", "1"]
    winner = "2027-01-01" if results["a"] == "won" else "2027-02-01"
    assert versions[0]["resource"]["period"]["end"] == winner


def test_metadata_and_the_published_profile(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        metadata = svc.client.get("/fhir/metadata")
        profile = svc.client.get("/fhir/StructureDefinition/mappa-register-flag")
        smart = svc.client.get("/fhir/.well-known/smart-configuration")
    statement = CapabilityStatement.model_validate(metadata.json())
    [flag] = [r for r in statement.rest[0].resource if r.type == "Flag"]
    codes = {i.code for i in flag.interaction}
    assert codes == {"read", "vread", "update", "history-instance", "create", "search-type"}
    assert "delete" not in codes and flag.versioning == "versioned-update"
    assert {p.name for p in flag.searchParam} >= {
        "subject:identifier",
        "status",
        "date",
        "_lastUpdated",
    }
    definition = StructureDefinition.model_validate(profile.json())
    assert definition.url in flag.supportedProfile
    assert smart.json()["token_endpoint"].endswith("/oauth/token")
