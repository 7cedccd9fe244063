"""The template page under a real uvicorn server, driven by Debian's chromium (tests/support)."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page

from iris_prompt.template.api import template_router
from tests.support.browser import chromium
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
