"""The template page under a real uvicorn server, driven by Debian's chromium (tests/support)."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page

from iris_prompt.template.api import template_router
from tests.api.engine_support import record
from tests.support import smart_launcher
from tests.support.browser import chromium
from tests.support.fhir_server import FhirTestServer
from tests.support.server import serve


@pytest.fixture(scope="module")
def template_server() -> Iterator[str]:
    """The base URL of a real server running the template router on a free loopback port."""
    app = FastAPI()
    app.include_router(template_router())
    with serve(app, access_log=False) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


@dataclass
class SmartEhr:
    """The SMART launcher (the EHR) in front of a real test FHIR server holding the seed case."""

    launcher: str
    fhir: FhirTestServer

    def reset(self) -> None:
        self.fhir.transactions.clear()
        self.fhir.refuse_transactions = None
        self.fhir.fail_transactions_with = None


@pytest.fixture(scope="session")
def smart_ehr() -> Iterator[SmartEhr]:
    """Started once per test session: the launcher takes seconds to start."""
    fhir = FhirTestServer(record("seed-case"))
    with serve(fhir.app, access_log=False) as fhir_url, smart_launcher.running(fhir_url) as url:
        yield SmartEhr(url, fhir)
