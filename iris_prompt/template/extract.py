"""SDC `$extract`: a completed template in, the transaction Bundle of its labelled entries out.

The response is checked whole first (`template.checks`, which validates it as a FHIR R4
QuestionnaireResponse); the entries come from the one answer-to-code mapping,
`template.recording.resources_for`.

Exceptions:

    ValueError
     └── ExtractError    a QuestionnaireResponse that cannot be extracted; .problems lists all

Spec: https://hl7.org/fhir/uv/sdc/OperationDefinition-QuestionnaireResponse-extract.html
"""

import copy
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from iris_prompt.template.answers import Problem
from iris_prompt.template.checks import check_response
from iris_prompt.template.recording import (
    UNFILED_SUBJECT,
    labelled_meta,
    resources_for,
    timestamp_of,
)

__all__ = ["ExtractError", "Problem", "extract"]


class ExtractError(ValueError):
    """A QuestionnaireResponse that cannot be extracted; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the QuestionnaireResponse")


def extract(questionnaire_response: Any, *, when: datetime | None = None) -> dict[str, Any]:
    """SDC $extract: a transaction Bundle of the labelled response and the entries it records.

    Raises ExtractError listing every problem when the response is not a valid, complete answer
    to this template. Entries are dated `when`, else the response's `authored`, else now.
    """
    problems, answers = check_response(questionnaire_response)
    if problems:
        raise ExtractError(problems)
    response: dict[str, Any] = copy.deepcopy(questionnaire_response)
    response["meta"] = labelled_meta(response.get("meta", {}))
    if when is not None:
        timestamp = timestamp_of(when)
    else:
        timestamp = response.get("authored") or timestamp_of(datetime.now(UTC))
    subject = response.get("subject") or UNFILED_SUBJECT
    resources = [response, *resources_for(answers, subject=subject, when=timestamp)]
    return {
        "resourceType": "Bundle",
        "meta": labelled_meta({}),
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
            for resource in resources
        ],
    }
