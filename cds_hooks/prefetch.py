"""Prefetch: templates, their rendering, and what a handler receives (`PrefetchData`).

For each template of the service called, the request's prefetch value decides:

- a FHIR resource: used as given;
- `null`: the client has no data (spec: "MUST have a value of null"); used as None, not refetched;
- absent, or an OperationOutcome (the client's prefetch failed): fetched from `fhirServer`
  with `Authorization: Bearer <access_token>`.

A required template that cannot be had answers 412; an optional one is listed in
`PrefetchData.unavailable` and the handler decides. An optional template marked
`fallback=False` is not fetched here: it is listed, rendered, in `PrefetchData.deferred`.

>>> render_template("Condition?patient={{context.patientId}}", {"context.patientId": "123"})
'Condition?patient=123'

Fetching what the client did not send is `cds_hooks.fhir.resolve_prefetch` (the I/O edge).

Spec: https://cds-hooks.hl7.org/2.0/#prefetch-template and
https://cds-hooks.hl7.org/2.0/#fhir-resource-access
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

__all__ = [
    "MissingToken",
    "PrefetchData",
    "PrefetchTemplate",
    "is_operation_outcome",
    "render_template",
    "shape_problem",
    "template_tokens",
]

TOKEN = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
# A FHIR resource type as a path segment (a read or search); lower case is `metadata` or a token.
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")
USER_TOKENS = frozenset(
    {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}
)
CONTEXT_TOKEN = re.compile(r"^context\.[A-Za-z_][A-Za-z0-9_]*$")


def template_tokens(query: str) -> list[str]:
    return TOKEN.findall(query)


@dataclass(frozen=True)
class PrefetchTemplate:
    """A FHIR read or search with `{{tokens}}`; `required=False` degrades instead of 412.

    `fallback=False` (optional templates only): when the client does not send it, it is not
    fetched here but handed to the handler rendered, in `PrefetchData.deferred`, for a service
    that fetches it itself within a deadline of its own (one budget for a whole optional lookup,
    rather than one per template and another for what follows).
    """

    query: str
    required: bool = True
    fallback: bool = True

    def __post_init__(self) -> None:
        if self.required and not self.fallback:
            raise ValueError("a required prefetch template is always fetched (fallback=True)")
        for token in template_tokens(self.query):
            # Spec: a token is a root-level context field or one of the four user tokens.
            if token not in USER_TOKENS and not CONTEXT_TOKEN.match(token):
                raise ValueError(f"prefetch token {{{{{token}}}}} is not allowed by the spec")
        if self.query.startswith(("/", "http:", "https:")):
            raise ValueError("a prefetch template is relative to the FHIR server base")

    @cached_property
    def answer_type(self) -> str | None:
        """The resourceType a FHIR server answers this query with: a search's Bundle, or the
        resource a read (or a version read) names; None when the template alone does not say
        (an operation, `metadata`, a whole reference from a token such as `{{userId}}`).

        >>> PrefetchTemplate("Condition?patient={{context.patientId}}").answer_type
        'Bundle'
        >>> PrefetchTemplate("Patient/{{context.patientId}}").answer_type
        'Patient'
        >>> PrefetchTemplate("Patient/{{context.patientId}}/$everything").answer_type is None
        True
        """
        path, _, _ = self.query.partition("?")
        parts = path.split("/")
        if not RESOURCE_TYPE.fullmatch(parts[0]) or any(p.startswith("$") for p in parts):
            return None
        if len(parts) == 1 or (parts[-1] == "_history" and len(parts) <= 3):
            return "Bundle"
        if len(parts) == 3 and RESOURCE_TYPE.fullmatch(parts[2]):  # a compartment search
            return "Bundle"
        if len(parts) == 2 or (len(parts) == 4 and parts[2] == "_history"):
            return parts[0]
        return None


def shape_problem(template: PrefetchTemplate, value: dict[str, Any]) -> str | None:
    """Why a prefetch value the client sent cannot be the answer to `template`, or None. A
    value of the wrong shape would otherwise read as a record with nothing in it: a prompt
    missed in silence rather than an error the client's developers see."""
    kind = value.get("resourceType")
    if not isinstance(kind, str):
        return "has no resourceType: it is not a FHIR resource"
    expected = template.answer_type
    # A read's answer may come wrapped in a Bundle too; a search's only as a Bundle.
    if expected is not None and kind not in (expected, "Bundle"):
        return f"is {kind!r}, not the {expected} its query answers with"
    if kind == "Bundle" and not isinstance(value.get("entry", []), list):
        return "is a Bundle whose entry is not a list"
    return None


class MissingToken(KeyError):
    """A template names a token the request's context does not fill."""


def render_template(query: str, tokens: Mapping[str, str]) -> str:
    """Fill `{{tokens}}`, percent-encoding each value so it stays one query value."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in tokens:
            raise MissingToken(name)
        return quote(tokens[name], safe="/")

    return TOKEN.sub(fill, query)


class PrefetchData(Mapping[str, dict[str, Any] | None]):
    """Key -> resource (or None for "no data") for every template we could satisfy.

    Keys of optional templates that could not be had are in `unavailable`; templates without
    fallback that the client did not send are in `deferred` (key -> the rendered query, relative
    to the call's FHIR server); neither is in the mapping.
    """

    def __init__(
        self,
        values: Mapping[str, dict[str, Any] | None],
        unavailable: frozenset[str],
        deferred: Mapping[str, str] | None = None,
    ) -> None:
        self._values = dict(values)
        self.unavailable = unavailable
        self.deferred: Mapping[str, str] = dict(deferred or {})

    def __getitem__(self, key: str) -> dict[str, Any] | None:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def is_operation_outcome(value: Any) -> bool:
    """A prefetch value saying the client's own prefetch failed: fetched again."""
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"
