"""Settings from IRIS_ environment variables, and the README's example configuration."""

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from iris_prompt.addresses import is_loopback, is_secure_base
from iris_prompt.app import create_app
from iris_prompt.settings import Settings, refusal
from tests.conftest import make_settings
from tests.support.tokens import SigningKey

README = Path(__file__).resolve().parents[3] / "README.md"


def test_trusted_issuers_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    issuers = [
        {"iss": "https://ehr.example", "jku": ["https://ehr.example/jwks"], "tenants": ["a"]}
    ]
    monkeypatch.setenv("IRIS_TRUSTED_ISSUERS", json.dumps(issuers))
    monkeypatch.setenv("IRIS_MAX_BODY_BYTES", "1024")
    settings = Settings()
    assert settings.trusted_issuers[0].jku == ("https://ehr.example/jwks",)
    assert settings.protocol_options().max_body_bytes == 1024


@pytest.mark.parametrize(
    ("env", "value", "reason"),
    [
        ("IRIS_JWT_ALGORITHMS", '["ES384", "HS256"]', "CDS Hooks forbids none and HMAC"),
        ("IRIS_JWT_ALGORITHMS", '["none"]', "CDS Hooks forbids none and HMAC"),
        ("IRIS_CORS_ALLOW_ORIGINS", '["*"]', "wildcard"),
        ("IRIS_PUBLIC_BASE_URL", "iris.example", "absolute URL"),
        ("IRIS_TRUSTED_ISSUERS", '[{"iss": "https://x.example"}]', "needs jwks"),
        ("IRIS_FRAME_ANCESTORS", '["https://ehr.example/page"]', "is not an origin"),
        ("IRIS_FRAME_ANCESTORS", '["https://*.example"]', "no wildcard"),
        ("IRIS_FRAME_ANCESTORS", '["ehr.example"]', "is not an origin"),
    ],
)
def test_refused_settings(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=reason):
        Settings()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
    ],
)
def test_local_mode_only_on_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        assert Settings(host=host, local_mode=True).local_mode
    else:
        with pytest.raises(ValidationError, match="local mode"):
            Settings(host=host, local_mode=True)


def test_serving_needs_trusted_issuers_unless_local() -> None:
    with pytest.raises(ValueError, match="no trusted CDS clients"):
        create_app(Settings())
    assert create_app(Settings(local_mode=True))


def test_serving_needs_the_public_base_url_unless_local(es384_key: SigningKey) -> None:
    """Without it the JWT `aud` would be checked against the Host header the caller chose."""
    with pytest.raises(ValueError, match="IRIS_PUBLIC_BASE_URL is not set"):
        create_app(make_settings(es384_key))
    assert create_app(make_settings(es384_key, public_base_url="https://iris.example.nhs.uk"))


@pytest.mark.parametrize(
    ("base", "secure"),
    [
        ("https://iris.example.nhs.uk", True),
        ("https://iris.example.nhs.uk/cds/proxy", True),
        ("http://127.0.0.1:8000", True),  # loopback: tests and one-machine development
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://iris.example.nhs.uk", False),
        ("http://10.0.0.5:8000", False),
        ("http://127.0.0.1.example.com", False),
    ],
)
def test_public_base_url_must_be_https_outside_local_mode(
    es384_key: SigningKey, base: str, secure: bool
) -> None:
    """CDS Hooks: all data exchanged through the RESTful APIs over HTTPS (TLS)."""
    assert is_secure_base(base) is secure
    if secure:
        assert create_app(make_settings(es384_key, public_base_url=base))
    else:
        with pytest.raises(ValueError, match="IRIS_PUBLIC_BASE_URL must be https:// outside"):
            create_app(make_settings(es384_key, public_base_url=base))


def test_local_mode_may_publish_a_plain_http_base() -> None:
    assert create_app(Settings(local_mode=True, public_base_url="http://dev.example:8000"))


def test_readme_example_trusts_the_cds_hooks_sandbox_key(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"IRIS_TRUSTED_ISSUERS='(.*?)'", text, re.S)
    assert match, "the README shows IRIS_TRUSTED_ISSUERS"
    monkeypatch.setenv("IRIS_TRUSTED_ISSUERS", match.group(1))
    [issuer] = Settings().trusted_issuers
    sandbox = json.loads((reference_dir / "cds-hooks" / "sandbox-jwks.json").read_text())
    assert issuer.iss == "https://sandbox.cds-hooks.org"
    assert issuer.jwks == sandbox


def test_the_known_abuse_enquiry_window_is_a_setting_that_reaches_the_rules() -> None:
    from iris_prompt.codesets.files import default_codesets_dir
    from iris_prompt.codesets.live import SERVICE_CHECKS, CodeSetRegistry
    from iris_prompt.engine.service import Engine

    settings = Settings(local_mode=True, known_abuse_enquiry_window_days=30)
    engine = Engine.from_settings(
        CodeSetRegistry(default_codesets_dir(), checks=SERVICE_CHECKS), settings
    )
    assert engine.rules.known_abuse_enquiry_window.days == 30
    with pytest.raises(ValueError):
        Settings(local_mode=True, known_abuse_enquiry_window_days=-1)


def test_readme_lists_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"`IRIS_{name.upper()}`" in text, name


def test_the_defaults_the_issue_names_reach_the_engine() -> None:
    # A recent enquiry holds the prompt back for 12 months; the household lookup has 300 ms.
    from iris_prompt.codesets.files import default_codesets_dir
    from iris_prompt.codesets.live import SERVICE_CHECKS, CodeSetRegistry
    from iris_prompt.engine.service import Engine

    settings = Settings(local_mode=True)
    engine = Engine.from_settings(
        CodeSetRegistry(default_codesets_dir(), checks=SERVICE_CHECKS), settings
    )
    assert engine.rules.enquiry_window.days == 365
    # Issue 11 point 10: a routine enquiry holds back the known-abuse card for 90 days at most.
    assert engine.rules.known_abuse_enquiry_window.days == 90
    assert engine.lookup.budget == 0.3
    assert engine.rules.minimum_age == 16


def test_a_refusal_names_each_setting_and_never_echoes_the_value() -> None:
    """What an operator reads when settings are refused (serve, store, report): the variable,
    the path inside it, what is wrong; the values given may be secrets and are left out."""
    with pytest.raises(ValidationError) as refused:
        Settings(
            pseudonym_key="short-secret-value",
            trusted_issuers=[{"iss": "https://ehr.example", "jku": "not-a-list"}],
            retention_audit_days=40000,
        )
    said = refusal(refused.value)
    assert "IRIS_PSEUDONYM_KEY: must be at least 32 characters" in said
    assert "18" not in said  # nor the length of the secret given
    assert "IRIS_TRUSTED_ISSUERS (0.jku)" in said
    assert "IRIS_RETENTION_AUDIT_DAYS: Input should be less than or equal to 36525" in said
    assert "short-secret-value" not in said
    assert "errors.pydantic.dev" not in said
    # A refusal from a model check reads as the check wrote it.
    with pytest.raises(ValidationError) as several:
        Settings(workers=2, redis_url=None)
    assert refusal(several.value).startswith("2 workers need a shared replay store")


def never_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a refusal not come, the test fails rather than serve for ever in its worker."""
    from iris_prompt.ops import workers

    def refused_to_start(*_args: object) -> None:
        pytest.fail("serve started: the settings were not refused")

    monkeypatch.setattr(workers, "run", refused_to_start)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://:s3cret-pw@redis host:6379/0", "the host is neither a host name nor an IP"),
        ("redis://:s3cret-pw@redis:6379/O", "the database must be a number"),
        ("redis://:s3cret-pw@redis:6379?db=one", "the database must be a number"),
        ("redis://:s3cret-pw@redis:6379/\u00b9", "the database must be a number"),
        ("redis://:s3cret-pw@redis:99999/0", "the port must be a number from 1 to 65535"),
        ("redis://:s3cret-pw@/0", "has no host"),
        ("https://:s3cret-pw@redis:6379", "must start redis://, rediss:// (TLS) or unix://"),
        ("unix://", "unix:// needs the socket's path"),
        ("redis://:s3cret-pw@redis:6379/1/2", "the database must be a number"),  # read as 12
        ("redis://:s3cret-pw@redis/0?socket_timeout=s3cret", "socket_timeout has a value Redis"),
        ("unix:///run/redis.sock?db=0&max_connections=x", "max_connections has a value Redis"),
        # Python's own refusals of these quote the part of the URL holding the password.
        ("redis://:s3cret\uff03pw@redis/0", "is not a URL (a bracket or character out of place)"),
        ("redis://:s3cret-pw@[::1/0", "is not a URL (a bracket or character out of place)"),
    ],
)
def test_an_unusable_redis_url_is_refused_without_repeating_it(url: str, problem: str) -> None:
    """Redis's client would take these (a host with a space, a database that is not a number)
    and the service would start only to answer every call 503: refused at start instead, named
    by its variable, the URL (which holds the password) never repeated."""
    with pytest.raises(ValidationError) as refused:
        Settings(workers=2, redis_url=url)
    said = refusal(refused.value)
    assert said.startswith(f"IRIS_REDIS_URL: {problem}")
    assert "s3cret" not in said and "s3cret" not in str(refused.value)


def test_serve_refuses_an_unusable_redis_url_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from iris_prompt.cli import main

    for name in [name for name in os.environ if name.startswith("IRIS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(
        "IRIS_TRUSTED_ISSUERS", '[{"iss": "https://e.example", "jku": ["https://e.example/j"]}]'
    )
    monkeypatch.setenv("IRIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IRIS_REDIS_URL", "redis://:s3cret-pw@redis host:6379/0")
    never_served(monkeypatch)
    assert main(["serve", "--workers", "2"]) == 2
    said = capsys.readouterr().err
    assert said == (
        "iris-prompt: cannot start: IRIS_REDIS_URL: the host is neither a host name nor an "
        "IP address\n"
    )
    assert not (tmp_path / "data").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("variable", "least"),
    [("IRIS_ADMIN_TOKEN", 16), ("IRIS_AUDITOR_TOKEN", 16), ("IRIS_PSEUDONYM_KEY", 32)],
)
def test_a_short_secret_is_refused_with_the_settings_before_anything_is_made(
    variable: str,
    least: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A short token was refused only while the app was built, after the store was made; now
    with the other settings, by its variable, and without its length."""
    from iris_prompt.cli import main

    for name in [name for name in os.environ if name.startswith("IRIS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IRIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(variable, "s3cret-short")
    never_served(monkeypatch)
    assert main(["serve", "--local"]) == 2
    said = capsys.readouterr().err
    assert said == f"iris-prompt: cannot start: {variable}: must be at least {least} characters\n"
    assert not (tmp_path / "data").exists()
