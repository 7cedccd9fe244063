"""Defence in depth for logs: scrub bearer tokens, JWTs and access tokens from every record,
and the query of every request line (an access log's "GET /fhir/Flag?subject:identifier=...":
a search may name a patient by NHS number or id).

The code never logs a token; this filter is for what it does not control (a library's debug
line, an exception message). Attach it to handlers, since a filter on a logger does not see
records propagated from its children.

>>> redact('Authorization: Bearer abc.def-ghi')
'Authorization: Bearer [redacted]'
>>> redact('state=abc&code=x1y2')
'state=[redacted]&code=[redacted]'
>>> redact('127.0.0.1:5 - "GET /fhir/Flag?subject:identifier=x|9990000018 HTTP/1.1" 200')
'127.0.0.1:5 - "GET /fhir/Flag?[query redacted] HTTP/1.1" 200'
"""

import logging
import re

__all__ = ["RedactingFilter", "redact"]

_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted JWT]"),
    # A value quoted after a colon (JSON, a repr) or given after "=" (a form, a query); not the
    # name alone, as in a validation message ("fhirAuthorization.access_token: Field required").
    (re.compile(r"""(?i)(["']access_token["']\s*:\s*["'])[^"']*"""), r"\1[redacted]"),
    (re.compile(r"""(?i)(\baccess_token\s*=\s*["']?)[^"'\s,&}]+"""), r"\1[redacted]"),
    # OAuth redirect parameters in request lines (a SMART callback, an EHR launch).
    (re.compile(r"((?:^|[?&])(?:code|state|launch|code_verifier)=)[^&\s\"']+"), r"\1[redacted]"),
    # The whole query of a request line: its path is the service's own, its query the caller's.
    (re.compile(r"(\b[A-Z]{3,7} /[^\s?\"]*)\?[^\s\"]*( HTTP/)"), r"\1?[query redacted]\2"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) with tokens removed."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
