"""What a completed template says, as plain data: the answers by linkId, and the problems a
response can have. Shared by the checks, the answer-to-code mapping and `$extract`."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Answers", "Problem"]

# linkId -> answer values: a form code (str), a bool or an int, by item type.
Answers = Mapping[str, Sequence[object]]


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (FHIRPath), what, and its OperationOutcome issue type."""

    expression: str
    message: str
    code: str = "invalid"
