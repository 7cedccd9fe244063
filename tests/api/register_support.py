"""Shared by the register's tests: a partner client's keys and assertions, well-formed MAPPA
flags, publishing and updating them and counting what is stored, and the real service with the
register (on the store under test) called in process."""

import datetime
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from iris_prompt.app import create_app
from iris_prompt.engine.lookup import HouseholdLookup
from iris_prompt.engine.risk_flags import risk_extension
from iris_prompt.engine.service import Engine as PromptEngine
from iris_prompt.engine.service import build_registry
from iris_prompt.register.clients import READ, WRITE, RegisterClient
from iris_prompt.register.service import Register
from iris_prompt.register.tables import RegisterFlag, RegisterFlagVersion
from iris_prompt.store.service import Store
from tests.api.engine_support import CONTACTS, NOW
from tests.conftest import LiveService, bundled_codesets, live, make_settings
from tests.support import web
from tests.support.tokens import SigningKey, claims, generate_key, jwks

AUDITOR = "auditor-token-0123456789abcdef"
PROBATION, POLICE = "PROB1", "POLICE2"
PARTNER_NHS = "9990000018"  # the seed case's partner
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Clock:
    """The time the service (engine and register) sees; tests move it on."""

    now: datetime.datetime = NOW

    def __call__(self) -> datetime.datetime:
        return self.now


@dataclass
class Partner:
    """A registered partner system: its client id, organisation and signing key."""

    client_id: str
    organisation: str
    key: SigningKey
    scopes: tuple[str, ...] = (READ, WRITE)
    # Where its public keys are published (allow-listed); empty: configured inline.
    jku: tuple[str, ...] = ()

    def client(self) -> RegisterClient:
        return RegisterClient(
            client_id=self.client_id,
            organisation=self.organisation,
            scopes=self.scopes,
            jwks=None if self.jku else jwks(self.key),
            jku=self.jku,
        )

    def assertion(self, token_url: str, **overrides: Any) -> str:
        return self.key.sign(claims(self.client_id, token_url, sub=self.client_id) | overrides)


@dataclass
class RegisterService:
    service: LiveService
    register: Register
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.service.client

    def token_response(self, form: dict[str, str]) -> httpx.Response:
        return self.client.post(
            "/oauth/token",
            content=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def form(
        self, partner: Partner, scope: str = f"{WRITE} {READ}", **claims: Any
    ) -> dict[str, str]:
        url = self.service.base_url + "/oauth/token"
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": partner.assertion(url, **claims),
            "scope": scope,
        }

    def auth(self, partner: Partner, scope: str = f"{WRITE} {READ}") -> dict[str, str]:
        response = self.token_response(self.form(partner, scope))
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


def mappa_flag(
    nhs_number: str = PARTNER_NHS,
    organisation: str = PROBATION,
    *,
    start: str = "2026-10-01",
    end: str = "2027-04-01",
    status: str = "active",
    risks: tuple[tuple[str, str], ...] = (("known-adult", "very-high"), ("children", "medium")),
    **extra: Any,
) -> dict[str, Any]:
    """A Flag of the register's profile, as a MAPPA partner publishes it."""
    return {
        "resourceType": "Flag",
        "status": status,
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "495021000000105",
                    "display": "Subject of multi-agency public protection arrangements",
                }
            ]
        },
        "subject": {
            "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}
        },
        "period": {"start": start, "end": end},
        "author": {
            "identifier": {
                "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                "value": organisation,
            }
        },
        "extension": [risk_extension(group, level) for group, level in risks],
    } | extra


def publish(svc: RegisterService, partner: Partner, flag: dict[str, Any]) -> dict[str, Any]:
    """POST a well-formed flag as `partner`; the stored flag (version 1)."""
    response = svc.client.post("/fhir/Flag", json=flag, headers=svc.auth(partner))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def put(svc: RegisterService, partner: Partner, flag: dict[str, Any], version: str | None) -> Any:
    """PUT `flag` as `partner`, naming `version` in If-Match (none when it is None)."""
    headers = svc.auth(partner) | ({"If-Match": f'W/"{version}"'} if version else {})
    return svc.client.request("PUT", f"/fhir/Flag/{flag['id']}", json=flag, headers=headers)


def stored_counts(store: Store) -> tuple[int, int]:
    """How many flags, and how many flag versions, the register holds."""
    with Session(store.engine) as session:
        flags = session.scalar(select(func.count()).select_from(RegisterFlag))
        versions = session.scalar(select(func.count()).select_from(RegisterFlagVersion))
    return int(flags or 0), int(versions or 0)


# Two partner organisations: probation (publishes) and the police (another organisation).
probation = Partner("probation-north", PROBATION, generate_key("ES384"))
police = Partner("police-north", POLICE, generate_key("RS384"))


@contextmanager
def register_service(
    cds_key: SigningKey, store: Store, *partners: Partner, budget: float = 2.0
) -> Iterator[RegisterService]:
    """The real app over `store`, its household check consulting the register, JWT checks on
    for CDS clients, `partners` registered; the engine's and register's clock is `Clock`."""
    clock = Clock()
    made: dict[str, Register] = {}

    def build(base_url: str) -> FastAPI:
        clients = [p.client() for p in partners]
        settings = make_settings(
            cds_key,
            public_base_url=base_url,
            auditor_token=AUDITOR,
            register_clients=clients,
            fhir_total_timeout_seconds=2.0,
        )
        # Static keys only: this client is never used to fetch a JWK Set.
        register = Register.open(
            store,
            fhir_base=f"{base_url}/fhir",
            clients=clients,
            http=web.AsyncClient(),
            clock=clock,
        )
        made["register"] = register
        codesets = bundled_codesets()
        engine = PromptEngine(
            codesets,
            cards=CONTACTS,
            lookup=HouseholdLookup(budget=budget, register=register.in_force),
            clock=clock,
            store=store,
        )
        registry = build_registry(codesets, engine)
        return create_app(
            settings, registry=registry, codesets=codesets, store=store, register=register
        )

    with live(build, cds_key) as service:
        yield RegisterService(service, made["register"], clock)
