"""HTTP for the recording template: the FHIR endpoints and the page for practice staff.

`template_router(public_base_url=...)` returns an APIRouter with:

- `GET /fhir/Questionnaire` (a searchset Bundle; `_id` and `url` narrow it) and
  `GET /fhir/Questionnaire/{id}`;
- `POST /fhir/QuestionnaireResponse/$extract` (SDC): a QuestionnaireResponse, or Parameters with a
  `questionnaire-response` part, in; a transaction Bundle out, or 400 with an OperationOutcome that
  lists every problem
  (https://hl7.org/fhir/uv/sdc/OperationDefinition-QuestionnaireResponse-extract.html);
- `GET /template`: the form, server-rendered, with its CSS and script from `/template/static/`;
  `POST /template`: the coded summary, the instruction to hide the consultation from online access,
  and the Bundle as JSON.

Every error on the `/fhir` routes is a FHIR OperationOutcome (built by the protocol layer's
`cds_hooks.errors.operation_outcome`): 400 listing every problem, 404, 413 for a body over
`MAX_BODY_BYTES`, and 500 for a bug, which is logged by exception type and stack frames only
(never the message or the body, which could hold patient data) and answered with no stack trace.

Nothing is stored and nothing clinical is logged: every response is computed from the request and
sent with `Cache-Control: no-store`. The page never sees a patient identifier; its form posts, so
answers never appear in a URL.
"""

import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import jinja2
import orjson
from fastapi import APIRouter, Request, Response

from cds_hooks.errors import Issue, PayloadTooLarge, operation_outcome
from cds_hooks.http import describe_call, read_body, read_json
from iris_prompt.template.extract import ExtractError, Problem, extract
from iris_prompt.template.form import fields_for, response_from_form, summary_of
from iris_prompt.template.links import PAGE_PATH
from iris_prompt.template.questionnaire import (
    QUESTIONNAIRE_ID,
    QUESTIONNAIRE_URL,
    QUESTIONNAIRE_VERSION,
    questionnaire,
)

__all__ = ["page_headers", "template_router"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
MAX_BODY_BYTES = 256 * 1024  # a completed template is a few kilobytes
NO_STORE = {"Cache-Control": "no-store"}


def page_headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    """The template pages' headers. Everything a page needs comes from this service (clinical
    networks block the rest anyway). Framed only by the EHR pages `frame_ancestors` allows
    (IRIS_FRAME_ANCESTORS); by default none: the page runs in a window of its own, and no
    other site can overlay its form."""
    return {
        **NO_STORE,
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            f"form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


STATIC_TYPES = {"template.css": "text/css", "template.js": "text/javascript"}


def template_router(
    *, public_base_url: str | None = None, frame_ancestors: str = "'none'"
) -> APIRouter:
    """The template's routes; `public_base_url` is how callers reach this service (None: the
    address each request came to, as for the CDS routes)."""

    def base_of(request: Request) -> str:
        return (public_base_url or str(request.base_url)).rstrip("/")

    pages = jinja2.Environment(
        loader=jinja2.PackageLoader("iris_prompt.template", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    headers = page_headers(frame_ancestors)
    static = {
        name: (files("iris_prompt.template") / "static" / name).read_bytes()
        for name in STATIC_TYPES
    }
    router = APIRouter(redirect_slashes=False)

    @router.get("/fhir/Questionnaire")
    def search_questionnaires(request: Request) -> Response:
        params = request.query_params
        versioned = f"{QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}"
        found = params.get("url") in (None, QUESTIONNAIRE_URL, versioned) and params.get("_id") in (
            None,
            QUESTIONNAIRE_ID,
        )
        matches = [questionnaire()] if found else []
        query = f"?{params}" if params else ""
        base = base_of(request)
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": [{"relation": "self", "url": f"{base}/fhir/Questionnaire{query}"}],
        }
        if matches:  # FHIR JSON has no empty arrays: no match, no `entry`
            bundle["entry"] = [
                {
                    "fullUrl": f"{base}/fhir/Questionnaire/{q['id']}",
                    "resource": q,
                    "search": {"mode": "match"},
                }
                for q in matches
            ]
        return _fhir(bundle)

    @router.get("/fhir/Questionnaire/{resource_id}")
    def read_questionnaire(resource_id: str) -> Response:
        if resource_id != QUESTIONNAIRE_ID:
            problem = Problem(f"Questionnaire/{resource_id}", "no such Questionnaire", "not-found")
            return _fhir(_operation_outcome([problem]), status_code=404)
        return _fhir(questionnaire())

    @router.post("/fhir/QuestionnaireResponse/$extract")
    async def extract_operation(request: Request) -> Response:
        # Errors reach the app's handlers (cds_hooks.http): a body that is not a JSON object
        # within the size limit is a 400 or 413 OperationOutcome, a fault a 500.
        describe_call(request, "$extract")
        body = await read_json(request, MAX_BODY_BYTES)
        try:
            return _fhir(extract(_response_in(body)))
        except ExtractError as error:
            return _fhir(_operation_outcome(error.problems), status_code=400)

    @router.get(PAGE_PATH)
    def show_form() -> Response:
        fields = fields_for(questionnaire()["item"], {})
        return _html(pages, headers, "form.html", fields=fields, problems=[])

    @router.post(PAGE_PATH)
    async def submit_form(request: Request) -> Response:
        try:
            form = await posted_form(request, MAX_BODY_BYTES)
        except PayloadTooLarge:
            return _html(pages, headers, "smart_problem.html", 413, message=TOO_LONG, kept=False)
        response = response_from_form(form, authored=datetime.now(UTC))
        try:
            bundle = extract(response)
        except ExtractError as error:
            fields = fields_for(questionnaire()["item"], form)
            return _html(pages, headers, "form.html", 400, fields=fields, problems=error.problems)
        return _html(pages, headers, "result.html", **summary_of(bundle))

    @router.get(PAGE_PATH + "/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            return Response(status_code=404)
        return Response(static[name], media_type=STATIC_TYPES[name])

    return router


def _fhir(resource: Mapping[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(resource), status_code, NO_STORE, media_type=FHIR_JSON)


TOO_LONG = (
    "The answers are too long to send, and nothing was kept. Go back (the browser keeps what "
    "you typed), shorten the free text, and send them again."
)


async def posted_form(request: Request, limit: int) -> dict[str, list[str]]:
    """The posted form; PayloadTooLarge once it passes `limit` bytes (the rest is not read),
    for the page to answer in words rather than the server's plain-text 413."""
    raw = await read_body(request, limit)
    return urllib.parse.parse_qs(raw.decode("utf-8", errors="replace"))


def _html(
    pages: jinja2.Environment,
    headers: dict[str, str],
    name: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    text = pages.get_template(name).render(
        # Relative links, so the page also works behind a path prefix.
        static=PAGE_PATH.lstrip("/") + "/static",
        page=PAGE_PATH.lstrip("/"),
        **context,
    )
    return Response(text, status_code, headers, media_type="text/html")


def _response_in(body: Mapping[str, Any]) -> Any:
    """The QuestionnaireResponse from a body that is one, or Parameters carrying one (SDC)."""
    if body.get("resourceType") != "Parameters":
        return body
    parts = body.get("parameter", [])
    if not isinstance(parts, list):
        raise ExtractError([Problem("Parameters.parameter", "must be a list", "structure")])
    for part in parts:
        if isinstance(part, dict) and part.get("name") == "questionnaire-response":
            return part.get("resource")
    raise ExtractError([Problem("Parameters", "no 'questionnaire-response' part", "required")])


def _operation_outcome(problems: Sequence[Problem]) -> dict[str, Any]:
    issues = [Issue(p.message, code=p.code, expression=p.expression or None) for p in problems]
    return operation_outcome(issues)
