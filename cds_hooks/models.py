"""CDS Hooks 2.0 wire models: what the request (`request.py`) and the response (`response.py`)
are built of, and serialising them.

Field names follow the spec's camelCase through aliases (`hookInstance`), except where the spec
itself uses snake_case (`fhirAuthorization.access_token`). Inbound models ignore unknown fields;
outbound models (cards and everything in them) use `extra="forbid"`, so a misspelt field fails
where the card is built rather than reaching a clinician's screen. JSON goes out without null
or empty values (spec: "Use of JSON"):

>>> prune_empty({"cards": [{"summary": "Ask", "detail": "", "links": []}], "extension": {}})
{'cards': [{'summary': 'Ask'}]}

Spec: https://cds-hooks.hl7.org/2.0/#calling-a-cds-service and
https://cds-hooks.hl7.org/2.0/#cds-service-response. Invariants carry their spec names
(cds-r-1, cds-resp-1 ...) from the CDS Hooks logical models.
"""

from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

__all__ = [
    "FHIR_ID_PATTERN",
    "AbsoluteUrl",
    "FhirBaseUrl",
    "FhirId",
    "OutboundModel",
    "Text",
    "WireModel",
    "dump_json",
    "prune_empty",
]

# FHIR R4 id datatype (http://hl7.org/fhir/R4/datatypes.html#id). Checking it also keeps ids
# from smuggling query syntax into prefetch URLs.
FHIR_ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
FhirId = Annotated[str, StringConstraints(pattern=FHIR_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]


def _absolute_url(value: str) -> str:
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("must be an absolute http(s) URL (printable ASCII, no spaces)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]


def _no_userinfo(value: str) -> str:
    # httpx turns a user name and password in the URL into Basic auth, sent instead of the
    # caller's Bearer token, and the URL, password and all, would be kept in the audit.
    if "@" in urlsplit(value).netloc:
        raise ValueError("must not carry a user name or password (user:password@host)")
    return value


# A FHIR base URL the service is to read (`fhirServer`): absolute, and without credentials.
FhirBaseUrl = Annotated[str, AfterValidator(_absolute_url), AfterValidator(_no_userinfo)]


class WireModel(BaseModel):
    """Inbound: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        frozen=True,
    )


class OutboundModel(WireModel):
    """Outbound: a field the spec does not define is an error."""

    model_config = ConfigDict(extra="forbid")


def prune_empty(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """Drop null, "", [] and {} at every depth (spec: "Use of JSON"), except top-level `keep`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            pruned = prune_empty(item)
            if pruned in (None, "", [], {}) and key not in keep:
                continue
            out[key] = pruned
        return out
    if isinstance(value, list):
        items = [prune_empty(item) for item in value]
        return [item for item in items if item not in (None, "", [], {})]
    return value


# The spec's two sanctioned empty values: a response with no advice, a server with no services.
_KEEP_EMPTY = frozenset({"cards", "services"})


def dump_json(model: BaseModel) -> bytes:
    """Serialise a wire model with orjson, spec-clean: no null or empty values except a
    top-level `"cards": []` (no advice) or `"services": []` (no services)."""
    raw = model.model_dump_json(by_alias=True, exclude_none=True).encode()
    # An empty value anywhere shows as one of these; without them (a typical response with
    # cards) the JSON is already clean and the walk below, the costlier part, is skipped.
    if not any(empty in raw for empty in _EMPTY_JSON):
        return raw
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return orjson.dumps(prune_empty(data, _KEEP_EMPTY))


# Compact JSON for "", [], {} and null: pydantic writes no whitespace. (Text that merely
# contains one of them only sends the response down the full walk.)
_EMPTY_JSON = (b'""', b"[]", b"{}", b"null")
