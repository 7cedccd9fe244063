"""HTTP for the template as a SMART on FHIR app (EHR launch), served when a client is configured.

- `GET /template/launch?iss=...&launch=...`: discovers the EHR, starts a server-side session
  (cookie only: `HttpOnly`, `Secure`, `SameSite=Lax`) and redirects to the EHR's authorize
  endpoint with PKCE S256, `state` and `nonce`;
- `GET /template/callback?code=...&state=...`: checks `state` (once: a replayed code finds it
  spent), exchanges the code server side, verifies the ID token, reads the patient with the
  user's token, then redirects to the form;
- `GET /template/record`: the form under the patient's banner (name, date of birth, NHS number);
  `POST /template/record`: the entries, kept in the session, with "File in the record";
- `POST /template/file`: one transaction to the EHR with the user's token; what was filed, or
  exactly why not, with the answers kept (a token that expired: launch again from the record and
  the same entries are offered for filing once).

Every form post carries the session's CSRF token. Tokens never reach a URL, a page or a log.
"""

import logging
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import jinja2
from fastapi import APIRouter, Request, Response
from starlette.responses import RedirectResponse

from cds_hooks.errors import PayloadTooLarge
from iris_prompt.template import api
from iris_prompt.template import form as form_page
from iris_prompt.template.extract import ExtractError, extract
from iris_prompt.template.filing import file_bundle, for_patient, patient_banner
from iris_prompt.template.links import PAGE_PATH
from iris_prompt.template.questionnaire import questionnaire
from iris_prompt.template.sessions import COOKIE, Launch, Session, SessionStore
from iris_prompt.template.smart import (
    SmartClient,
    SmartError,
    TokenSet,
    authorize_url,
    discover,
    exchange_code,
    pkce_pair,
    same_secret,
    staff_user,
    verify_id_token,
)

__all__ = ["smart_router"]

log = logging.getLogger(__name__)

CALLBACK_PATH = PAGE_PATH + "/callback"
# The filing form carries only its CSRF token.
FILE_FORM_BYTES = 4096
RELAUNCH = "Open the template again from the card in the patient's record to sign in again."
NOT_STAFF = (
    "The template is for practice staff, and the record system did not say who is signed in "
    "as a practitioner (an ID token whose fhirUser is a Practitioner or PractitionerRole). "
    "Nothing was shown or filed."
)


def smart_router(
    *,
    client: SmartClient,
    issuers: Sequence[str],
    public_base_url: str | None,
    http: httpx.AsyncClient,
    sessions: SessionStore,
    frame_ancestors: str = "'none'",
) -> APIRouter:
    pages = jinja2.Environment(
        loader=jinja2.PackageLoader("iris_prompt.template", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    allowed = {iss.rstrip("/") for iss in issuers}
    headers = api.page_headers(frame_ancestors)
    router = APIRouter(redirect_slashes=False)

    def redirect_uri(request: Request) -> str:
        return (public_base_url or str(request.base_url)).rstrip("/") + CALLBACK_PATH

    def page(name: str, status_code: int = 200, **context: Any) -> Response:
        # The SMART pages live under /template/: relative links from there.
        text = pages.get_template(name).render(static="static", page="record", **context)
        return Response(text, status_code, headers, media_type="text/html")

    def problem(
        message: str, status_code: int, session: Session | None = None, *, banner: bool = True
    ) -> Response:
        """A page saying what went wrong, and whether answers wait to be filed. A sign-in that
        failed shows no patient: the one signed in before may not be the one in front of you."""
        kept = session is not None and session.pending is not None
        shown = session.banner if session is not None and banner else None
        return page("smart_problem.html", status_code, message=message, kept=kept, patient=shown)

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    async def checked_form(
        request: Request, limit: int
    ) -> tuple[Session | None, dict[str, list[str]]]:
        """The session and the posted form, if its CSRF token is this session's;
        PayloadTooLarge for a form over `limit` bytes."""
        form = await api.posted_form(request, limit)
        session = session_of(request)
        sent = (form.pop("csrf", None) or [""])[0]
        if session is None or not same_secret(sent, session.csrf):
            return None, form
        return session, form

    @router.get(PAGE_PATH + "/launch")
    async def launch(request: Request, iss: str = "", launch: str = "") -> Response:
        if not iss or not launch:
            return problem("This page is opened by the record system (SMART launch).", 400)
        if iss.rstrip("/") not in allowed:
            log.warning("SMART launch refused: issuer not configured")
            return problem("This record system is not configured to use the template.", 403)
        try:
            config = await discover(http, iss)
        except SmartError as error:
            log.warning("SMART launch failed: %s", error)
            return problem(f"The launch failed: {error}.", 502)
        # A launch with the session of an earlier one keeps its entries not yet filed.
        session = session_of(request) or sessions.new()
        verifier, challenge = pkce_pair()
        session.launch = Launch(
            config, secrets.token_urlsafe(32), verifier, secrets.token_urlsafe(16)
        )
        target = authorize_url(
            config,
            client,
            redirect_uri=redirect_uri(request),
            launch=launch,
            state=session.launch.state,
            challenge=challenge,
            nonce=session.launch.nonce,
        )
        response = RedirectResponse(target, status_code=302, headers=api.NO_STORE)
        _set_cookie(response, session)
        return response

    @router.get(CALLBACK_PATH)
    async def callback(request: Request, code: str = "", state: str = "") -> Response:
        session = session_of(request)
        pending = session.launch if session is not None else None
        if session is None or pending is None or not same_secret(state, pending.state):
            log.warning("SMART callback refused: unknown or spent state")
            return problem(
                "This sign-in is not the one this page started, or was already used. " + RELAUNCH,
                400,
                session,
                banner=False,
            )
        session.launch = None  # the state is spent: a replayed code finds nothing
        if not code:
            error = request.query_params.get("error", "no code")
            message = f"The record system refused the sign-in ({error}). {RELAUNCH}"
            return problem(message, 400, session, banner=False)  # says if entries wait
        config = pending.config
        try:
            tokens = await exchange_code(
                http,
                config,
                client,
                code=code,
                redirect_uri=redirect_uri(request),
                verifier=pending.verifier,
            )
            user = None
            if tokens.id_token is not None:
                claims = await verify_id_token(
                    http, config, tokens.id_token, client_id=client.client_id, nonce=pending.nonce
                )
                user = staff_user(claims.get("fhirUser"))
            if user is None:
                # Checked before the patient is read: a patient-facing launch reads nothing.
                log.warning("SMART callback refused: the user is not a verified practitioner")
                return problem(NOT_STAFF, 403, session, banner=False)
            patient = await _read_patient(http, config.iss, tokens.access_token, tokens.patient)
        except SmartError as error:
            log.warning("SMART callback failed: %s", error)
            return problem(f"The sign-in failed: {error}. {RELAUNCH}", 502, session, banner=False)
        async with session.lock:  # a filing in flight finishes first, under its own sign-in
            if not sessions.holds(session):
                # Ended while the EHR answered (filed, or timed out): never brought back, or a
                # click on "File" would be shown that filing under the new patient's banner.
                session = sessions.new()
            # Entries kept for filing go only where, and by whom, they were made: not to another
            # patient, the same id in another record system (an id is unique only within its
            # server), or another user at the same computer (who would file them as author).
            same_server = (session.iss or "").rstrip("/") == config.iss.rstrip("/")
            again = same_server and (session.patient_id, session.fhir_user) == (
                tokens.patient,
                user,
            )
            if not again:
                session.pending = None
            session.filed = None
            # A new id: one known before the sign-in (a fixed cookie) gets nothing. A new CSRF
            # token unless the same user signed in again for the same patient: a form shown
            # before (another window, perhaps another patient's) cannot record under the patient
            # signed in now, while the same patient's open form still records.
            sessions.renew(session, new_form=not again)
            signed_in(session, config.iss, tokens, user, patient)
        following = "review" if session.pending is not None else "record"
        response = RedirectResponse(following, status_code=303, headers=api.NO_STORE)
        _set_cookie(response, session)
        return response

    def signed_in(
        session: Session, iss: str, tokens: TokenSet, user: str, patient: dict[str, Any]
    ) -> None:
        session.iss, session.access_token = iss, tokens.access_token
        session.token_expires_at = tokens.expires_at
        session.patient_id, session.encounter, session.fhir_user = (
            tokens.patient,
            tokens.encounter,
            user,
        )
        session.banner = patient_banner(patient)

    @router.get(PAGE_PATH + "/record")
    def show_form(request: Request) -> Response:
        session = session_of(request)
        if session is None or not session.signed_in(time.time()):
            return problem("There is no signed-in session. " + RELAUNCH, 401, session)
        fields = form_page.fields_for(questionnaire()["item"], {})
        return page(
            "form.html", fields=fields, problems=[], smart=_smart(session), patient=session.banner
        )

    @router.post(PAGE_PATH + "/record")
    async def submit_form(request: Request) -> Response:
        try:
            session, form = await checked_form(request, api.MAX_BODY_BYTES)
        except PayloadTooLarge:
            return problem(api.TOO_LONG, 413, session_of(request))
        if session is None:
            return problem(
                "Nothing was recorded: this form has expired, the template was opened again "
                "since it was shown (perhaps for another patient), or it was not sent from this "
                "page. " + RELAUNCH,
                403,
            )
        if session.patient_id is None:
            return problem("There is no signed-in session. " + RELAUNCH, 401, session)
        response = form_page.response_from_form(form, authored=datetime.now(UTC))
        response["subject"] = {"reference": f"Patient/{session.patient_id}"}
        try:
            bundle = extract(response)
        except ExtractError as error:
            fields = form_page.fields_for(questionnaire()["item"], form)
            return page(
                "form.html",
                400,
                fields=fields,
                problems=error.problems,
                smart=_smart(session),
                patient=session.banner,
            )
        session.pending = for_patient(bundle, encounter=session.encounter, user=session.fhir_user)
        return review_page(session)

    def review_page(session: Session, status_code: int = 200, **context: Any) -> Response:
        assert session.pending is not None
        summary = form_page.summary_of(session.pending)
        smart = _smart(session, **context)
        return page("result.html", status_code, **summary, smart=smart, patient=session.banner)

    @router.get(PAGE_PATH + "/review")
    def review(request: Request) -> Response:
        session = session_of(request)
        if session is None or session.pending is None:
            return problem("There are no entries waiting to be filed. " + RELAUNCH, 404, session)
        return review_page(session)

    @router.post(PAGE_PATH + "/file")
    async def file(request: Request) -> Response:
        try:
            session, _ = await checked_form(request, FILE_FORM_BYTES)
        except PayloadTooLarge:
            return problem("Nothing was filed: this request is not one this page sends.", 413)
        if session is None:
            return problem(
                "This session has ended (filed, timed out or not sent from this page): "
                "nothing was filed by this request. Check the record before filing again.",
                403,
            )
        async with session.lock:  # a double submit waits, then is shown the same filing
            if session.filed is not None:
                return filed_page(session.filed, session.banner)
            if session.pending is None:
                return problem("There are no entries waiting to be filed.", 409, session)
            if session.access_token is None or not session.signed_in(time.time()):
                session.sign_out()
                return review_page(session, 401, expired=True)
            assert session.iss is not None
            filed = await file_bundle(http, session.iss, session.access_token, session.pending)
            if filed.expired:
                session.sign_out()
                return review_page(session, 401, expired=True)
            if filed.unknown:
                log.warning("filing outcome unknown: status %s", filed.status)
                return review_page(session, 504, unknown=filed.problems)
            if not filed.ok:
                log.warning("filing refused by the record system: status %s", filed.status)
                return review_page(session, 502, refused=filed.problems)
            session.filed = tuple(filed.locations)
            sessions.end(session)
            log.info("template entries filed: %d", len(filed.locations))
            return filed_page(session.filed, session.banner)

    def filed_page(locations: Sequence[str], banner: dict[str, str]) -> Response:
        response = page("smart_filed.html", locations=locations, patient=banner)
        response.delete_cookie(COOKIE, path=PAGE_PATH, secure=True, httponly=True, samesite="lax")
        return response

    return router


def _set_cookie(response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE, session.id, path=PAGE_PATH, secure=True, httponly=True, samesite="lax"
    )


def _smart(session: Session, **context: Any) -> dict[str, Any]:
    return {
        "csrf": session.csrf,
        "expired": False,
        "refused": (),
        "unknown": (),
        "relaunch": RELAUNCH,
        **context,
    }


async def _read_patient(
    http: httpx.AsyncClient, iss: str, token: str, patient_id: str
) -> dict[str, Any]:
    url = f"{iss.rstrip('/')}/Patient/{urllib.parse.quote(patient_id, safe='')}"
    try:
        response = await http.get(
            url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
            timeout=httpx.Timeout(10.0, connect=3.0),
        )
    except httpx.HTTPError as error:
        raise SmartError(f"the patient could not be read ({type(error).__name__})") from None
    if response.status_code != 200:
        raise SmartError(f"the patient could not be read (status {response.status_code})")
    try:
        patient = response.json()
    except ValueError:
        raise SmartError("the patient could not be read (not JSON)") from None
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise SmartError("the patient could not be read (not a Patient)")
    if patient.get("id") != patient_id:
        raise SmartError("the record system returned another patient")
    return patient
