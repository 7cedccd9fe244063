"""Looking the household up on the client's FHIR server: the I/O edge of `household`.

Given the household Group and RelatedPersons (from prefetch), fetch with the caller's token,
through the protocol layer's `FhirClient`:

- each member's `Patient/{id}` (for the age and NHS number) and `Flag?subject=Patient/{id}`;
- for each RelatedPerson NHS number, `Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N`,
  then that Patient's Flags.

All of it within one time budget (`IRIS_HOUSEHOLD_BUDGET_SECONDS`, default 0.3 s). If anything
fails (401, 403, 5xx, timeout, over the budget) the household is `UNCHECKED`: the enquiry card
still shows and says household risk could not be checked. Nothing of the failure reaches the card
or the log beyond its kind: never a URL (ids), a token or a response body.

Flags are filtered here, not by the server: R4 defines no `status` search parameter for Flag.

Answers are cached briefly (cachetools TTL) under a key made of the FHIR server's base URL, a
SHA-256 of the access token and the query, so one practice's or one token's data can never be
served to another. Only successful answers are cached.
"""

import asyncio
import datetime
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cachetools import TTLCache

from cds_hooks import FhirClient, FhirUnavailable
from iris_prompt.household import (
    NHS_NUMBER_SYSTEM,
    UNCHECKED,
    Household,
    group_member_ids,
    household_from,
    related_nhs_numbers,
)
from iris_prompt.record import resources_in

__all__ = ["HouseholdLookup", "cache_key"]

log = logging.getLogger(__name__)

CacheKey = tuple[str, str, str]


def cache_key(fhir_server: str, access_token: str | None, query: str) -> CacheKey:
    """(server, token digest, query): distinct for every server and every token."""
    digest = hashlib.sha256((access_token or "").encode()).hexdigest()
    return (fhir_server.rstrip("/"), digest, query)


@dataclass
class HouseholdLookup:
    """The household lookup of one service, with its budget and its cache."""

    budget: float = 0.3
    cache_seconds: float = 60.0
    cache_size: int = 4096
    _cache: TTLCache[CacheKey, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cache = TTLCache(maxsize=self.cache_size, ttl=self.cache_seconds)

    async def household(
        self,
        *,
        fhir: FhirClient | None,
        fhir_server: str | None,
        access_token: str | None,
        patient_id: str,
        groups: Iterable[Mapping[str, Any]],
        related_persons: Iterable[Mapping[str, Any]],
        today: datetime.date,
        hook_instance: str,
        now: datetime.datetime | None = None,
    ) -> Household:
        """The household, or `UNCHECKED` when it cannot be looked up within the budget."""
        groups, related_persons = list(groups), list(related_persons)
        member_ids = group_member_ids(groups, patient_id, today, now=now)
        numbers = list(related_nhs_numbers(related_persons, patient_id))
        if not member_ids and not numbers:
            return household_from(patient_id=patient_id, today=today)
        if fhir is None or fhir_server is None:
            log.warning("household not checked: no fhirServer hookInstance=%s", hook_instance)
            return UNCHECKED

        async def get(query: str) -> list[dict[str, Any]]:
            key = cache_key(fhir_server, access_token, query)
            if key not in self._cache:
                self._cache[key] = await fhir.get(query)
            return list(resources_in(self._cache[key]))

        try:
            async with asyncio.timeout(self.budget):
                patients, flags = await self._fetch(get, member_ids, numbers)
        except TimeoutError:
            log.warning(
                "household not checked: over the %.0f ms budget hookInstance=%s",
                self.budget * 1000,
                hook_instance,
            )
            return UNCHECKED
        except FhirUnavailable as error:
            log.warning("household not checked: %s hookInstance=%s", error.message, hook_instance)
            return UNCHECKED
        return household_from(
            patient_id=patient_id,
            today=today,
            groups=groups,
            related_persons=related_persons,
            patients=patients,
            flags=flags,
            now=now,
        )

    @staticmethod
    async def _fetch(
        get: Any, member_ids: list[str], numbers: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        reads = [f"Patient/{quote(pid, safe='')}" for pid in member_ids]
        flag_searches = [f"Flag?subject=Patient/{quote(pid, safe='')}" for pid in member_ids]
        by_number = [
            f"Patient?identifier={quote(f'{NHS_NUMBER_SYSTEM}|{n}', safe='')}" for n in numbers
        ]
        results = await asyncio.gather(*(get(q) for q in reads + flag_searches + by_number))
        patients = [r for found in results[: len(reads)] for r in found]
        flags = [
            r for found in results[len(reads) : len(reads) + len(flag_searches)] for r in found
        ]
        resolved = [r for found in results[len(reads) + len(flag_searches) :] for r in found]
        patients += resolved
        extra = {
            p["id"]
            for p in resolved
            if p.get("resourceType") == "Patient"
            and isinstance(p.get("id"), str)
            and p["id"]
            and p["id"] not in member_ids
        }
        if extra:
            more = await asyncio.gather(
                *(get(f"Flag?subject=Patient/{quote(pid, safe='')}") for pid in sorted(extra))
            )
            flags += [r for found in more for r in found]
        return patients, flags
