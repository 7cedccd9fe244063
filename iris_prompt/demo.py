"""`iris-prompt demo`: see the service do its job in a minute.

Sends a realistic patient-view call to a running service (by default `make serve` on
127.0.0.1:8000, local mode) and prints the cards. The record is a fictional woman of 34 with
anxiety and depression coded in the last six months; her partner, in the household Group, has
an active MAPPA flag (very high risk to a known adult, medium to children); her son is 8. That is
the shape of the Child T review that this project starts from.

The demo serves the household members' Patient and Flag resources itself, from a small FHIR
endpoint on 127.0.0.1 (standard library only), as a GP system's FHIR server would. Every date is
relative to today, so the record never ages out of the lookback windows.
"""

import datetime
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.engine.membership import NHS_NUMBER_SYSTEM
from iris_prompt.engine.risk_flags import MAPPA_CODE, risk_extension

__all__ = ["demo_request", "household_resources", "main", "render"]

SERVICE_PATH = "/cds-services/iris-domestic-abuse-prompt"


def _ago(today: datetime.date, days: int) -> str:
    return (today - datetime.timedelta(days=days)).isoformat()


def _born(today: datetime.date, years: int) -> str:
    return today.replace(year=today.year - years, day=1).isoformat()


def _condition(rid: str, code: str, display: str, date: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED_CT, "code": code, "display": display}]},
        "subject": {"reference": "Patient/demo-patient"},
        "recordedDate": date,
    }


def household_resources(today: datetime.date) -> list[dict[str, Any]]:
    """The household members and the partner's MAPPA flag, as the demo FHIR endpoint serves."""
    return [
        {
            "resourceType": "Patient",
            "id": "demo-partner",
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9990000018"}],
            "birthDate": _born(today, 33),
        },
        {"resourceType": "Patient", "id": "demo-son", "birthDate": _born(today, 8)},
        {
            "resourceType": "Flag",
            "id": "demo-flag",
            "status": "active",
            "code": {"coding": [{"system": SNOMED_CT, "code": MAPPA_CODE}]},
            "subject": {"reference": "Patient/demo-partner"},
            "period": {"start": _ago(today, 400)},
            "extension": [
                risk_extension("known-adult", "very-high"),
                risk_extension("children", "medium"),
            ],
        },
    ]


def demo_request(today: datetime.date, fhir_server: str | None) -> dict[str, Any]:
    """A patient-view request with full prefetch for the demo patient."""
    member = [{"entity": {"reference": f"Patient/{pid}"}} for pid in ("demo-patient",)]
    member += [{"entity": {"reference": f"Patient/{p}"}} for p in ("demo-partner", "demo-son")]
    conditions = [
        _condition("demo-anxiety", "197480006", "Anxiety disorder", _ago(today, 60)),
        _condition("demo-depression", "35489007", "Depressive disorder", _ago(today, 150)),
    ]
    partner = {
        "resourceType": "RelatedPerson",
        "id": "demo-partner-rp",
        "patient": {"reference": "Patient/demo-patient"},
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9990000018"}],
        "relationship": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                        "code": "DOMPART",
                    }
                ]
            }
        ],
    }
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/demo-gp", "patientId": "demo-patient"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "demo-patient",
                "gender": "female",
                "birthDate": _born(today, 34),
            },
            "conditions": _searchset(conditions),
            "observations": _searchset([]),
            "encounters": _searchset([]),
            "household": _searchset(
                [
                    {
                        "resourceType": "Group",
                        "id": "demo-household",
                        "type": "person",
                        "actual": True,
                        "member": member,
                    }
                ]
            ),
            "relatedPersons": _searchset([partner]),
        },
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": "demo-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Flag.read",
            "subject": "iris-prompt-demo",
        }
    return body


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    bundle["total"] = len(resources)
    if resources:
        bundle["entry"] = [{"resource": r} for r in resources]
    return bundle


@contextmanager
def demo_fhir_server(resources: list[dict[str, Any]]) -> Iterator[str]:
    """Reads and the two searches the household lookup makes, on a free loopback port."""
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            url = urlsplit(self.path)
            path = url.path.strip("/")
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if path in by_ref:
                self._send(200, by_ref[path])
            elif path in ("Flag", "Patient"):
                self._send(200, _searchset([r for r in resources if _matches(r, path, query)]))
            else:
                self._send(404, {"resourceType": "OperationOutcome", "issue": []})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: the demo prints cards, not requests

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _matches(resource: dict[str, Any], kind: str, query: dict[str, str]) -> bool:
    if resource["resourceType"] != kind:
        return False
    if "subject" in query:
        return bool(resource.get("subject", {}).get("reference") == query["subject"])
    if "identifier" in query:
        system, _, value = query["identifier"].partition("|")
        return any(
            i.get("system") == system and i.get("value") == value
            for i in resource.get("identifier", ())
        )
    return False


def render(cards: list[dict[str, Any]]) -> str:
    """The cards as a person reads them in a terminal."""
    if not cards:
        return "No cards."
    out = []
    for number, card in enumerate(cards, 1):
        out += [
            f"--- card {number} of {len(cards)}: {card['indicator'].upper()} ---",
            card["summary"],
            "",
            card.get("detail", ""),
            "",
            f"Source: {card['source']['label']}",
        ]
        for suggestion in card.get("suggestions", ()):
            out.append(f"[suggestion] {suggestion['label']}")
        for link in card.get("links", ()):
            out.append(f"[link] {link['label']}: {link['url']}")
        out.append("")
    return "\n".join(out)


def _shown(url: str) -> str:
    """`url` as printed: never with a user name or password in it. Everything between the
    scheme and the last "@" goes, not only what a URL parser calls the host part: a password
    with a "/" in it would otherwise be read as a path and printed."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "the URL given"
    return f"{scheme}://{rest.rpartition('@')[2]}"


def main(url: str, *, today: datetime.date | None = None) -> tuple[int, str]:
    """Call the service at `url`; (exit status, text to print)."""
    today = today or datetime.date.today()
    with demo_fhir_server(household_resources(today)) as fhir:
        try:
            response = httpx.post(
                url.rstrip("/") + SERVICE_PATH, json=demo_request(today, fhir), timeout=30
            )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            return 1, (
                f"Could not reach the service at {_shown(url)} ({type(error).__name__}). "
                "Start it first: make serve"
            )
    if response.status_code == 401:
        return 1, (
            "The service checks caller JWTs. The demo calls without one: run the service in "
            "local mode (make serve) for the demo."
        )
    if response.status_code != 200:
        return 1, f"The service answered HTTP {response.status_code}: {response.text[:500]}"
    intro = (
        "Patient-view for a fictional woman of 34 with anxiety and depression coded in the last "
        "six months; "
        "her partner has an active MAPPA flag; her son is 8.\n"
    )
    return 0, intro + "\n" + render(response.json()["cards"])
