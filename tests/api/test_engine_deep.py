"""A CDS call nested as deeply as JSON can be read is answered, never a fault: the product's
calls are not depth-checked (`Settings.protocol_options`), because nothing on their path
recurses over the body. The record is read by fixed-depth walks and the request model keeps
prefetch as plain data. Should a change add a recursive walk over the request or the prefetched
record (a validator, a log formatter), a call nested to orjson's limit in any of these places
makes it fail here, as a 500. (The service here has no store and no register: the audit and
the call log, which keep only ids and codes, are not on its path.)"""

from typing import Any

import orjson
import pytest

from iris_prompt.engine.service import SERVICE_ID
from tests.api.engine_support import cards_of, kinds, prefetch_for, request_body, seed_case
from tests.conftest import LiveService

PATH = f"/cds-services/{SERVICE_ID}"
# orjson reads JSON nested at most 1,024 levels; one more is "not JSON".
ORJSON_LIMIT = 1024
DEEP = "__deep__"


def body_with_deep_value(where: str) -> dict[str, Any]:
    """The seed case's call for the mother, with `DEEP` (replaced when sent) at `where`."""
    resources = list(seed_case().values())
    prefetch = prefetch_for(resources, "seed-mum")
    deep = [DEEP]
    if where == "patient":
        prefetch["patient"]["extension"] = deep
    elif where == "condition":
        prefetch["conditions"]["entry"][0]["resource"]["code"]["coding"][0]["extension"] = deep
    elif where == "household":
        prefetch["household"]["entry"][0]["resource"]["member"][0]["extension"] = deep
    body = request_body("seed-mum", prefetch=prefetch, fhir_server=None)
    if where == "context":
        body["context"]["extension"] = deep
    return body


def sent(body: dict[str, Any], levels: int) -> bytes:
    """`body` as JSON, `DEEP` replaced by objects and arrays nesting the whole to `levels`."""
    text = orjson.dumps(body)
    before = text[: text.index(b'"__deep__"')]
    outside = before.count(b"{") + before.count(b"[") - before.count(b"}") - before.count(b"]")
    pairs, rest = divmod(levels - outside - 1, 2)  # each pair two levels, the core one or two
    inner = b'{"extension":[' * pairs + (b"[[]]" if rest else b"[]") + b"]}" * pairs
    return text.replace(b'"__deep__"', inner)


@pytest.mark.parametrize("where", ["patient", "condition", "household", "context"])
def test_a_call_nested_to_the_limit_of_json_gets_its_cards(
    live_service: LiveService, where: str
) -> None:
    body = body_with_deep_value(where)
    answers = [
        live_service.client.post(
            PATH,
            content=sent(body, levels),
            headers=live_service.headers(PATH) | {"Content-Type": "application/json"},
        )
        for levels in (ORJSON_LIMIT, ORJSON_LIMIT + 1)
    ]
    deepest, beyond = answers
    assert deepest.status_code == 200, deepest.text
    assert "enquiry" in kinds(cards_of(deepest))  # the record was read and the rules ran
    assert beyond.status_code == 400
    assert "malformed JSON: depth limit exceeded" in beyond.text
