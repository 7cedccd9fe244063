"""The register's flag profile published as an R4 StructureDefinition (a differential on Flag),
at /fhir/StructureDefinition/mappa-register-flag: what `profile.check_flag` enforces, for
partners' tools to read."""

from typing import Any

from iris_prompt.engine.risk_flags import MAPPA_CODE
from iris_prompt.register.identifiers import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from iris_prompt.register.profile import (
    PROFILE_URL,
    SNOMED_CT,
    STATUS_REASON_EXTENSION,
)
from iris_prompt.urls import RISK_EXTENSION

__all__ = ["structure_definition"]


def _element(path: str, **rules: Any) -> dict[str, Any]:
    return {"id": path, "path": path.split(":")[0]} | rules


def structure_definition() -> dict[str, Any]:
    """The profile as an R4 StructureDefinition (a differential on Flag)."""
    return {
        "resourceType": "StructureDefinition",
        "id": "mappa-register-flag",
        "url": PROFILE_URL,
        "name": "MappaRegisterFlag",
        "title": "MAPPA flag in the shared register",
        "status": "draft",
        "fhirVersion": "4.0.1",
        "kind": "resource",
        "abstract": False,
        "type": "Flag",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Flag",
        "derivation": "constraint",
        "description": (
            "A MAPPA flag as published by a MAPPA partner: SNOMED CT 495021000000105, the "
            "subject's NHS number (modulus 11 checked), period.start and a review date "
            "(period.end) at most 12 months after publication, risk of serious harm per group, "
            "and the publishing organisation's ODS code. entered-in-error needs a reason."
        ),
        "differential": {
            "element": [
                _element("Flag"),
                _element("Flag.implicitRules", max="0"),
                _element("Flag.modifierExtension", max="0"),
                _element("Flag.extension", min=1),
                _element(
                    "Flag.extension:riskOfSeriousHarm",
                    sliceName="riskOfSeriousHarm",
                    min=1,
                    max="*",
                    type=[{"code": "Extension", "profile": [RISK_EXTENSION]}],
                ),
                _element(
                    "Flag.extension:statusReason",
                    sliceName="statusReason",
                    min=0,
                    max="1",
                    type=[{"code": "Extension", "profile": [STATUS_REASON_EXTENSION]}],
                ),
                _element("Flag.code.coding", min=1),
                _element("Flag.code.coding.system", fixedUri=SNOMED_CT),
                _element("Flag.code.coding.code", fixedCode=MAPPA_CODE),
                _element(
                    "Flag.subject",
                    type=[
                        {
                            "code": "Reference",
                            "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                        }
                    ],
                ),
                _element("Flag.subject.identifier", min=1),
                _element("Flag.subject.identifier.system", min=1, fixedUri=NHS_NUMBER_SYSTEM),
                _element("Flag.subject.identifier.value", min=1),
                _element("Flag.period", min=1),
                _element("Flag.period.start", min=1),
                _element("Flag.period.end", min=1),
                _element(
                    "Flag.author",
                    min=1,
                    type=[
                        {
                            "code": "Reference",
                            "targetProfile": [
                                "http://hl7.org/fhir/StructureDefinition/Organization"
                            ],
                        }
                    ],
                ),
                _element("Flag.author.identifier", min=1),
                _element("Flag.author.identifier.system", min=1, fixedUri=ODS_SYSTEM),
                _element("Flag.author.identifier.value", min=1),
            ]
        },
    }
