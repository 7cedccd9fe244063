"""Looking the household up on the client's FHIR server: the I/O edge of `household`.

With the caller's token, through the protocol layer's `FhirClient`, and all within one deadline
(`IRIS_HOUSEHOLD_BUDGET_SECONDS`, default 0.3 s) for the whole check:

1. the household Group (`Group?member=`) and the patient's RelatedPersons, when the client did
   not prefetch them (their templates have no protocol fallback: they come here as queries);
2. each other member's `Patient/{id}` (age, NHS number) and `Flag?subject=Patient/{id}`;
3. for each RelatedPerson NHS number, `Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N`,
   then that Patient's Flags.

A household Group with more other members than a household has (`max_members`,
`IRIS_HOUSEHOLD_MAX_MEMBERS`, default 20) is `TOO_LARGE` and none of its members is read; the
reads of one lookup run at most `concurrency` at a time, so that no call floods the FHIR
server or the connection pool the service's other calls share.

If the Group search or the RelatedPerson search fails (or the server does not support it), the
other route is still checked, and the household names the part that could not be
(`Household.not_checked`). If anything else fails (401, 403, 5xx, timeout, over the deadline)
the household is `UNCHECKED` (with `members_known` when the Group or RelatedPersons had shown
people to check): the enquiry card still shows and says household risk could not be checked.
Nothing of the failure reaches the card or the log beyond its kind: never a URL (ids), a token
or a response body.

Flags are filtered here, not by the server: R4 defines no `status` search parameter for Flag.

Which members to read is the pure `household_plan.household_plan`; this module answers its requests
with FHIR reads and searches (`fhir_query`). Answers are cached briefly (cachetools TTL) under a
key made of the FHIR server's base URL, a SHA-256 of the access token (`FhirClient.cache_scope`)
and the query, so one practice's or one token's data can never be
served to another. Only successful answers are cached, and of them only the fields the household
is built from (`household.essentials`: no names, addresses or notes); the cache is bounded by
the size of what it holds, not by a count of entries.
"""

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import orjson
from cachetools import TTLCache

from cds_hooks import FhirUnavailable
from cds_hooks.fhir import FhirClient
from iris_prompt.engine.household import MAX_MEMBERS, UNCHECKED, Household, essentials
from iris_prompt.engine.household_plan import (
    FlagsOf,
    HouseholdPlan,
    PatientById,
    PatientByNhsNumber,
    RegisterFlagsOf,
    Request,
    household_plan,
)
from iris_prompt.engine.membership import NHS_NUMBER_SYSTEM
from iris_prompt.engine.record import resources_in

__all__ = ["PARTS", "HouseholdLookup", "fhir_query"]

log = logging.getLogger(__name__)

CacheKey = tuple[str, str, str]
Resources = list[dict[str, Any]]
Get = Callable[[str], Awaitable[Resources]]
# The shared MAPPA register (iris_prompt.register): NHS numbers -> the flags in force on each
# at `now`. Never cached: a flag ended or expired there stops showing at once.
RegisterSource = Callable[[Sequence[str], datetime.datetime], Awaitable[Mapping[str, Resources]]]
# The household's two searches (prefetch keys) and the parts of the check they stand for.
PARTS = {"household": "household-group", "relatedPersons": "related-persons"}
REGISTER_PART = "mappa-register"


def fhir_query(request: Request) -> str:
    """The FHIR read or search that answers one request of the household plan."""
    match request:
        case PatientById(patient_id):
            return f"Patient/{quote(patient_id, safe='')}"
        case FlagsOf(patient_id):
            return f"Flag?subject=Patient/{quote(patient_id, safe='')}"
        case PatientByNhsNumber(number):
            return f"Patient?identifier={quote(f'{NHS_NUMBER_SYSTEM}|{number}', safe='')}"
        case RegisterFlagsOf():
            raise ValueError("the register is not read through the FHIR server")


def _size(value: Resources) -> int:
    """Bytes a cached answer stands for (its JSON), for the cache's size bound."""
    return len(orjson.dumps(value))


@dataclass
class HouseholdLookup:
    """The household lookup of one service, with its budget and its cache.

    `cache_bytes` bounds the cache by the size of the (trimmed) answers it holds; `max_members`
    is the largest household looked up; `concurrency` the reads one lookup has in flight at once;
    `register` the shared MAPPA register, consulted within the same budget (None: not at all).
    """

    budget: float = 0.3
    cache_seconds: float = 60.0
    cache_bytes: int = 16 * 2**20
    max_members: int = MAX_MEMBERS
    concurrency: int = 10
    register: RegisterSource | None = None
    _cache: TTLCache[CacheKey, Resources] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cache = TTLCache(maxsize=self.cache_bytes, ttl=self.cache_seconds, getsizeof=_size)

    async def household(
        self,
        *,
        fhir: FhirClient | None,
        patient_id: str,
        groups: Iterable[Mapping[str, Any]],
        related_persons: Iterable[Mapping[str, Any]],
        today: datetime.date,
        hook_instance: str,
        now: datetime.datetime | None = None,
        queries: Mapping[str, str] | None = None,
        not_checked: Iterable[str] = (),
    ) -> Household:
        """The household, or `UNCHECKED` when it cannot be looked up within the budget.

        `queries` are the searches for the household's Group and RelatedPersons the client did
        not prefetch, by prefetch key (`PrefetchData.deferred`): fetched first, within the same
        budget; when one of them fails the other route is still checked. `not_checked` names
        parts (`PARTS` values) already known not to be had (their prefetch was unavailable).
        """
        groups, related_persons = list(groups), list(related_persons)
        queries = dict(queries or {})
        missing = list(not_checked)
        if fhir is None:
            known = False
            if not queries:
                plan = household_plan(
                    patient_id=patient_id,
                    today=today,
                    groups=groups,
                    related_persons=related_persons,
                    now=now,
                    max_members=self.max_members,
                )
                try:
                    next(plan)
                    known = True
                except StopIteration as nobody_else:
                    household: Household = nobody_else.value
                    return self._logged(
                        replace(household, not_checked=tuple(missing)), hook_instance
                    )
            log.warning("household not checked: no fhirServer hookInstance=%s", hook_instance)
            return replace(UNCHECKED, members_known=known)
        get = self._getter(fhir)
        progress = _Progress()
        try:
            async with asyncio.timeout(self.budget):
                keys = list(queries)
                answers = await asyncio.gather(
                    *(get(queries[k]) for k in keys), return_exceptions=True
                )
                for key, found in zip(keys, answers, strict=True):
                    if isinstance(found, FhirUnavailable):
                        # One route failing (or unsupported) leaves the other to check.
                        log.warning(
                            "household part not checked: %s %s hookInstance=%s",
                            PARTS.get(key, key),
                            found.message,
                            hook_instance,
                        )
                        missing.append(PARTS.get(key, key))
                        continue
                    if isinstance(found, BaseException):
                        raise found
                    groups += [r for r in found if r.get("resourceType") == "Group"]
                    related_persons += [
                        r for r in found if r.get("resourceType") == "RelatedPerson"
                    ]
                if set(missing) >= set(PARTS.values()):
                    log.warning(
                        "household not checked: no route left hookInstance=%s", hook_instance
                    )
                    return UNCHECKED
                plan = household_plan(
                    patient_id=patient_id,
                    today=today,
                    groups=groups,
                    related_persons=related_persons,
                    now=now,
                    max_members=self.max_members,
                    register=self.register is not None,
                )
                moment = now or datetime.datetime.now(datetime.UTC)
                household = await _run(plan, get, progress, self._shared(moment))
                if progress.register_failed:
                    log.warning(
                        "household part not checked: %s %s hookInstance=%s",
                        REGISTER_PART,
                        progress.register_failed,
                        hook_instance,
                    )
                    missing.append(REGISTER_PART)
                return self._logged(
                    replace(household, not_checked=tuple(dict.fromkeys(missing))), hook_instance
                )
        except TimeoutError:
            log.warning(
                "household not checked: over the %.0f ms budget hookInstance=%s",
                self.budget * 1000,
                hook_instance,
            )
            return replace(UNCHECKED, members_known=progress.members_known, timed_out=True)
        except FhirUnavailable as error:
            log.warning("household not checked: %s hookInstance=%s", error.message, hook_instance)
            return replace(UNCHECKED, members_known=progress.members_known)

    def _logged(self, household: Household, hook_instance: str) -> Household:
        if household.too_large:
            log.warning(
                "household not checked: more than %d members hookInstance=%s",
                self.max_members,
                hook_instance,
            )
        return household

    def _shared(self, now: datetime.datetime) -> "Shared | None":
        register = self.register
        if register is None:
            return None

        async def flags(numbers: Sequence[str]) -> Mapping[str, Resources]:
            return await register(numbers, now)

        return flags

    def _getter(self, fhir: FhirClient) -> Get:
        """GET a query's resources (their essentials), through the cache, at most
        `concurrency` at a time (per lookup)."""
        server, token_digest = fhir.cache_scope
        in_flight = asyncio.Semaphore(self.concurrency)

        async def get(query: str) -> Resources:
            key = (server, token_digest, query)
            cached = self._cache.get(key)
            if cached is None:
                async with in_flight:
                    answer = resources_in(await fhir.get(query))
                cached = [kept for r in answer if (kept := essentials(r)) is not None]
                try:
                    self._cache[key] = cached
                except ValueError:
                    pass  # larger than the whole cache: used for this call, not kept
            return cached

        return get


@dataclass
class _Progress:
    """How far a lookup got: whether the plan asked for anyone (there are people to check),
    and whether the shared register could not be read (the rest of the check still stands)."""

    members_known: bool = False
    register_failed: str | None = None  # the kind of failure


Shared = Callable[[Sequence[str]], Awaitable[Mapping[str, Resources]]]


async def _answer(
    requests: list[Request], get: Get, shared: Shared | None, progress: _Progress
) -> list[Resources]:
    """One round's answers, in order: FHIR reads concurrently with one register query."""
    numbers = [r.number for r in requests if isinstance(r, RegisterFlagsOf)]
    reads = [r for r in requests if not isinstance(r, RegisterFlagsOf)]

    async def register() -> Mapping[str, Resources]:
        if not numbers or shared is None:
            return {}
        try:
            return await shared(numbers)
        except Exception as error:  # the register's database; the FHIR checks still stand
            progress.register_failed = type(error).__name__
            return {}

    found, answers = await asyncio.gather(
        register(), asyncio.gather(*(get(fhir_query(r)) for r in reads))
    )
    fhir = iter(answers)
    return [
        list(found.get(r.number, ())) if isinstance(r, RegisterFlagsOf) else next(fhir)
        for r in requests
    ]


async def _run(
    plan: HouseholdPlan,
    get: Get,
    progress: _Progress | None = None,
    shared: Shared | None = None,
) -> Household:
    """Answer the plan's requests from the FHIR server (and the register), a round at a time."""
    progress = progress if progress is not None else _Progress()
    try:
        requests = next(plan)
        progress.members_known = True
        while True:
            requests = plan.send(await _answer(requests, get, shared, progress))
    except StopIteration as done:
        household: Household = done.value
        return household
