"""The CDS services this product offers, registered with the protocol layer.

`iris-domestic-abuse-prompt` answers `patient-view`. Its clinical logic (trigger codes, household
MAPPA flags, the enquiry card) arrives with the prompt engine; until then it answers
`{"cards": []}`, which is how CDS Hooks says "no advice".
"""

from cds_hooks import (
    CallContext,
    CdsRequest,
    CdsResponse,
    CdsService,
    PrefetchData,
    PrefetchTemplate,
    ServiceRegistry,
)
from iris_prompt.codeset_runtime import CodeSetRegistry, describe_versions

__all__ = ["PATIENT_VIEW_PREFETCH", "SERVICE_ID", "build_registry", "patient_view_service"]

# Stable: GP systems configure this id; changing it breaks every integration.
SERVICE_ID = "iris-domestic-abuse-prompt"

PATIENT_VIEW_PREFETCH = {
    "patient": PrefetchTemplate("Patient/{{context.patientId}}"),
    "conditions": PrefetchTemplate("Condition?patient={{context.patientId}}"),
    "observations": PrefetchTemplate("Observation?patient={{context.patientId}}"),
    "encounters": PrefetchTemplate("Encounter?patient={{context.patientId}}", required=False),
    # The household: a Group (type person) with the patient among its members.
    "household": PrefetchTemplate("Group?member={{context.patientId}}", required=False),
}


async def _no_advice_yet(
    _request: CdsRequest, _prefetch: PrefetchData, _call: CallContext
) -> CdsResponse:
    return CdsResponse(cards=[])


DESCRIPTION = (
    "When the record shows NICE indicators of possible domestic abuse, prompts a safe, "
    "private enquiry, and tells the clinician proportionately when a household member "
    "carries a MAPPA risk flag."
)


def patient_view_service(codesets: CodeSetRegistry) -> CdsService:
    return CdsService(
        id=SERVICE_ID,
        hook="patient-view",
        title="IRIS domestic abuse enquiry prompt",
        # The live code-set versions, so a GP system can see which lists it is being judged by.
        description=lambda: f"{DESCRIPTION} Uses {describe_versions(codesets.current)}.",
        prefetch=PATIENT_VIEW_PREFETCH,
        usage_requirements=(
            "For clinicians and staff of GP practices in England. Calls from patient-facing "
            "apps (userId Patient or RelatedPerson) never receive cards. Needs the coded record "
            "by prefetch or FHIR access; household checks need a Group of the household."
        ),
        handler=_no_advice_yet,
    )


def build_registry(codesets: CodeSetRegistry) -> ServiceRegistry:
    return ServiceRegistry([patient_view_service(codesets)])
