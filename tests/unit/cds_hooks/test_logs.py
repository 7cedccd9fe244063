"""The redacting log filter (defence in depth; the code itself never logs a token)."""

import logging

import pytest

from cds_hooks.logs import RedactingFilter, redact

JWT = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("authorization: bearer opaque-token_123", "opaque-token_123"),
        (f"token {JWT} seen", JWT),
        ('{"access_token": "some-opaque-fhir-access-token", "x": 1}', "some-opaque-fhir"),
        ("access_token=abc123&scope=x", "abc123"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_filter_rewrites_message_args_and_exception_text() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", (f"Bearer {JWT}",), None)
    try:
        raise ValueError(f"boom {JWT}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert JWT not in record.getMessage()
    assert record.exc_text is not None and JWT not in record.exc_text


def test_an_access_log_line_keeps_its_path_not_its_query() -> None:
    """uvicorn's access log, as it logs a register search naming a patient by NHS number."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5",
            "GET",
            "/fhir/Flag?subject:identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactingFilter().filter(record)
    line = record.getMessage()
    assert "9990000018" not in line and "nhs-number" not in line
    assert '"GET /fhir/Flag?[query redacted] HTTP/1.1" 200' in line
