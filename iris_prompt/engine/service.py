"""The CDS services this product offers, registered with the protocol layer.

`iris-domestic-abuse-prompt` answers `patient-view` and `iris-domestic-abuse-prompt-encounter-start`
answers `encounter-start`, with the same engine. (One id per hook: a discovery entry's id is the
URL of its service, and CDS clients key services by it.)
One call, after the protocol layer has verified the caller and completed the prefetch:

    prefetch["patient"] (412 unless it is the patient in context) -> rules.refusal? (deceased:
    no cards, logged without identifiers) -> household_check started (own time budget, for a
    patient of any age) -> record.read_record (fast scan of the record's own keys) while the
    lookup's reads are answered (without a FHIR server, nothing to wait for: the record, then
    the household, in one go) -> rules.decide -> cards.cards_for -> store.after_decision
    (audit MAPPA and known-abuse cards before answering; queue the call log) -> response

A patient-facing caller is answered earlier still, by `Engine.screen`, before anything is read.

The clinical decision is `rules.decide`; everything here is wiring and I/O.
"""

import asyncio
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from cds_hooks import (
    CallContext,
    CdsRequest,
    CdsResponse,
    CdsService,
    PreconditionFailed,
    PrefetchData,
    PrefetchTemplate,
    ServiceRegistry,
)
from cds_hooks.errors import Issue
from iris_prompt.codesets.live import CodeSetRegistry, describe_versions
from iris_prompt.engine.cards import CardSettings, cards_for
from iris_prompt.engine.fhir_values import PRACTICE_TIME_ZONE
from iris_prompt.engine.household_check import check_household
from iris_prompt.engine.lookup import HouseholdLookup, RegisterSource
from iris_prompt.engine.record import read_record, resources_in
from iris_prompt.engine.rules import RuleSettings, decide, refusal, rule_settings
from iris_prompt.ops import metrics
from iris_prompt.ops.tracing import tracer
from iris_prompt.settings import Settings
from iris_prompt.store.service import Store

__all__ = [
    "PATIENT_VIEW_PREFETCH",
    "PRACTICE_TIME_ZONE",
    "prefetch_templates",
    "ENCOUNTER_START_SERVICE_ID",
    "SERVICE_ID",
    "Engine",
    "build_registry",
    "card_settings",
    "encounter_start_service",
    "patient_view_service",
]

log = logging.getLogger(__name__)

# Stable: GP systems configure these ids; changing one breaks every integration.
SERVICE_ID = "iris-domestic-abuse-prompt"  # patient-view
ENCOUNTER_START_SERVICE_ID = "iris-domestic-abuse-prompt-encounter-start"


def prefetch_templates() -> dict[str, PrefetchTemplate]:
    """What the services ask for. The household's templates have no protocol fallback: when the
    client did not prefetch them, the household lookup fetches them itself, within its one time
    budget with the members' Patients and Flags, so a slow household costs the household check,
    never the enquiry prompt."""
    return {
        "patient": PrefetchTemplate("Patient/{{context.patientId}}"),
        "conditions": PrefetchTemplate("Condition?patient={{context.patientId}}"),
        "observations": PrefetchTemplate("Observation?patient={{context.patientId}}"),
        # Reason codes of consultations.
        "encounters": PrefetchTemplate("Encounter?patient={{context.patientId}}", required=False),
        # Procedures: a termination of pregnancy is often recorded as one.
        "procedures": PrefetchTemplate("Procedure?patient={{context.patientId}}", required=False),
        # The household: a Group (type person) with the patient among its members.
        "household": PrefetchTemplate(
            "Group?member={{context.patientId}}", required=False, fallback=False
        ),
        # Related people with an NHS number that resolves to a Patient are household members.
        "relatedPersons": PrefetchTemplate(
            "RelatedPerson?patient={{context.patientId}}", required=False, fallback=False
        ),
    }


PATIENT_VIEW_PREFETCH = prefetch_templates()
# The patient's own record. Coded entries are read from these keys only: a household search
# may include other people's Patients and entries, which are never the patient's.
RECORD_KEYS = ("patient", "conditions", "observations", "encounters", "procedures")


def _require_patient(value: dict[str, Any] | None, patient_id: str) -> None:
    """The `patient` prefetch must hold the Patient of `context.patientId`; else 412.

    Without it the service cannot tell the patient's age, and another person could be judged as
    the patient. The diagnostics never echo an id.
    """
    patients = [r for r in resources_in(value) if r.get("resourceType") == "Patient"]
    if not patients:
        raise PreconditionFailed(
            "the patient's record is required",
            [
                Issue(
                    "prefetch 'patient': no Patient resource (null, missing, or not found on "
                    "the FHIR server)",
                    code="incomplete",
                    expression="prefetch.patient",
                )
            ],
        )
    if not any(p.get("id") == patient_id for p in patients):
        raise PreconditionFailed(
            "the patient's record is not the patient in context",
            [
                Issue(
                    "prefetch 'patient': its id is not the context's patientId",
                    code="invalid",
                    expression="prefetch.patient.id",
                )
            ],
        )


def card_settings(settings: Settings) -> CardSettings:
    """What the cards say of this practice: its contacts, and whether to offer the SMART launch."""
    return CardSettings(
        safeguarding_lead=settings.contact_safeguarding_lead,
        mappa_contact=settings.contact_mappa,
        domestic_abuse_service=settings.contact_domestic_abuse_service,
        helpline=settings.contact_helpline,
        smart_launch=settings.smart_client_id is not None,
    )


@dataclass
class Engine:
    """What the service decides with: the live code sets and the deployment's settings."""

    codesets: CodeSetRegistry
    rules: RuleSettings = field(default_factory=RuleSettings)
    cards: CardSettings = field(default_factory=CardSettings)
    lookup: HouseholdLookup = field(default_factory=HouseholdLookup)
    # The durable store (audit, call log); None keeps nothing (tests of the rules' wiring).
    store: Store | None = None
    # The time of the call, in the practice's time zone (tests fix it).
    clock: Callable[[], datetime.datetime] = field(
        default=lambda: datetime.datetime.now(PRACTICE_TIME_ZONE)
    )

    @classmethod
    def from_settings(
        cls,
        codesets: CodeSetRegistry,
        settings: Settings,
        store: Store | None = None,
        register: RegisterSource | None = None,
    ) -> "Engine":
        return cls(
            codesets,
            rules=rule_settings(settings),
            cards=card_settings(settings),
            lookup=HouseholdLookup(
                budget=settings.household_budget_seconds,
                cache_seconds=settings.household_cache_seconds,
                max_members=settings.household_max_members,
                register=register,
            ),
            store=store,
        )

    def screen(self, request: CdsRequest, hook_instance: str) -> CdsResponse | None:
        """Rule 1 before anything is read or fetched: a patient-facing caller gets no cards, and
        none of the record is fetched for it."""
        user_type: str = request.context.user_type  # type: ignore[union-attr]
        if user_type in self.rules.clinician_user_types:
            return None
        log.info("no cards: patient-facing caller hookInstance=%s", hook_instance)
        return CdsResponse(cards=[])

    async def __call__(
        self, request: CdsRequest, prefetch: PrefetchData, call: CallContext
    ) -> CdsResponse:
        codesets = self.codesets.current  # one snapshot for the whole call
        context = request.context
        patient_id: str = context.patient_id  # type: ignore[union-attr]
        user_type: str = context.user_type  # type: ignore[union-attr]
        now = self.clock()
        _require_patient(prefetch.get("patient"), patient_id)
        # Rules 1-2 need the Patient alone: refused calls look nothing up.
        patient = read_record(
            resources_in(prefetch.get("patient")), codesets, patient_id=patient_id
        )
        refused = refusal(patient, settings=self.rules, user_type=user_type)
        if refused is not None:
            log.info("no cards: %s hookInstance=%s", refused, call.hook_instance)
            return CdsResponse(cards=[])
        record_entries = chain.from_iterable(resources_in(prefetch.get(k)) for k in RECORD_KEYS)
        if call.fhir is None:
            # No FHIR server to read: the lookup is CPU work alone, with nothing to overlap, so
            # the call runs to its answer without yielding. A yield here let other calls parse
            # their bodies meanwhile, keeping several records alive at once for the garbage
            # collector to walk (measured: a third of the service's throughput with 8 clients).
            record = read_record(record_entries, codesets, patient_id=patient_id)
            household = await check_household(self.lookup, prefetch, call, patient_id, now)
        else:
            # The household lookup starts first, and its first reads go out (sleep(0)) before
            # the record is read: the FHIR server answers while this call's CPU work is done,
            # and the household budget is not spent waiting behind it.
            lookup = asyncio.create_task(
                check_household(self.lookup, prefetch, call, patient_id, now)
            )
            await asyncio.sleep(0)
            try:
                record = read_record(record_entries, codesets, patient_id=patient_id)
                household = await lookup
            finally:
                lookup.cancel()  # a no-op once it is done; stops it if reading the record failed
        if record.others:
            # Entries about someone else are never the patient's: counted, never identified.
            log.warning(
                "ignored %d coded entries about another person hookInstance=%s",
                record.others,
                call.hook_instance,
            )
        with tracer.start_as_current_span("rules"):
            decision = decide(
                record,
                codesets,
                now=now,
                household=household,
                settings=self.rules,
                user_type=user_type,
            )
        for kind in decision.cards:
            metrics.bound(metrics.CARDS, kind).inc()
        if decision.enquiry_withheld == "age unknown":
            # A record without a readable birth date is a data fault the practice should mend:
            # the patient cannot be prompted until it is.
            log.warning(
                "no enquiry prompt: age unknown (birth date missing or unreadable) hookInstance=%s",
                call.hook_instance,
            )
        elif decision.enquiry_withheld is not None:
            log.info(
                "no enquiry prompt: %s hookInstance=%s",
                decision.enquiry_withheld,
                call.hook_instance,
            )
        log.info(
            "decision: cards=%s suppressed=%s household=%s hookInstance=%s",
            ",".join(decision.cards) or "none",
            "yes" if decision.suppressed_by else "no",
            "checked" if decision.household_checked else "not checked",
            call.hook_instance,
        )
        with tracer.start_as_current_span("cards") as span:
            cards = cards_for(
                decision,
                self.cards,
                base_url=call.base_url,
                hook_instance=call.hook_instance,
                patient_ref=f"Patient/{patient_id}",
                now=now,
            )
            span.set_attribute("cds.cards", len(cards))
        if self.store is not None:
            # Audit what is disclosed before the response leaves (MAPPA detail is withheld if
            # it cannot be audited anywhere), and queue the call for the leads' analytics.
            with tracer.start_as_current_span("store"):
                cards = await self.store.after_decision(
                    request=request,
                    call=call,
                    decision=decision,
                    cards=cards,
                    codeset_versions=codesets.versions(),
                    patient_id=patient_id,
                    now=now,
                )
        return CdsResponse(cards=cards)


DESCRIPTION = (
    "When the record shows NICE indicators of possible domestic abuse, prompts a safe, "
    "private enquiry, and tells the clinician proportionately when a household member "
    "carries a MAPPA risk flag."
)
USAGE = (
    "For clinicians and staff of GP practices in England. Calls from patient-facing "
    "apps (userId Patient or RelatedPerson) never receive cards. Needs the coded record "
    "by prefetch or FHIR access; household checks need a Group of the household and FHIR "
    "access to its members' Patient and Flag resources."
)


def _service(service_id: str, hook: str, engine: Engine) -> CdsService:
    codesets = engine.codesets
    return CdsService(
        id=service_id,
        hook=hook,
        title="IRIS domestic abuse enquiry prompt",
        # The live code-set versions, so a GP system can see which lists it is being judged by.
        description=lambda: f"{DESCRIPTION} Uses {describe_versions(codesets.current)}.",
        prefetch=prefetch_templates(),
        usage_requirements=USAGE,
        handler=engine,
        screen=engine.screen,
    )


def patient_view_service(codesets: CodeSetRegistry, engine: Engine | None = None) -> CdsService:
    return _service(SERVICE_ID, "patient-view", engine or Engine(codesets))


def encounter_start_service(codesets: CodeSetRegistry, engine: Engine | None = None) -> CdsService:
    return _service(ENCOUNTER_START_SERVICE_ID, "encounter-start", engine or Engine(codesets))


def build_registry(codesets: CodeSetRegistry, engine: Engine | None = None) -> ServiceRegistry:
    """Both hooks, served by one engine (one household cache)."""
    engine = engine or Engine(codesets)
    return ServiceRegistry(
        [patient_view_service(codesets, engine), encounter_start_service(codesets, engine)]
    )
