"""A small, real FHIR R4 server over a dict (or folder) of resources, for tests.

Serve it with `tests.support.server.serve(fhir.app, access_log=False)`. It answers reads
(`GET /Patient/1`) and searches (`GET /Condition?patient=1`) with searchset Bundles paged by
`_count` (or `page_size`) through `next` links, and records every request (path, query,
Authorization header). Behaviour can be changed while it runs:

- `fail_with = 401` (or 403, 500 ...): every request answers that status with an
  OperationOutcome;
- `delay = 2.0`: every answer waits that long (to exercise timeouts);
- `hold = threading.Event()`: every answer waits until the test sets the event, so a test can
  tell that its caller answered before this server did without timing anything (`held` is
  how many answers are waiting now). A hold lasts at most `hold_timeout` seconds (30): a
  caller that wrongly waits gets its answer then, and its test fails rather than hangs;
- `next_base = "http://elsewhere.example"`: next links point to another server.

Search parameters understood: `patient`, `subject` (references, with or without the type),
`member` (Group), `_id`, `status`, `code` and `identifier` (tokens `system|value` or `value`),
`_count`; `_sort` is accepted and ignored. Any other parameter answers 400, as a strict server
would.

`POST /` with a transaction Bundle stores its entries (POST requests only) all or nothing: each
gets a new id, `urn:uuid:` references between entries are rewritten, and an entry whose
`request.ifNoneExist` (`identifier=system|value`) matches a stored resource creates nothing
(a conditional create). Every Bundle received is kept in `transactions`. Set
`refuse_transactions = (422, outcome)` to answer transactions with that status and
OperationOutcome instead, or `fail_transactions_with = 401` for a plain failure status.
"""

import asyncio
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: str
    authorization: str | None


def _outcome(status: int, text: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


def _refs(value: Any) -> list[str]:
    """Every reference string anywhere under `value`."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_refs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_refs(item))
    return found


def _ref_matches(wanted: str, refs: Iterable[str], resource_type: str = "Patient") -> bool:
    full = wanted if "/" in wanted else f"{resource_type}/{wanted}"
    return any(ref == full or ref.endswith("/" + full) for ref in refs)


def _identifiers(resource: dict[str, Any]) -> set[str]:
    out = set()
    for identifier in resource.get("identifier") or ():
        out.add(str(identifier.get("value")))
        out.add(f"{identifier.get('system')}|{identifier.get('value')}")
    return out


def _codes(resource: dict[str, Any]) -> set[str]:
    out = set()
    for coding in (resource.get("code") or {}).get("coding", ()):
        out.add(str(coding.get("code")))
        out.add(f"{coding.get('system')}|{coding.get('code')}")
    return out


class FhirTestServer:
    def __init__(self, resources: Iterable[dict[str, Any]] = (), *, page_size: int = 50) -> None:
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        self.page_size = page_size
        self.requests: list[RecordedRequest] = []
        self.fail_with: int | None = None
        self.delay: float = 0.0
        self.hold: threading.Event | None = None
        self.hold_timeout = 30.0
        self.held = 0
        self.next_base: str | None = None
        self.transactions: list[dict[str, Any]] = []
        self.refuse_transactions: tuple[int, dict[str, Any]] | None = None
        self.fail_transactions_with: int | None = None
        self._ids = itertools.count(1)
        for resource in resources:
            self.add(resource)
        self.app = Starlette(
            routes=[
                Route("/", self._transaction, methods=["POST"]),
                Route("/{rtype}", self._search, methods=["GET"]),
                Route("/{rtype}/{rid}", self._read, methods=["GET"]),
            ]
        )

    @classmethod
    def from_folder(cls, folder: Path, **kwargs: Any) -> "FhirTestServer":
        """Every *.json file: a resource, or a Bundle whose entries are added one by one."""
        server = cls(**kwargs)
        for path in sorted(folder.glob("*.json")):
            data = orjson.loads(path.read_bytes())
            if data.get("resourceType") == "Bundle":
                for entry in data.get("entry", ()):
                    server.add(entry["resource"])
            else:
                server.add(data)
        return server

    def add(self, resource: dict[str, Any]) -> None:
        self.store.setdefault(resource["resourceType"], {})[resource["id"]] = resource

    async def _gate(self, request: Request) -> Response | None:
        self.requests.append(
            RecordedRequest(
                request.url.path, request.url.query, request.headers.get("authorization")
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None:
            # Waited for in a worker thread: this server's loop goes on answering meanwhile.
            self.held += 1
            try:
                await asyncio.to_thread(self.hold.wait, self.hold_timeout)
            finally:
                self.held -= 1
        if self.fail_with is not None:
            return _outcome(self.fail_with, f"configured to fail with {self.fail_with}")
        return None

    async def _read(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        rtype, rid = request.path_params["rtype"], request.path_params["rid"]
        resource = self.store.get(rtype, {}).get(rid)
        if resource is None:
            return _outcome(404, f"{rtype}/{rid} not found")
        return Response(orjson.dumps(resource), media_type=FHIR_JSON)

    async def _search(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        rtype = request.path_params["rtype"]
        params = dict(request.query_params)
        count = int(params.pop("_count", self.page_size))
        offset = int(params.pop("_offset", 0))
        matches = list(self.store.get(rtype, {}).values())
        for name, value in params.items():
            if name in ("patient", "subject"):
                matches = [
                    r
                    for r in matches
                    if _ref_matches(
                        value, _refs(r.get(name) or r.get("subject") or r.get("patient"))
                    )
                ]
            elif name == "member":
                matches = [r for r in matches if _ref_matches(value, _refs(r.get("member")))]
            elif name == "_id":
                matches = [r for r in matches if r.get("id") in value.split(",")]
            elif name == "status":
                matches = [r for r in matches if r.get("status") in value.split(",")]
            elif name == "code":
                matches = [r for r in matches if _codes(r) & set(value.split(","))]
            elif name.startswith("_sort"):
                continue
            elif name == "identifier":
                matches = [r for r in matches if _identifiers(r) & set(value.split(","))]
            else:
                return _outcome(400, f"unknown search parameter {name}")
        page = matches[offset : offset + count]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": [{"relation": "self", "url": str(request.url)}],
        }
        if page:
            bundle["entry"] = [
                {"fullUrl": f"{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in page
            ]
        if offset + count < len(matches):
            base = self.next_base or str(request.base_url).rstrip("/")
            query = urlencode({**params, "_count": count, "_offset": offset + count})
            bundle["link"].append({"relation": "next", "url": f"{base}/{rtype}?{query}"})
        return Response(orjson.dumps(bundle), media_type=FHIR_JSON)

    def _conditional_match(self, rtype: str, condition: str) -> dict[str, Any] | None:
        name, _, value = condition.partition("=")
        if name != "identifier":
            return None
        for resource in self.store.get(rtype, {}).values():
            if value in _identifiers(resource):
                return resource
        return None

    async def _transaction(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        try:
            bundle = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _outcome(400, "not JSON")
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return _outcome(400, "only transaction Bundles are accepted")
        self.transactions.append(bundle)
        if self.fail_transactions_with is not None:
            code = self.fail_transactions_with
            return _outcome(code, f"configured to fail transactions with {code}")
        if self.refuse_transactions is not None:
            status, outcome = self.refuse_transactions
            return Response(orjson.dumps(outcome), status_code=status, media_type=FHIR_JSON)
        entries = bundle.get("entry") or []
        created: list[tuple[str, dict[str, Any]]] = []
        replies: list[dict[str, Any]] = []
        new_refs: dict[str, str] = {}
        for entry in entries:
            req, resource = entry.get("request") or {}, entry.get("resource") or {}
            if req.get("method") != "POST" or "resourceType" not in resource:
                return _outcome(400, "only POST entries with a resource are accepted")
            rtype = resource["resourceType"]
            existing = self._conditional_match(rtype, req.get("ifNoneExist") or "")
            if existing is not None:
                location = f"{rtype}/{existing['id']}"
                replies.append({"response": {"status": "200 OK", "location": location}})
            else:
                rid = f"t{next(self._ids)}"
                location = f"{rtype}/{rid}"
                created.append((rid, resource))
                replies.append(
                    {"response": {"status": "201 Created", "location": location + "/_history/1"}}
                )
            if entry.get("fullUrl"):
                new_refs[entry["fullUrl"]] = location
        stored = [{**_rewrite(resource, new_refs), "id": rid} for rid, resource in created]
        for resource in stored:  # all or nothing: stored once every entry was accepted
            self.add(resource)
        reply = {"resourceType": "Bundle", "type": "transaction-response", "entry": replies}
        return Response(orjson.dumps(reply), media_type=FHIR_JSON)


def _rewrite(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            key: refs.get(item, item)
            if key == "reference" and isinstance(item, str)
            else _rewrite(item, refs)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(item, refs) for item in value]
    return value
