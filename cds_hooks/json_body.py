"""A request body read as one JSON object: parsed with orjson, and its objects and arrays
nested no deeper than `MAX_JSON_DEPTH`. Plain Python; `cds_hooks.http.read_json` reads the
body off the wire and hands it here.

>>> parse_json_object(b'{"hook": "patient-view"}')
{'hook': 'patient-view'}
>>> parse_json_object(b"[]")
Traceback (most recent call last):
cds_hooks.errors.InvalidRequest: the body must be a JSON object
"""

import gc
from itertools import compress
from typing import Any

import orjson

from cds_hooks.errors import InvalidRequest, Issue

__all__ = ["MAX_JSON_DEPTH", "parse_json_object"]

# How deep objects and arrays may nest in a JSON body. A FHIR resource or CDS request nests a
# few dozen levels at most; past this, validators that recurse (pydantic models, fhir.resources,
# our own walks over items and extensions) could exhaust Python's recursion limit, a 500 logging
# hundreds of stack frames per request. Far below orjson's own limit of 1024.
MAX_JSON_DEPTH = 64


def parse_json_object(body: bytes, max_depth: int | None = MAX_JSON_DEPTH) -> dict[str, Any]:
    """`body` as a JSON object; InvalidRequest (code `structure`) when it is not JSON, not an
    object, or nested over `max_depth` levels (the object itself is level 1). With `max_depth`
    None the depth is not checked, for a body nothing walks recursively: orjson itself refuses
    one nested over 1,024 levels as not JSON, and the check costs as much as the parse."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(
            "malformed JSON",
            [Issue(f"malformed JSON: {error.msg} at byte {error.pos}", code="structure")],
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            "the body must be a JSON object",
            [Issue("the body must be a JSON object", code="structure")],
        )
    if max_depth is not None and _nested_deeper(body, data, max_depth):
        why = f"the body is nested too deeply: objects and arrays over {max_depth} levels"
        raise InvalidRequest(why, [Issue(why, code="structure")])
    return data


def _nested_deeper(body: bytes, data: dict[str, Any], limit: int) -> bool:
    """Whether objects and arrays in `data` nest more than `limit` levels (the top is level 1).
    Level by level, never recursing; skipped when `body` has too few brackets to nest that
    deep. A patient's record has thousands of containers, so each level's children are listed
    in C (`gc.get_referents`: a dict's values, a list's items) and filtered in C: a
    Python loop over every value cost a quarter of a large call (26 ms of a 4 MB record's)."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    level: list[Any] = [data]
    for _ in range(limit):
        children = gc.get_referents(*level)
        level = list(compress(children, map(_IS_CONTAINER, map(type, children))))
        if not level:
            return False
    return True


_IS_CONTAINER = frozenset({dict, list}).__contains__
