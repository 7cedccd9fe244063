"""What the protocol's web layer answers, for an app built on `cds_hooks` alone (no
iris_prompt), with its default options: a body nested too deeply is refused before any handler
sees it; a card answer is kept out of caches without the product's middleware;
`NoStoreByDefault` marks what a route leaves unmarked, once, and never over a route's own
choice; a 405 from a mounted router keeps the methods that router names."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from cds_hooks import ServiceRegistry
from cds_hooks.http import NoStoreByDefault, build_router, install_error_handlers
from cds_hooks.json_body import MAX_JSON_DEPTH
from tests.conftest import patient_view
from tests.support.inprocess import SyncClient, in_process
from tests.support.services import EVERY_FEATURE_ID, every_feature_service

COMPLETE = {
    "patient": {"resourceType": "Patient", "id": "p1"},
    "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
}


async def text(_request: object) -> PlainTextResponse:
    return PlainTextResponse("x")


async def bare(_scope: Scope, _receive: Receive, send: Send) -> None:
    """A response with no headers at all, which ASGI allows."""
    await send({"type": "http.response.start", "status": 204})
    await send({"type": "http.response.body", "body": b""})


def protocol_app(*, middleware: bool) -> FastAPI:
    app = FastAPI(redirect_slashes=False)
    install_error_handlers(app)
    if middleware:
        app.add_middleware(NoStoreByDefault)
    registry = ServiceRegistry([every_feature_service()])
    app.include_router(build_router(registry, verifier=None, http=httpx.AsyncClient()))
    app.mount("/sub", Router([Route("/x", text, methods=["GET"])]))
    app.mount("/bare", bare)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"chunk"

        return StreamingResponse(chunks())

    @app.get("/kept")
    async def kept() -> Response:
        return Response("ok", headers={"Cache-Control": "max-age=60"})

    return app


@pytest.fixture(params=[False, True], ids=["protocol alone", "with NoStoreByDefault"])
def client(request: pytest.FixtureRequest) -> Iterator[SyncClient]:
    with in_process(protocol_app(middleware=request.param)) as client:
        yield client


def test_a_card_answer_is_kept_out_of_caches(client: SyncClient) -> None:
    answer = client.post(f"/cds-services/{EVERY_FEATURE_ID}", json=patient_view(prefetch=COMPLETE))
    assert answer.status_code == 200, answer.text
    assert answer.headers.get_list("cache-control") == ["no-store"]


@pytest.mark.parametrize(
    ("path", "cache"),
    [("/stream", ["no-store"]), ("/kept", ["max-age=60"]), ("/bare/x", ["no-store"])],
)
def test_no_store_is_added_once_and_never_over_a_routes_own(path: str, cache: list[str]) -> None:
    with in_process(protocol_app(middleware=True)) as client:
        answer = client.get(path)
    assert answer.status_code in (200, 204)
    assert answer.headers.get_list("cache-control") == cache
    if path == "/stream":
        assert answer.content == b"chunk" * 3


def test_a_405_inside_a_mounted_router_keeps_the_methods_that_router_names(
    client: SyncClient,
) -> None:
    """The app's own routes do not see into the mount; its router's Allow is kept."""
    refused = client.post("/sub/x")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("levels", "refused"), [(MAX_JSON_DEPTH, False), (MAX_JSON_DEPTH + 1, True)]
)
def test_json_nested_over_the_depth_limit_is_400(
    client: SyncClient, levels: int, refused: bool
) -> None:
    """Objects and arrays nest at most MAX_JSON_DEPTH levels (the request object is level 1),
    so that no handler that recurses can run out of Python's stack on a small, deep body."""
    chain: Any = []
    for _ in range(levels - 4):  # request > prefetch > patient > "extension" > ...
        chain = [chain]
    patient = {"resourceType": "Patient", "id": "p1", "extension": chain}
    body = patient_view(prefetch=COMPLETE | {"patient": patient})
    answer = client.post(f"/cds-services/{EVERY_FEATURE_ID}", json=body)
    too_deep = f"the body is nested too deeply: objects and arrays over {MAX_JSON_DEPTH} levels"
    diagnostics = [i.get("diagnostics") for i in answer.json().get("issue", [])]
    assert (answer.status_code == 400 and diagnostics == [too_deep]) is refused
    assert answer.status_code in (200, 400)
