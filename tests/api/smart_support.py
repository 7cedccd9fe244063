"""A fake EHR for the template's SMART routes in process: its SMART configuration, token
endpoint, keys, Patient reads and transaction endpoint answered by an `httpx.MockTransport`,
so a test can set what the EHR says (the user, the patient, a timeout) without the launcher.
The launcher itself is driven end to end in `tests/browser/test_smart_launch.py`."""

import asyncio
import inspect
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from cds_hooks.http import install_error_handlers
from iris_prompt.template.api import template_router
from iris_prompt.template.launch_api import smart_router
from iris_prompt.template.sessions import COOKIE, SessionStore
from iris_prompt.template.smart import SmartClient
from tests.support.inprocess import SyncClient, in_process
from tests.support.tokens import generate_key, jwks

ISS = "https://ehr.example/fhir"
OTHER_ISS = "https://other-ehr.example/fhir"
CLIENT_ID = "iris-prompt"
KEY = generate_key("RS384")
DISCLOSURE = {
    "safety.alone": "true",
    "safety.safe-to-ask": "true",
    "hark.physical": "true",
    "outcome": "disclosed",
    "disclosure.when": "current",
    "disclosure.types": "physical",
}


def patient(patient_id: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"use": "official", "family": family, "given": ["Test"]}],
        "birthDate": "1990-01-01",
    }


@dataclass
class FakeEhr:
    """What the EHR answers; change the fields between calls."""

    patient: str = "p1"
    encounter: str | None = "e1"
    fhir_user: str | None = "Practitioner/gp1"
    id_token: bool = True
    expires_in: int = 3600
    patients: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"p1": patient("p1", "Alpha"), "p2": patient("p2", "Beta")}
    )
    # The transaction's answer: a function of the request, or a coroutine function (may raise
    # an httpx error).
    transaction: Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]] | None = None
    transactions: list[dict[str, Any]] = field(default_factory=list)
    nonces: dict[str, str] = field(default_factory=dict)
    # For races between two windows: set by `hold_filing`, a transaction is answered only once
    # a Patient has been read (a sign-in under way elsewhere), whichever the EHR saw first.
    patient_read: asyncio.Event | None = None

    def hold_filing(self) -> None:
        self.patient_read = asyncio.Event()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        for iss in (ISS, OTHER_ISS):
            if url == iss + "/.well-known/smart-configuration":
                return httpx.Response(
                    200,
                    json={
                        "authorization_endpoint": iss + "/authorize",
                        "token_endpoint": iss + "/token",
                        "jwks_uri": iss + "/keys",
                        "code_challenge_methods_supported": ["S256"],
                    },
                )
            if url == iss + "/keys":
                return httpx.Response(200, json=jwks(KEY))
            if url == iss + "/token":
                return self._token(iss, request)
            if url.startswith(iss + "/Patient/"):
                if self.patient_read is not None:
                    self.patient_read.set()
                found = self.patients.get(url.rsplit("/", 1)[1])
                return httpx.Response(200, json=found) if found else httpx.Response(404)
            if url == iss and request.method == "POST":
                if self.patient_read is not None:
                    await self.patient_read.wait()
                self.transactions.append(orjson.loads(request.content))
                if self.transaction is not None:
                    answer = self.transaction(request)
                    return await answer if inspect.isawaitable(answer) else answer
                return transaction_response(self.transactions[-1])
        return httpx.Response(404)

    def _token(self, iss: str, request: httpx.Request) -> httpx.Response:
        form = urllib.parse.parse_qs(request.content.decode())
        nonce = self.nonces[form["code"][0]]
        now = int(time.time())
        claims = {"iss": iss, "aud": CLIENT_ID, "sub": "u1", "exp": now + 300, "nonce": nonce}
        if self.fhir_user is not None:
            claims["fhirUser"] = self.fhir_user
        body: dict[str, Any] = {
            "access_token": f"at-{now}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "patient": self.patient,
            "scope": "launch openid fhirUser patient/*.write",
        }
        if self.encounter is not None:
            body["encounter"] = self.encounter
        if self.id_token:
            body["id_token"] = KEY.sign(claims)
        return httpx.Response(200, json=body)


def transaction_response(bundle: dict[str, Any]) -> httpx.Response:
    entries = [
        {"response": {"status": "201 Created", "location": f"{e['request']['url']}/{n}"}}
        for n, e in enumerate(bundle["entry"])
    ]
    reply = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    return httpx.Response(200, json=reply)


@contextmanager
def smart_app(ehr: FakeEhr, *, idle_seconds: float = 900.0) -> Iterator[SyncClient]:
    """The template's routes, SMART launch included, talking to `ehr`, in process."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(template_router())
    http = httpx.AsyncClient(transport=httpx.MockTransport(ehr.handle))
    app.include_router(
        smart_router(
            client=SmartClient(CLIENT_ID),
            issuers=[ISS, OTHER_ISS],
            public_base_url=None,
            http=http,
            sessions=SessionStore(idle_seconds),
        )
    )
    with in_process(app) as client:
        yield client


@dataclass(frozen=True)
class Started:
    """A launch under way: what the EHR's authorize step gives back, and the session cookie."""

    state: str
    code: str
    cookie: str | None


def start_launch(client: SyncClient, ehr: FakeEhr, iss: str = ISS) -> Started:
    """The launch as the EHR starts it, up to the EHR's authorize step."""
    answer = client.get("/template/launch", params={"iss": iss, "launch": "l1"})
    assert answer.status_code == 302, answer.text
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["location"]).query)
    code = f"code-{len(ehr.nonces)}"
    ehr.nonces[code] = query["nonce"][0]
    return Started(query["state"][0], code, cookie_set_by(answer))


def sign_in(client: SyncClient, ehr: FakeEhr, iss: str = ISS) -> httpx.Response:
    """A whole launch: launch, the EHR's authorize step, the callback."""
    started = start_launch(client, ehr, iss)
    return client.get("/template/callback", params={"code": started.code, "state": started.state})


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def cookie_set_by(answer: httpx.Response) -> str | None:
    """The session id a response sets, if it sets one."""
    for header in answer.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0].strip('"') or None
    return None
