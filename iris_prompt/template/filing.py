"""Filing the template's entries in the EHR's record, after a SMART launch.

- `patient_banner(patient)`: the name, date of birth and NHS number the page shows, so that a
  wrong-patient entry is caught before filing;
- `for_patient(bundle, ...)`: the extracted transaction Bundle made ready to file: every entry
  given the launch encounter, the user as performer or requester, and an identifier with a
  conditional create (`ifNoneExist`), so that filing the same answers twice creates nothing new;
- `file_bundle(http, iss, token, bundle)`: one POST of the transaction to the EHR's FHIR base,
  with the user's token; what was filed (the server's locations), exactly why not, or that
  nobody can tell (sent, and no answer that says what happened).

Every entry keeps the security labels `extract` gave it. Nothing here logs.
"""

import copy
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from iris_prompt.urls import CANONICAL_BASE

__all__ = ["FILING_SYSTEM", "Filed", "file_bundle", "for_patient", "patient_banner"]

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
FILING_SYSTEM = f"{CANONICAL_BASE}/Id/template-filing"
FHIR_JSON = "application/fhir+json"
TIMEOUT = httpx.Timeout(20.0, connect=3.0)
# Failures that happen before the transaction leaves: nothing can have been filed. After any
# other transport failure the EHR may have filed it, and nobody can say.
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


def patient_banner(patient: Mapping[str, Any]) -> dict[str, str]:
    """The patient as the page's banner shows them; missing parts say so."""
    names = patient.get("name") or []
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    text = (
        official.get("text")
        or " ".join([*official.get("given", ()), official.get("family", "")]).strip()
    )
    nhs = next(
        (i.get("value") for i in patient.get("identifier") or () if i.get("system") == NHS_NUMBER),
        None,
    )
    if isinstance(nhs, str) and re.fullmatch(r"[0-9]{10}", nhs):
        nhs = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    return {
        "name": text or "(no name recorded)",
        "birth_date": patient.get("birthDate") or "(no date of birth recorded)",
        "nhs_number": nhs or "(no NHS number recorded)",
    }


def for_patient(
    bundle: Mapping[str, Any], *, encounter: str | None, user: str | None
) -> dict[str, Any]:
    """A copy of `bundle` ready to file (its subject is already the patient's)."""
    ready = copy.deepcopy(dict(bundle))
    filing_id = str(uuid.uuid4())
    for number, entry in enumerate(ready["entry"]):
        resource = entry["resource"]
        kind = resource["resourceType"]
        identifier = {"system": FILING_SYSTEM, "value": f"{filing_id}.{number}"}
        if kind == "QuestionnaireResponse":
            resource["identifier"] = identifier  # 0..1 in R4
            if user:
                resource["author"] = {"reference": user}
        else:
            resource["identifier"] = [identifier]
            if user and kind == "Observation":
                resource["performer"] = [{"reference": user}]
            if user and kind == "ServiceRequest":
                resource["requester"] = {"reference": user}
        if encounter:
            resource["encounter"] = {"reference": f"Encounter/{encounter}"}
        entry["request"]["ifNoneExist"] = f"identifier={FILING_SYSTEM}|{identifier['value']}"
    return ready


@dataclass(frozen=True)
class Filed:
    """The outcome of one filing attempt. `unknown`: not filed as far as anyone can tell, but the
    EHR may have filed it (the transaction was sent and no answer says what happened)."""

    ok: bool
    status: int | None = None
    locations: Sequence[str] = ()
    problems: Sequence[str] = field(default_factory=tuple)
    unknown: bool = False

    @property
    def expired(self) -> bool:
        return self.status == 401


async def file_bundle(
    http: httpx.AsyncClient, iss: str, token: str, bundle: Mapping[str, Any]
) -> Filed:
    try:
        response = await http.post(
            iss.rstrip("/"),
            json=bundle,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": FHIR_JSON,
                "Accept": FHIR_JSON,
            },
            timeout=TIMEOUT,
        )
    except NOT_SENT as error:
        reason = f"The record system could not be reached ({type(error).__name__})."
        return Filed(False, problems=(reason,))
    except httpx.HTTPError as error:
        reason = f"The record system did not answer ({type(error).__name__})."
        return Filed(False, problems=(reason,), unknown=True)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in (200, 201) and isinstance(body, dict):
        if body.get("resourceType") == "Bundle" and body.get("type") == "transaction-response":
            locations = [
                str((entry.get("response") or {}).get("location", ""))
                for entry in body.get("entry") or ()
            ]
            return Filed(True, response.status_code, tuple(locations))
    said = _outcome_texts(body) or [
        f"The record system answered {response.status_code} without saying why."
    ]
    # Only a refusal of the request (4xx) says nothing was filed: a transaction is all or
    # nothing. A success that is no transaction-response, or a server error (a gateway's, even
    # one written as an OperationOutcome), may stand in front of a transaction that was filed.
    unknown = not response.is_client_error
    return Filed(False, response.status_code, problems=tuple(said), unknown=unknown)


def _outcome_texts(body: Any) -> list[str]:
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    texts = []
    for issue in body.get("issue") or ():
        if not isinstance(issue, dict):
            continue
        details = (issue.get("details") or {}).get("text")
        text = details or issue.get("diagnostics") or issue.get("code") or "unspecified"
        where = ", ".join(issue.get("expression") or ())
        severity = issue.get("severity", "error")
        texts.append(f"{severity}: {text}" + (f" ({where})" if where else ""))
    return texts
