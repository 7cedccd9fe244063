"""The run-wide log scan (tests/support/log_scan.py) finds what it looks for."""

from tests.support.log_scan import identifying_values, offending


def test_the_scan_catches_tokens_nhs_numbers_and_names() -> None:
    secrets = identifying_values()
    assert any(value.isdigit() and len(value) == 10 for value in secrets)  # NHS numbers
    assert "Testcase" in secrets  # a family name of a test record
    nhs = next(value for value in sorted(secrets) if value.isdigit())
    lines = [
        "service call answered 200 in 3.1 ms service=x hookInstance=abc",
        "Authorization: Bearer [redacted]",
        "a token eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln leaked",
        "Authorization: Bearer abcdefghijklmnop",
        f"member {nhs} checked",
        "patient Testcase seen",
    ]
    assert offending(lines, secrets) == lines[2:]
