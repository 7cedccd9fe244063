"""A code set as a FHIR R4 ValueSet, and back again.

Export gives a ValueSet with a canonical url, version, status and `compose.include` grouped by
code system, so terminology servers and other services can use our sets. What FHIR has no field
for (the set's purpose, review dates, the categories with their lookback, each code's category,
source and note) travels in extensions defined by this project, so that importing an exported
ValueSet gives back the identical set. Both directions are checked with fhir.resources (R4B,
whose ValueSet is the R4 ValueSet), and an import is checked by the same validator as files.
"""

import datetime
from dataclasses import replace
from typing import Any

from fhir.resources.R4B.valueset import ValueSet
from pydantic import ValidationError

from iris_prompt.codesets.codes import CTV3, READ_V2, SNOMED_CT
from iris_prompt.codesets.files import manifest_toml, members_csv
from iris_prompt.codesets.model import CodeSet, CodeSetError, Member, Problem
from iris_prompt.codesets.validation import check_codeset
from iris_prompt.urls import CANONICAL_BASE, CODESET_EXTENSION_BASE

__all__ = ["codeset_from_valueset", "codeset_to_valueset"]

# An export names its ValueSets under the project's canonical base unless given another FHIR
# base (--base-url); the extensions are the project's own definitions, always under its base.
_PURPOSE = CODESET_EXTENSION_BASE + "codeset-purpose"
_LAST_REVIEWED = CODESET_EXTENSION_BASE + "codeset-last-reviewed"
_NEXT_REVIEW = CODESET_EXTENSION_BASE + "codeset-next-review-due"
_CATEGORY = CODESET_EXTENSION_BASE + "codeset-category"
_MEMBER_CATEGORY = CODESET_EXTENSION_BASE + "codeset-member-category"
_MEMBER_SOURCE = CODESET_EXTENSION_BASE + "codeset-member-source"
_MEMBER_NOTE = CODESET_EXTENSION_BASE + "codeset-member-note"
_SYSTEMS = (SNOMED_CT, READ_V2, CTV3)


def codeset_to_valueset(codeset: CodeSet, *, base_url: str = CANONICAL_BASE) -> dict[str, Any]:
    """The set as a FHIR R4 ValueSet (a JSON-ready dict), validated before it is returned."""
    includes = []
    for system in _SYSTEMS:
        concepts = [
            {
                "code": m.code,
                "display": m.term,
                "extension": [
                    {"url": _MEMBER_CATEGORY, "valueCode": m.category},
                    {"url": _MEMBER_SOURCE, "valueString": m.source},
                    *([{"url": _MEMBER_NOTE, "valueString": m.note}] if m.note else []),
                ],
            }
            for m in codeset.members
            if m.system == system
        ]
        if concepts:
            includes.append({"system": system, "concept": concepts})
    categories = [
        {
            "url": _CATEGORY,
            "extension": [
                {"url": "name", "valueCode": name},
                {"url": "title", "valueString": settings.title},
                {"url": "lookback", "valueString": settings.lookback_text},
                {"url": "reason", "valueString": settings.reason},
                *(
                    [{"url": "minEntries", "valuePositiveInt": settings.min_entries}]
                    if settings.min_entries != 1
                    else []
                ),
            ],
        }
        for name, settings in codeset.categories.items()
    ]
    resource = {
        "resourceType": "ValueSet",
        "id": codeset.id,
        "extension": [
            {"url": _PURPOSE, "valueCode": codeset.purpose},
            {"url": _LAST_REVIEWED, "valueDate": codeset.last_reviewed.isoformat()},
            {"url": _NEXT_REVIEW, "valueDate": codeset.next_review_due.isoformat()},
            *categories,
        ],
        "url": f"{base_url.rstrip('/')}/ValueSet/{codeset.id}",
        "version": codeset.version,
        "name": "".join(part.capitalize() for part in codeset.id.split("-")),
        "title": codeset.title,
        "status": codeset.status,
        "experimental": False,
        "publisher": codeset.owner,
        "description": codeset.description,
        "compose": {"include": includes},
    }
    ValueSet.model_validate(resource)
    return resource


def codeset_from_valueset(
    resource: dict[str, Any], *, file: str = "ValueSet", today: datetime.date | None = None
) -> CodeSet:
    """Read a ValueSet exported by `codeset_to_valueset` back into a checked `CodeSet`.

    Raises `CodeSetError` when it is not a valid ValueSet or the set it holds fails the checks
    that code-set files must pass.
    """
    try:
        ValueSet.model_validate(resource)
    except ValidationError as error:
        problems = [
            Problem(file, f"not a valid FHIR ValueSet: {'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in error.errors()
        ]
        raise CodeSetError(problems) from None
    extensions = resource.get("extension", [])
    simple = {e["url"]: _value(e) for e in extensions if e.get("url") != _CATEGORY}
    if _PURPOSE not in simple:
        message = "this ValueSet was not exported from a code set (no code-set extensions)"
        raise CodeSetError([Problem(file, message)])
    categories = {}
    for extension in extensions:
        if extension.get("url") == _CATEGORY:
            parts = {p["url"]: _value(p) for p in extension.get("extension", [])}
            if "minEntries" in parts:
                parts["min_entries"] = parts.pop("minEntries")
            categories[str(parts.pop("name", ""))] = parts
    manifest = {
        "id": resource.get("id", ""),
        "title": resource.get("title", ""),
        "version": resource.get("version", ""),
        "status": resource.get("status", ""),
        "owner": resource.get("publisher", ""),
        "last_reviewed": simple.get(_LAST_REVIEWED, ""),
        "next_review_due": simple.get(_NEXT_REVIEW, ""),
        "purpose": simple[_PURPOSE],
        "description": resource.get("description", ""),
        "categories": categories,
    }
    rows = []
    for include in resource.get("compose", {}).get("include", []):
        system = include.get("system", "")
        for concept in include.get("concept", []):
            values = {e["url"]: _value(e) for e in concept.get("extension", [])}
            rows.append(
                Member(
                    system,
                    concept.get("code", ""),
                    concept.get("display", ""),
                    str(values.get(_MEMBER_CATEGORY, "")),
                    str(values.get(_MEMBER_SOURCE, "")),
                    str(values.get(_MEMBER_NOTE, "")),
                )
            )
    checked = check_codeset(
        manifest_toml(manifest),
        members_csv(rows),
        manifest_file=file,
        members_file=file,
        today=today or datetime.date.today(),
    )
    if checked.codeset is None:
        # Line numbers would point into text made from the JSON, so leave them out.
        raise CodeSetError([replace(p, line=None) for p in checked.errors])
    return checked.codeset


def _value(extension: dict[str, Any]) -> Any:
    """The value[x] of an extension, whatever its type."""
    return next((v for k, v in extension.items() if k.startswith("value")), "")
