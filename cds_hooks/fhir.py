"""The FHIR fallback: GETs against a client's FHIR server, and completing a call's prefetch.

`FhirClient` reads and searches one client's FHIR server with the access token the client lent
for the call, within `FhirLimits`; `resolve_prefetch` completes a call's prefetch from it (see
`cds_hooks.prefetch` for what each prefetch value means).

No request without the token: the spec requires a CDS service to "present a valid access token
to the FHIR server with each API call", so a client built without one refuses every GET
(`FhirUnavailable`, which answers 412 for required data) unless `FhirLimits.allow_anonymous`
is set, for an open development server only.

Spec: https://cds-hooks.hl7.org/2.0/#fhir-resource-access
"""

import asyncio
import hashlib
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from cds_hooks.errors import FhirNotAsked, FhirUnavailable, Issue, PreconditionFailed
from cds_hooks.numbers import ascii_number
from cds_hooks.prefetch import (
    MissingToken,
    PrefetchData,
    PrefetchTemplate,
    is_operation_outcome,
    render_template,
    shape_problem,
)

__all__ = ["FhirClient", "FhirLimits", "resolve_prefetch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FhirLimits:
    """Bounds on every fetch from a client's FHIR server: a slow or huge answer fails."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_pages: int = 20
    max_bytes: int = 32 * 1024 * 1024
    allow_http: bool = False
    # Read a fhirServer the client lent no access token for (fhirAuthorization absent): never
    # in production, where every FHIR call carries the caller's token; an open development
    # server only.
    allow_anonymous: bool = False
    # Loopback, link-local and private addresses are refused unless allowed here (development,
    # tests) or the server is on the caller's allow-list: a fhirServer is the caller's choice,
    # and must not make this service a probe of its own network.
    allow_private: bool = False


class FhirClient:
    """GETs against one client's FHIR server with its access token, within `FhirLimits`.

    Searches follow Bundle `next` links (only on the same server, so the token never goes
    elsewhere) and come back as one Bundle. Every failure is a `FhirUnavailable` whose message
    names the status or cause but never the URL (which holds patient ids) or the token.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        access_token: str | None,
        limits: FhirLimits,
        allowed_servers: Sequence[str] = (),
    ) -> None:
        """`allowed_servers`: the calling client's allow-list of FHIR base URLs (its issuer's
        `fhir_servers`); when it is not empty, no other server is read, and those on it are
        read whatever their address."""
        self._http = http
        self._base = base_url.rstrip("/")
        allowed = {server.rstrip("/") for server in allowed_servers}
        self._listed = self._base in allowed
        self._refused: str | None = None
        if allowed and not self._listed:
            self._refused = "fhirServer is not on the client's allow-list (fhir_servers)"
        self._address_checked = self._listed or limits.allow_private
        self._headers = {"Accept": "application/fhir+json"}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"
        self._limits = limits
        self._timeout = httpx.Timeout(
            limits.read_timeout, connect=limits.connect_timeout, pool=limits.connect_timeout
        )
        # Whose answers these are: the server and a digest of the token, never the token itself.
        digest = hashlib.sha256((access_token or "").encode()).hexdigest()
        self.cache_scope: tuple[str, str] = (self._base, digest)

    async def get(self, relative: str) -> dict[str, Any] | None:
        """A read (`Patient/1`: None when it does not exist) or a search (a whole Bundle)."""
        if urlsplit(self._base).scheme != "https" and not self._limits.allow_http:
            raise FhirNotAsked("fhirServer must use https")
        if "Authorization" not in self._headers and not self._limits.allow_anonymous:
            raise FhirNotAsked(
                "no access token for fhirServer (fhirAuthorization is missing); the service "
                "makes no FHIR request without one"
            )
        try:
            async with asyncio.timeout(self._limits.total_timeout):
                await self._check_address()
                return await self._get_all_pages(relative)
        except TimeoutError:
            raise FhirUnavailable("the FHIR server timed out") from None
        except httpx.TimeoutException:
            raise FhirUnavailable("the FHIR server timed out") from None
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeEncodeError) as error:
            # InvalidURL and UnicodeEncodeError: a fhirServer or token that cannot be sent
            # (the request models refuse both; this is the last line).
            raise FhirUnavailable(
                f"the FHIR server could not be reached ({type(error).__name__})"
            ) from None

    async def _check_address(self) -> None:
        """Refuse a server off the client's allow-list, or at a loopback, link-local, private
        or otherwise special address (each address its name resolves to), once per call."""
        if self._refused is None and not self._address_checked:
            self._refused = await _special_address(urlsplit(self._base).hostname or "")
            self._address_checked = True
        if self._refused is not None:
            raise FhirUnavailable(self._refused)

    async def _get_all_pages(self, relative: str) -> dict[str, Any] | None:
        is_read = "?" not in relative and relative.count("/") == 1
        budget = self._limits.max_bytes
        first, size = await self._get_json(f"{self._base}/{relative.lstrip('/')}", budget, is_read)
        if first is None or first.get("resourceType") != "Bundle":
            return first
        budget -= size
        entries = _listed(first, "entry")
        next_url, pages = _next_link(first), 1
        while next_url is not None:
            if not self._on_this_server(next_url):
                raise FhirUnavailable("the FHIR server's next link points to another server")
            pages += 1
            if pages > self._limits.max_pages:
                raise FhirUnavailable(f"the search has more than {self._limits.max_pages} pages")
            page, size = await self._get_json(next_url, budget, False)
            if page is None or page.get("resourceType") != "Bundle":
                raise FhirUnavailable("a next page of the search is not a Bundle")
            budget -= size
            entries.extend(_listed(page, "entry"))
            next_url = _next_link(page)
        # One Bundle for the whole search: every entry, no next link left to follow.
        merged = {key: value for key, value in first.items() if key not in ("link", "entry")}
        links = [link for link in _listed(first, "link") if link.get("relation") != "next"]
        if links:
            merged["link"] = links
        if entries:
            merged["entry"] = entries
        return merged

    def _on_this_server(self, url: str) -> bool:
        return url == self._base or url.startswith((self._base + "/", self._base + "?"))

    async def _get_json(
        self, url: str, budget: int, none_if_missing: bool
    ) -> tuple[dict[str, Any] | None, int]:
        async with self._http.stream(
            "GET", url, headers=self._headers, timeout=self._timeout
        ) as response:
            status = response.status_code
            if status == 404 and none_if_missing:
                return None, 0
            if status != 200:
                raise FhirUnavailable(f"the FHIR server answered HTTP {status}")
            declared = ascii_number(response.headers.get("content-length", ""))
            if declared is not None and declared > budget:
                raise FhirUnavailable("the FHIR server's answer is over the size limit")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > budget:
                    raise FhirUnavailable("the FHIR server's answer is over the size limit")
                chunks.append(chunk)
        try:
            body = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            raise FhirUnavailable("the FHIR server's answer is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirUnavailable("the FHIR server's answer is not a FHIR resource")
        if body["resourceType"] == "OperationOutcome":
            raise FhirUnavailable("the FHIR server answered with an OperationOutcome")
        return body, size


async def _special_address(host: str) -> str | None:
    """Why `host` may not be read (None: it may): it is, or resolves to, an address that is
    not public."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return "fhirServer's host name could not be resolved"
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            return "fhirServer is at a loopback, link-local or private address"
    return None


def _listed(bundle: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A Bundle's `entry` or `link` array; anything but an array of objects is a malformed
    answer (412), never a fault of ours."""
    value = bundle.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise FhirUnavailable(f"the FHIR server's Bundle has a malformed {key}")
    return value


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in _listed(bundle, "link"):
        if link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


async def resolve_prefetch(
    templates: Mapping[str, PrefetchTemplate],
    given: Mapping[str, dict[str, Any] | None] | None,
    tokens: Mapping[str, str],
    fhir: FhirClient | None,
) -> PrefetchData:
    """Complete the prefetch for one call; raises PreconditionFailed for required data."""
    given = given or {}
    values: dict[str, dict[str, Any] | None] = {}
    to_fetch: dict[str, str] = {}
    deferred: dict[str, str] = {}
    problems: list[Issue] = []
    unavailable: set[str] = set()

    def cannot_have(key: str, why: str) -> None:
        if templates[key].required:
            problems.append(
                Issue(f"prefetch {key!r}: {why}", code="incomplete", expression=f"prefetch.{key}")
            )
        else:
            unavailable.add(key)

    for key, template in templates.items():
        if key in given and not is_operation_outcome(given[key]):
            sent = given[key]
            wrong = None if sent is None else shape_problem(template, sent)
            if wrong is None:
                values[key] = sent
            else:
                cannot_have(key, wrong)
            continue
        try:
            query = render_template(template.query, tokens)
        except MissingToken as missing:
            cannot_have(key, f"the context has no value for {{{{{missing.args[0]}}}}}")
            continue
        if not template.fallback and fhir is not None:
            deferred[key] = query  # the handler fetches it, within its own deadline
        else:
            to_fetch[key] = query

    if to_fetch and fhir is None:
        for key in to_fetch:
            cannot_have(key, "not in the request and no fhirServer to fetch it from")
        to_fetch = {}

    if to_fetch and fhir is not None:
        keys = list(to_fetch)
        results = await asyncio.gather(
            *(fhir.get(to_fetch[key]) for key in keys),
            return_exceptions=True,
        )
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, FhirUnavailable):
                # The server's reason stays in the log: told to the caller, it would make
                # fhirServer a probe of what answers where ("HTTP 403", "ConnectError").
                log.warning("prefetch %r could not be fetched: %s", key, result.message)
                told = isinstance(result, FhirNotAsked)
                cannot_have(
                    key, result.message if told else "could not be fetched from the FHIR server"
                )
            elif isinstance(result, BaseException):
                raise result
            else:
                values[key] = result

    if problems:
        raise PreconditionFailed("required prefetch data could not be obtained", problems)
    return PrefetchData(values, frozenset(unavailable), deferred)
