"""The household check of one call, as the service runs it (docs/rules.md, "The household").

Which household parts the client could not prefetch, the lookup itself
(`iris_prompt.engine.lookup`, within its own time budget), and what the operators see of it: a
span, the time it took and its outcome counted. It never raises: household data that cannot be
made sense of must not cost the patient the enquiry prompt, so the card then says the household
was not checked.
"""

import datetime
import logging
import time

from cds_hooks import CallContext, PrefetchData
from iris_prompt.engine.fhir_values import local_date
from iris_prompt.engine.household import Household
from iris_prompt.engine.lookup import PARTS, HouseholdLookup
from iris_prompt.engine.record import resources_in
from iris_prompt.ops import metrics
from iris_prompt.ops.observe import fhir_purpose
from iris_prompt.ops.tracing import tracer

__all__ = ["HOUSEHOLD_KEYS", "check_household", "household_outcome"]

# Its lines keep the logger name they had when the service handler made them: operators may
# filter the household's warnings by it (`logger` in JSON logs).
log = logging.getLogger("iris_prompt.engine.service")

# The prefetch keys of the household; the service's own record is read from the others.
HOUSEHOLD_KEYS = ("household", "relatedPersons")


async def check_household(
    lookup: HouseholdLookup,
    prefetch: PrefetchData,
    call: CallContext,
    patient_id: str,
    now: datetime.datetime,
) -> Household:
    """The household lookup, timed, counted by outcome and traced (its FHIR reads too)."""
    purpose = fhir_purpose.set("household")  # its reads, not the call's (reset after)
    started = time.perf_counter()
    try:
        with tracer.start_as_current_span("household lookup") as span:
            household = await _look_up(lookup, prefetch, call, patient_id, now)
            outcome = household_outcome(household)
            span.set_attribute("iris.household", outcome)
    finally:
        fhir_purpose.reset(purpose)
    metrics.HOUSEHOLD_SECONDS.observe(time.perf_counter() - started)
    metrics.bound(metrics.HOUSEHOLD_CHECKS, outcome).inc()
    return household


async def _look_up(
    lookup: HouseholdLookup,
    prefetch: PrefetchData,
    call: CallContext,
    patient_id: str,
    now: datetime.datetime,
) -> Household:
    unavailable = [key for key in HOUSEHOLD_KEYS if key in prefetch.unavailable]
    if unavailable:
        log.warning(
            "household %s: %s unavailable hookInstance=%s",
            "not checked" if len(unavailable) == len(HOUSEHOLD_KEYS) else "part not checked",
            " and ".join(unavailable),
            call.hook_instance,
        )
        if len(unavailable) == len(HOUSEHOLD_KEYS):
            return Household((), checked=False)
    try:
        return await lookup.household(
            fhir=call.fhir,
            patient_id=patient_id,
            groups=resources_in(prefetch.get("household")),
            related_persons=resources_in(prefetch.get("relatedPersons")),
            today=local_date(now),
            hook_instance=call.hook_instance,
            now=now,
            queries={k: prefetch.deferred[k] for k in HOUSEHOLD_KEYS if k in prefetch.deferred},
            not_checked=[PARTS[k] for k in unavailable],
        )
    except Exception as error:
        # Household data we could not make sense of must not cost the patient the enquiry
        # prompt: the card says the household was not checked, and the fault is logged (its
        # type only: a message could hold data from the record).
        log.error(
            "household not checked: unexpected %s hookInstance=%s",
            type(error).__name__,
            call.hook_instance,
        )
        return Household((), checked=False)


def household_outcome(household: Household) -> str:
    """checked, partly (a part not checked), not_checked, or timed_out (over the budget)."""
    if household.timed_out:
        return "timed_out"
    if not household.checked:
        return "not_checked"
    return "partly" if household.not_checked else "checked"
