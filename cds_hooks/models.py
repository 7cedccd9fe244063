"""CDS Hooks 2.0 wire models: the service request and the service response.

Field names follow the spec's camelCase through aliases (`hookInstance`), except where the spec
itself uses snake_case (`fhirAuthorization.access_token`). Inbound models ignore unknown fields;
outbound models (cards and everything in them) use `extra="forbid"`, so a misspelt field fails
where the card is built rather than reaching a clinician's screen.

>>> card = Card(summary="Ask", indicator="info", source=Source(label="Example"))
>>> dump_json(CdsResponse(cards=[card]))
b'{"cards":[{"summary":"Ask","indicator":"info","source":{"label":"Example"}}]}'
>>> dump_json(CdsResponse())
b'{"cards":[]}'

Spec: https://cds-hooks.hl7.org/2.0/#calling-a-cds-service and
https://cds-hooks.hl7.org/2.0/#cds-service-response. Invariants carry their spec names
(cds-r-1, cds-resp-1 ...) from the CDS Hooks logical models.
"""

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    FieldSerializationInfo,
    SecretStr,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from cds_hooks.errors import InvalidRequest, issues_from_validation

__all__ = [
    "AbsoluteUrl",
    "Action",
    "Card",
    "CdsRequest",
    "CdsResponse",
    "Coding",
    "EncounterStartContext",
    "EncounterStartRequest",
    "FhirAuthorization",
    "FhirId",
    "GenericContext",
    "GenericRequest",
    "HookContext",
    "Link",
    "PatientViewContext",
    "PatientViewRequest",
    "Source",
    "Suggestion",
    "dump_json",
    "parse_request",
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


def _uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID") from None
    return value


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


# --- Request -------------------------------------------------------------------------------


class FhirAuthorization(WireModel):
    """The bearer token a CDS client lends us for its FHIR server (transient; never logged)."""

    access_token: SecretStr = Field(alias="access_token")
    token_type: str = Field(alias="token_type")
    expires_in: int = Field(alias="expires_in")
    scope: Text
    subject: Text
    patient: FhirId | None = None

    @field_validator("access_token")
    @classmethod
    def _header_safe(cls, value: SecretStr) -> SecretStr:
        # It is sent in an Authorization header: visible ASCII only (RFC 6750 b64token and
        # the opaque tokens servers issue). The message never quotes it.
        token = value.get_secret_value()
        if not token or not all("!" <= c <= "~" for c in token):
            raise ValueError("must be a non-empty token of visible ASCII characters")
        return value

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("must be 'Bearer'")
        return value

    @field_serializer("access_token")
    def _reveal_only_on_request(self, value: SecretStr, info: FieldSerializationInfo) -> str:
        if isinstance(info.context, Mapping) and info.context.get("reveal_secrets"):
            return value.get_secret_value()
        return str(value)


USER_TOKENS = {
    "Practitioner": "userPractitionerId",
    "PractitionerRole": "userPractitionerRoleId",
    "Patient": "userPatientId",
    "RelatedPerson": "userRelatedPersonId",
}


class HookContext(WireModel):
    """Hook-specific context. Fields beyond a hook's definition are kept (minor hook versions
    may add optional fields) and may be used as prefetch tokens."""

    model_config = ConfigDict(extra="allow")

    def prefetch_tokens(self) -> dict[str, str]:
        """Token name -> value for every root-level primitive field, plus the user tokens.

        Spec: https://cds-hooks.hl7.org/2.0/#prefetch-tokens
        """
        tokens: dict[str, str] = {}
        for name, value in self.model_dump(by_alias=True, exclude_none=True).items():
            if isinstance(value, bool):
                tokens[f"context.{name}"] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                tokens[f"context.{name}"] = str(value)
        user = tokens.get("context.userId", "")
        resource_type, _, user_id = user.partition("/")
        if resource_type in USER_TOKENS and user_id:
            tokens[USER_TOKENS[resource_type]] = user_id
        return tokens


def _user_reference(allowed: tuple[str, ...]) -> Any:
    pattern = re.compile(rf"^({'|'.join(allowed)})/[A-Za-z0-9\-.]{{1,64}}$")

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"must be a reference of type {', '.join(allowed)} ([type]/[id])")
        return value

    return AfterValidator(check)


class PatientViewContext(HookContext):
    """patient-view 1.0: https://cds-hooks.hl7.org/hooks/STU1/patient-view.html"""

    user_id: Annotated[
        str, _user_reference(("Practitioner", "PractitionerRole", "Patient", "RelatedPerson"))
    ]
    patient_id: FhirId
    encounter_id: FhirId | None = None

    @property
    def user_type(self) -> str:
        """Practitioner, PractitionerRole, Patient or RelatedPerson."""
        return self.user_id.partition("/")[0]


class EncounterStartContext(HookContext):
    """encounter-start 1.0: https://cds-hooks.hl7.org/hooks/STU1/encounter-start.html"""

    user_id: Annotated[str, _user_reference(("Practitioner", "PractitionerRole"))]
    patient_id: FhirId
    encounter_id: FhirId

    @property
    def user_type(self) -> str:
        return self.user_id.partition("/")[0]


class GenericContext(HookContext):
    """Context of a hook this library has no model for: kept as given."""


PrefetchValue = dict[str, Any] | None


class _RequestBase(WireModel):
    hook: Text
    hook_instance: Annotated[str, AfterValidator(_uuid)]
    fhir_server: AbsoluteUrl | None = None
    fhir_authorization: FhirAuthorization | None = None
    prefetch: dict[str, PrefetchValue] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cds_r_1(self) -> "_RequestBase":
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("cds-r-1: fhirAuthorization requires fhirServer")
        return self


class PatientViewRequest(_RequestBase):
    hook: Literal["patient-view"]
    context: PatientViewContext


class EncounterStartRequest(_RequestBase):
    hook: Literal["encounter-start"]
    context: EncounterStartContext


class GenericRequest(_RequestBase):
    context: GenericContext


KNOWN_HOOKS = frozenset({"patient-view", "encounter-start"})
_GENERIC = "other-hook"


def _hook_tag(value: Any) -> str:
    hook = value.get("hook") if isinstance(value, dict) else getattr(value, "hook", None)
    # A hook that is not a string (a list, an object) is left to the generic model to refuse.
    return hook if isinstance(hook, str) and hook in KNOWN_HOOKS else _GENERIC


# A request's context model is chosen by its `hook`.
CdsRequest = Annotated[
    Annotated[PatientViewRequest, Tag("patient-view")]
    | Annotated[EncounterStartRequest, Tag("encounter-start")]
    | Annotated[GenericRequest, Tag(_GENERIC)],
    Discriminator(_hook_tag),
]
_request_adapter: TypeAdapter[CdsRequest] = TypeAdapter(CdsRequest)


def parse_request(data: Any) -> CdsRequest:
    """Validate a decoded request body, raising InvalidRequest that names every problem.

    A prefetch key is the caller's choice and could be anything (a name, an NHS number): a
    problem with its value is named by the key's position, never by the key."""
    try:
        return _request_adapter.validate_python(data)
    except ValidationError as error:
        prefetch = data.get("prefetch") if isinstance(data, dict) else None
        keys = list(prefetch) if isinstance(prefetch, dict) else []

        def position(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
            if len(loc) > 1 and loc[0] == "prefetch" and loc[1] in keys:
                return ("prefetch", f"[key {keys.index(str(loc[1])) + 1}]", *loc[2:])
            return loc

        issues = issues_from_validation(error, drop_first=KNOWN_HOOKS | {_GENERIC}, rename=position)
        raise InvalidRequest("the CDS Hooks request is invalid", issues) from None


# --- Response ------------------------------------------------------------------------------

Indicator = Literal["info", "warning", "critical"]


class Coding(OutboundModel):
    code: Text
    system: Text
    display: Text | None = None


class Source(OutboundModel):
    label: Text
    url: AbsoluteUrl | None = None
    icon: AbsoluteUrl | None = None
    topic: Coding | None = None


class Action(OutboundModel):
    type: Literal["create", "update", "delete"]
    description: Text
    resource: dict[str, Any] | None = None
    resource_id: Text | None = Field(default=None, alias="resourceId")

    @model_validator(mode="after")
    def _resource_fits_type(self) -> "Action":
        if self.type == "delete":
            # cds-resp-2: a delete names the resource by resourceId, never by resource.
            if self.resource_id is None or self.resource is not None:
                raise ValueError("cds-resp-2: a delete action needs resourceId and no resource")
        elif not (self.resource and isinstance(self.resource.get("resourceType"), str)):
            raise ValueError(f"a {self.type} action needs a FHIR resource with a resourceType")
        return self


class Suggestion(OutboundModel):
    label: Text
    uuid: Text | None = None
    is_recommended: bool | None = None
    actions: list[Action] | None = None


class Link(OutboundModel):
    label: Text
    url: AbsoluteUrl
    type: Literal["absolute", "smart"]
    app_context: Text | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _cds_resp_3(self) -> "Link":
        if self.app_context is not None and self.type != "smart":
            raise ValueError("cds-resp-3: appContext is only for smart links")
        return self


class Card(OutboundModel):
    """One card. The summary limit is checked here, when the card is built."""

    uuid: Text | None = None
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    detail: Text | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: list[Coding] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _invariants(self) -> "Card":
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("cds-resp-6: suggestions need selectionBehavior")
        if self.selection_behavior == "at-most-one" and self.suggestions:
            if sum(1 for s in self.suggestions if s.is_recommended) > 1:
                raise ValueError("cds-resp-1: at-most-one allows one recommended suggestion")
        if any(reason.display is None for reason in self.override_reasons or ()):
            raise ValueError("cds-resp-4: every override reason needs a display")
        return self


class CdsResponse(OutboundModel):
    cards: list[Card] = Field(default_factory=list)
    system_actions: list[Action] | None = None
    extension: dict[str, Any] | None = None


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
