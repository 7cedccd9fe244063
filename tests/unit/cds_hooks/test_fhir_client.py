"""The FHIR client against a real FHIR server over HTTP: timeouts, paged searches merged,
page and size limits, next links to another server, https, unreachable servers and answers
that are not FHIR, the access token on every request, a connection pool that survives a
thousand timed-out or cancelled fetches, and one TLS context that verifies. Prefetch
resolution is `test_fhir_prefetch.py`."""

import asyncio
import importlib.abc
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from cds_hooks.errors import FhirUnavailable
from cds_hooks.fhir import FhirClient, FhirLimits
from cds_hooks.transport import ReclaimingTransport, pooled_client, tls_context
from tests.conftest import PATIENT_ID, RunningFhir
from tests.support import web
from tests.unit.cds_hooks.fhir_support import LIMITS

pytestmark = pytest.mark.slow

T = TypeVar("T")


def with_client(fhir: RunningFhir, work: Callable[[FhirClient], Awaitable[T]], **limits: Any) -> T:
    async def run() -> T:
        async with web.AsyncClient() as http:
            limits_ = FhirLimits(
                **({"allow_http": True, "allow_private": True, "total_timeout": 2.0} | limits)
            )
            return await work(FhirClient(http, fhir.base_url, "the-access-token", limits_))

    return asyncio.run(run())


def test_timeout(fhir_server: RunningFhir) -> None:
    fhir_server.server.delay = 1.0
    with pytest.raises(FhirUnavailable, match="timed out"):
        with_client(fhir_server, lambda c: c.get("Patient/p1"), read_timeout=0.3)


def test_total_timeout_bounds_a_slow_paged_search(fhir_server: RunningFhir) -> None:
    fhir_server.server.delay = 0.4
    with pytest.raises(FhirUnavailable, match="timed out"):
        with_client(fhir_server, lambda c: c.get("Condition?patient=p1"), total_timeout=1.0)


class ImportAttempts(importlib.abc.MetaPathFinder):
    """Records every import of a module not yet loaded (the ones that search sys.path)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        self.names.append(fullname)
        return None


def test_reads_after_the_first_search_nothing_on_disk_for_a_module(
    fhir_server: RunningFhir,
) -> None:
    """A read must not try an import each time: the HTTP stack asks for `sniffio` on every
    request (four times), and while it is missing each ask searched every folder of sys.path,
    about 0.2 ms of CPU per FHIR read in the service."""
    attempts = ImportAttempts()

    async def reads(client: FhirClient) -> None:
        await client.get("Patient/p1")  # the first may load what it needs
        sys.meta_path.insert(0, attempts)
        try:
            for _ in range(5):
                assert await client.get("Patient/p1") is not None
        finally:
            sys.meta_path.remove(attempts)

    with_client(fhir_server, reads)
    assert attempts.names == []


def test_read_of_a_missing_resource_is_no_data(fhir_server: RunningFhir) -> None:
    assert with_client(fhir_server, lambda c: c.get("Patient/nobody")) is None


def test_search_pages_are_merged_without_next_link(fhir_server: RunningFhir) -> None:
    bundle = with_client(fhir_server, lambda c: c.get("Condition?patient=p1"))
    assert bundle is not None
    assert [e["resource"]["id"] for e in bundle["entry"]] == [f"c{n}" for n in range(5)]
    assert all(link["relation"] != "next" for link in bundle.get("link", ()))


def test_page_limit(fhir_server: RunningFhir) -> None:
    with pytest.raises(FhirUnavailable, match="more than 2 pages"):
        with_client(fhir_server, lambda c: c.get("Condition?patient=p1"), max_pages=2)


def test_size_limit(fhir_server: RunningFhir) -> None:
    with pytest.raises(FhirUnavailable, match="over the size limit"):
        with_client(fhir_server, lambda c: c.get("Condition?patient=p1"), max_bytes=600)


def test_next_link_to_another_server_is_not_followed(fhir_server: RunningFhir) -> None:
    # Following it would hand the access token to that server.
    fhir_server.server.next_base = "http://127.0.0.2:9"
    with pytest.raises(FhirUnavailable, match="another server"):
        with_client(fhir_server, lambda c: c.get("Condition?patient=p1"))
    assert len(fhir_server.server.requests) == 1


def test_https_is_required_unless_allowed(fhir_server: RunningFhir) -> None:
    with pytest.raises(FhirUnavailable, match="https"):
        with_client(fhir_server, lambda c: c.get("Patient/p1"), allow_http=False)
    assert fhir_server.server.requests == []


def test_unreachable_server() -> None:
    unreachable = RunningFhir(server=None, base_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    with pytest.raises(FhirUnavailable, match="could not be reached"):
        with_client(unreachable, lambda c: c.get("Patient/p1"))


def test_non_fhir_answers() -> None:
    def answer(body: bytes) -> Any:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))

        async def run() -> Any:
            async with web.AsyncClient(transport=transport) as http:
                client = FhirClient(http, "https://fhir.example", "tok", LIMITS)
                return await client.get("Patient/1")

        return asyncio.run(run())

    # A MockTransport stands in for a misbehaving server (answers no real server here gives).
    with pytest.raises(FhirUnavailable, match="not JSON"):
        answer(b"<html>")
    with pytest.raises(FhirUnavailable, match="not a FHIR resource"):
        answer(b'{"id": 1}')
    with pytest.raises(FhirUnavailable, match="OperationOutcome"):
        answer(b'{"resourceType": "OperationOutcome"}')


def test_a_content_length_in_digits_that_are_not_ascii_is_not_trusted() -> None:
    """'¹' passes str.isdigit() and int() refuses it: the declared length is ignored (the body
    is still counted against the limit), never an unhandled ValueError."""
    body = b'{"resourceType": "Patient", "id": "1"}'

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Length": b"\xb9"})

    async def run() -> Any:
        async with web.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            client = FhirClient(http, "https://fhir.example", "tok", LIMITS)
            return await client.get("Patient/1")

    assert asyncio.run(run())["id"] == "1"


def anonymous(fhir: RunningFhir, **limits: Any) -> Any:
    async def run() -> Any:
        async with web.AsyncClient() as http:
            client = FhirClient(http, fhir.base_url, None, FhirLimits(allow_http=True, **limits))
            return await client.get(f"Condition?patient={PATIENT_ID}")

    return asyncio.run(run())


def test_no_request_without_an_access_token(fhir_server: RunningFhir) -> None:
    """Spec: a CDS service presents a valid access token with each FHIR API call."""
    with pytest.raises(FhirUnavailable, match="no access token for fhirServer"):
        anonymous(fhir_server)
    assert fhir_server.server.requests == []


def test_anonymous_reads_only_where_allowed(fhir_server: RunningFhir) -> None:
    """A deployment may allow an open development server (the product: local mode only)."""
    found = anonymous(fhir_server, allow_anonymous=True, allow_private=True)
    assert len(found["entry"]) == 5
    assert {r.authorization for r in fhir_server.server.requests} == {None}


def test_a_thousand_timed_out_or_cancelled_fetches_leave_the_pool_whole(
    fhir_server: RunningFhir,
) -> None:
    """Timed-out and cancelled requests give their connection back: after a thousand of them,
    through a pool of ten connections, a normal fetch still gets one."""

    async def run() -> tuple[list[BaseException | Any], Any]:
        async with pooled_client(httpx.Limits(max_connections=10)) as http:
            slow = FhirClient(http, fhir_server.base_url, "t", FhirLimits(**SLOW))
            fhir_server.server.delay = 5.0
            failures: list[BaseException | Any] = []
            # In waves of 100: the pool's queue is scanned per waiting request, so 500 at once
            # would spend the test's time in that scan, not in timing out.
            for _ in range(5):
                failures += await asyncio.gather(
                    *(slow.get("Patient/p1") for _ in range(100)), return_exceptions=True
                )
            # Cancelled from outside, as the household lookup's budget cancels its reads.
            waiting = FhirClient(http, fhir_server.base_url, "t", LIMITS)
            for _ in range(5):
                tasks = [asyncio.create_task(waiting.get("Patient/p1")) for _ in range(100)]
                await asyncio.sleep(0.05)
                for task in tasks:
                    task.cancel()
                failures += await asyncio.gather(*tasks, return_exceptions=True)
            fhir_server.server.delay = 0.0
            normal = FhirClient(http, fhir_server.base_url, "t", LIMITS)
            return failures, await normal.get("Patient/p1")

    failures, patient = asyncio.run(run())
    assert sum(isinstance(f, FhirUnavailable) for f in failures) == 500
    assert sum(isinstance(f, asyncio.CancelledError) for f in failures) == 500
    assert patient is not None and patient["id"] == PATIENT_ID


SLOW = {"allow_http": True, "allow_private": True, "total_timeout": 0.05, "connect_timeout": 0.05}


@pytest.mark.parametrize(
    "malformed", [{"entry": 5}, {"link": ["x"]}, {"link": 5}, {"entry": [1, 2]}]
)
def test_a_malformed_bundle_is_the_fhir_servers_fault_not_ours(
    fhir_server: RunningFhir, malformed: dict[str, Any]
) -> None:
    bundle = {"resourceType": "Bundle", "id": "b1", "type": "searchset"} | malformed
    fhir_server.server.add(bundle)
    with pytest.raises(FhirUnavailable, match="Bundle has a malformed"):
        with_client(fhir_server, lambda c: c.get("Bundle/b1"))


@pytest.mark.parametrize(("server", "token"), [("https://e.x/fhir\r\nX: 1", "t"), (None, "tökén")])
def test_a_url_or_token_that_cannot_be_sent_is_unavailable(
    fhir_server: RunningFhir, server: str | None, token: str
) -> None:
    async def run() -> Any:
        async with web.AsyncClient() as http:
            client = FhirClient(http, server or fhir_server.base_url, token, LIMITS)
            return await client.get("Patient/p1")

    with pytest.raises(FhirUnavailable, match="could not be reached"):
        asyncio.run(run())


def test_every_pool_verifies_tls_with_the_one_default_context() -> None:
    """Pools share one TLS context, made once, that still verifies certificates and host
    names (a shared context must never be a weaker one)."""
    contexts = []
    for client in (pooled_client(httpx.Limits()), pooled_client(httpx.Limits())):
        transport = client._transport
        assert isinstance(transport, ReclaimingTransport)
        contexts.append(transport._pool._ssl_context)
    assert contexts[0] is contexts[1] is tls_context()
    assert tls_context().verify_mode == ssl.CERT_REQUIRED
    assert tls_context().check_hostname
    # A context given still wins, as httpx's `verify` does.
    own = ssl.create_default_context()
    given = ReclaimingTransport(verify=own)
    assert given._pool._ssl_context is own
