"""CDS Hooks 2.0 service request: the models of a call and `parse_request`.

The hook's context model is chosen by `hook` (patient-view, encounter-start, or a generic
context for any other hook); `parse_request` names every problem in an `InvalidRequest`.

>>> request = parse_request({"hook": "patient-view",
...     "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
...     "context": {"userId": "Practitioner/123", "patientId": "1288992"}})
>>> type(request).__name__, request.context.patient_id, request.context.user_type
('PatientViewRequest', '1288992', 'Practitioner')

Spec: https://cds-hooks.hl7.org/2.0/#calling-a-cds-service
"""

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    FieldSerializationInfo,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from cds_hooks.errors import InvalidRequest, issues_from_validation
from cds_hooks.models import FhirBaseUrl, FhirId, Text, WireModel

__all__ = [
    "KNOWN_HOOKS",
    "CdsRequest",
    "EncounterStartContext",
    "EncounterStartRequest",
    "FhirAuthorization",
    "GenericContext",
    "GenericRequest",
    "HookContext",
    "PatientViewContext",
    "PatientViewRequest",
    "parse_request",
]


def _uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID") from None
    return value


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
    pattern = re.compile(rf"({'|'.join(allowed)})/[A-Za-z0-9\-.]{{1,64}}")

    def check(value: str) -> str:
        if not pattern.fullmatch(value):  # not `$`, which a final line break satisfies
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
    fhir_server: FhirBaseUrl | None = None
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
