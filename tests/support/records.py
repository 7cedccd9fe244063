"""Builders of small synthetic FHIR R4 resources for engine tests (clearly fictional people).

Every code a test uses comes from the bundled code sets; the names below say what each is.
"""

from typing import Any

from iris_prompt.engine.risk_flags import MAPPA_CODE, risk_extension

SNOMED = "http://snomed.info/sct"
READ_V2 = "http://read.info/readv2"
CTV3 = "http://read.info/ctv3"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

# From codesets/trigger.csv
DEPRESSIVE_DISORDER = (SNOMED, "35489007")
ANXIETY_DISORDER = (SNOMED, "197480006")
ANXIETY_STATE_READ = (READ_V2, "E2000")
MAJOR_DEPRESSION_READ = (READ_V2, "E112.")
SINGLE_MAJOR_DEPRESSIVE_EPISODE_CTV3 = (CTV3, "XE1Y0")
DEPRESSED_MOOD = (SNOMED, "366979004")  # a symptom code
TERMINATION_OF_PREGNANCY = (SNOMED, "386639001")  # a procedure
URINARY_TRACT_INFECTION = (SNOMED, "68566005")  # counts from the third in a year
# From codesets/recording.csv
ENQUIRY_MADE = (SNOMED, "700410005")
ENQUIRY_MADE_READ = (READ_V2, "9r0..")
ENQUIRY_DECLINED = (SNOMED, "700411009")
ENQUIRY_NOT_MADE = (SNOMED, "887331000000105")
# From codesets/known-abuse.csv
VICTIM_OF_DOMESTIC_ABUSE = (SNOMED, "879911000000102")
HISTORY_OF_DOMESTIC_VIOLENCE_READ = (READ_V2, "14X3.")
HISTORY_OF_DOMESTIC_VIOLENCE = (SNOMED, "412732008")
# Not in any set: no sourced CTV3 list of domestic abuse codes exists (codesets/README.md).
HISTORY_OF_DOMESTIC_VIOLENCE_CTV3 = (CTV3, "14X3.")
ABUSE_VICTIM_IN_HOUSEHOLD = (SNOMED, "881081000000100")


def coding(code: tuple[str, str], display: str | None = None) -> dict[str, Any]:
    out = {"system": code[0], "code": code[1]}
    return out | ({"display": display} if display else {})


def condition(
    code: tuple[str, str],
    date: str | None,
    *,
    patient: str = "p1",
    rid: str = "c1",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [coding(code)]},
    }
    if clinical:
        resource["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        }
    if verification:
        resource["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    if date:
        resource["recordedDate"] = date
    return resource | fields


def observation(
    code: tuple[str, str],
    date: str | None,
    *,
    patient: str = "p1",
    rid: str = "o1",
    status: str = "final",
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [coding(code)]},
    }
    if date:
        resource["effectiveDateTime"] = date
    return resource | fields


def encounter(
    reason: tuple[str, str],
    date: str,
    *,
    patient: str = "p1",
    rid: str = "e1",
    status: str = "finished",
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": date},
        "reasonCode": [{"coding": [coding(reason)]}],
    }


def procedure(
    code: tuple[str, str],
    date: str | None,
    *,
    patient: str = "p1",
    rid: str = "pr1",
    status: str = "completed",
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": rid,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [coding(code)]},
    }
    if date:
        resource["performedDateTime"] = date
    return resource | fields


def patient(pid: str, birth_date: str | None, *, nhs: str | None = None, **fields: Any) -> dict:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if birth_date:
        resource["birthDate"] = birth_date
    if nhs:
        resource["identifier"] = [{"system": NHS_NUMBER, "value": nhs}]
    return resource | fields


def household_group(*member_ids: str, rid: str = "household") -> dict[str, Any]:
    return {
        "resourceType": "Group",
        "id": rid,
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{m}"}} for m in member_ids],
    }


def related_person(
    patient_id: str, nhs: str | None, role: str, *, rid: str = "rp1", name: str = "Fictional Person"
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "id": rid,
        "active": True,
        "patient": {"reference": f"Patient/{patient_id}"},
        "relationship": [{"coding": [{"system": ROLE_CODE, "code": role}], "text": name}],
        "name": [{"family": name.split()[-1], "given": [name.split()[0]]}],
    }
    if nhs:
        resource["identifier"] = [{"system": NHS_NUMBER, "value": nhs}]
    return resource


def other_flag(subject: str, *, rid: str | None = None) -> dict[str, Any]:
    """An active Flag that is not a MAPPA flag (the household check reads and ignores it)."""
    return {
        "resourceType": "Flag",
        "id": rid or f"flag-{subject}",
        "status": "active",
        "subject": {"reference": f"Patient/{subject}"},
        "code": {"text": "not a MAPPA flag"},
    }


def mappa_flag(
    subject: str,
    *,
    rid: str = "flag1",
    status: str = "active",
    start: str | None = "2024-01-01",
    end: str | None = None,
    risks: dict[str, str] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": rid,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "https://fhir.interweavedigital.nhs.uk/CodeSystem/Interweave-FlagCategory",
                        "code": "RTO",
                        "display": "Risk to other",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": SNOMED,
                    "code": MAPPA_CODE,
                    "display": "Subject of multi-agency public protection arrangements",
                }
            ],
            # Free text a card must never show.
            "text": "OFFENCE DETAILS MUST NOT APPEAR",
        },
        "subject": {"reference": f"Patient/{subject}"},
        "extension": [risk_extension(g, lv) for g, lv in (risks or {}).items()],
    }
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        resource["period"] = period
    return resource


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    """A searchset Bundle of `resources` (no `entry` when there are none, as FHIR requires)."""
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        out["entry"] = [{"resource": r} for r in resources]
    return out
