"""What the register says about itself: the CapabilityStatement at `GET /fhir/metadata` and
the SMART configuration at `GET /fhir/.well-known/smart-configuration`.

The CapabilityStatement lists exactly what `api.py` serves: Flag read, vread, create, update
(versioned, If-Match required), history-instance and search-type with the parameters of
`SEARCH_PARAMETERS`; AuditEvent search-type (`entity`) for a flag's owner; no delete.
"""

from typing import Any

from iris_prompt.register.auth import TOKEN_SECONDS
from iris_prompt.register.clients import SCOPES
from iris_prompt.register.profile import PROFILE_URL

__all__ = ["SEARCH_PARAMETERS", "capability_statement", "smart_configuration"]

# name -> (type, what it searches): every parameter `api.parse_search` accepts.
SEARCH_PARAMETERS: dict[str, tuple[str, str]] = {
    "subject:identifier": (
        "token",
        "the subject's NHS number: https://fhir.nhs.uk/Id/nhs-number|9990000018",
    ),
    "status": ("token", "active, inactive, entered-in-error (comma-separated: any of them)"),
    "date": ("date", "flags whose period overlaps the date (ge, gt, le, lt, eq prefixes)"),
    "_lastUpdated": ("date", "when the flag's current version was stored"),
    "review-date": (
        "date",
        "period.end, the review date (le2026-12-31: due for review by then)",
    ),
    "author:identifier": (
        "token",
        "the publishing organisation: https://fhir.nhs.uk/Id/ods-organization-code|ODS",
    ),
    "_count": ("number", "at most this many flags a page (1 to 1000, default 100)"),
    "_after": (
        "token",
        "the flag id a page starts after (flags come in order of id); a page's `next` link sets it",
    ),
}


def capability_statement(base_url: str, date: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "iris-prompt MAPPA flag register"},
        "implementation": {
            "description": "The shared MAPPA flag register of iris-prompt",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": (
                        "SMART Backend Services: POST /oauth/token with a private_key_jwt "
                        f"client assertion; scopes {', '.join(SCOPES)}; tokens last "
                        f"{TOKEN_SECONDS} s"
                    ),
                },
                "resource": [
                    {
                        "type": "Flag",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Flag",
                        "supportedProfile": [PROFILE_URL],
                        "interaction": [
                            {"code": code}
                            for code in (
                                "read",
                                "vread",
                                "update",
                                "history-instance",
                                "create",
                                "search-type",
                            )
                        ],
                        "versioning": "versioned-update",
                        "readHistory": True,
                        "updateCreate": False,
                        "conditionalCreate": False,
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": what}
                            for name, (kind, what) in SEARCH_PARAMETERS.items()
                        ],
                    },
                    {
                        "type": "AuditEvent",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "entity",
                                "type": "reference",
                                "documentation": (
                                    "Flag/{id}: the flag's access log, for its owner only"
                                ),
                            }
                        ],
                    },
                    {"type": "StructureDefinition", "interaction": [{"code": "read"}]},
                ],
            }
        ],
    }


def smart_configuration(token_url: str) -> dict[str, Any]:
    return {
        "token_endpoint": token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": list(SCOPES),
        "capabilities": ["client-confidential-asymmetric"],
    }
