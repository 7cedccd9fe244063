"""CDS Hooks 2.0 service response: cards, their links, suggestions and actions.

Outbound models: a field the spec does not define is an error, and the card invariants
(cds-resp-1 ...) are checked when a card is built, not when a clinician reads it.

>>> from cds_hooks.models import dump_json
>>> card = Card(summary="Ask", indicator="info", source=Source(label="Example"))
>>> dump_json(CdsResponse(cards=[card]))
b'{"cards":[{"summary":"Ask","indicator":"info","source":{"label":"Example"}}]}'
>>> dump_json(CdsResponse())
b'{"cards":[]}'

Spec: https://cds-hooks.hl7.org/2.0/#cds-service-response
"""

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from cds_hooks.models import AbsoluteUrl, OutboundModel, Text

__all__ = [
    "Action",
    "Card",
    "CdsResponse",
    "Coding",
    "Indicator",
    "Link",
    "Source",
    "Suggestion",
]

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
