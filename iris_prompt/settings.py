"""Configuration: every setting is an `IRIS_`-prefixed environment variable (README lists them).

Complex values are JSON, for example::

    IRIS_TRUSTED_ISSUERS='[{"iss": "https://sandbox.cds-hooks.org",
                           "jwks": {"keys": [{"kty": "EC", "crv": "P-384", ...}]}}]'
    IRIS_CORS_ALLOW_ORIGINS='["https://sandbox.cds-hooks.org"]'
"""

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_hooks.auth import ALLOWED_ALGORITHMS, JwtPolicy, TrustedIssuer
from cds_hooks.fhir import FhirLimits
from cds_hooks.http import ProtocolOptions
from iris_prompt.addresses import is_loopback, is_secure_base, redis_url_problem
from iris_prompt.register.clients import RegisterClient

__all__ = [
    "Settings",
    "get_settings",
    "refuse_unsafe_start",
    "refusal",
]

MiB = 1024 * 1024
# The shortest each secret may be: the bearer tokens (compared whole, so guessable when short)
# and the key the pseudonyms are made with.
SECRET_LENGTHS = {"admin_token": 16, "auditor_token": 16, "pseudonym_key": 32}
# A century: a retention period beyond it is a slip, and no date can be computed from it.
MAX_RETENTION_DAYS = 36525


class Settings(BaseSettings):
    # Inputs are left out of pydantic's own error text too: several settings are secrets (a
    # database or Redis URL holds a password), and a traceback may reach a log.
    model_config = SettingsConfigDict(
        env_prefix="IRIS_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    local_mode: bool = False
    public_base_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    trusted_issuers: list[TrustedIssuer] = Field(default_factory=list)
    jwt_algorithms: list[str] = Field(default_factory=lambda: list(ALLOWED_ALGORITHMS))
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    jwt_max_lifetime_seconds: float = Field(default=3600.0, gt=0)
    jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    jwks_refresh_interval_seconds: float = Field(default=60.0, ge=0)
    replay_cache_size: int = Field(default=100_000, gt=0)

    max_body_bytes: int = Field(default=16 * MiB, gt=0)
    # Slow clients (iris_prompt.serving): a request's headers must arrive within this long of
    # its start, its body within this long of its headers; an idle connection closes after
    # the keep-alive timeout.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=300)
    fhir_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    fhir_read_timeout_seconds: float = Field(default=10.0, gt=0)
    fhir_total_timeout_seconds: float = Field(default=20.0, gt=0)
    fhir_max_pages: int = Field(default=20, gt=0)
    fhir_max_bytes: int = Field(default=32 * MiB, gt=0)
    fhir_allow_http: bool = False
    # Loopback, link-local and private fhirServer addresses (tests and development only; an
    # issuer's fhir_servers allow-list admits its own whatever their address).
    fhir_allow_private_addresses: bool = False

    cors_allow_origins: list[str] = Field(default_factory=list)
    # The origins of EHR pages that may show the rules and template pages inside a frame (the
    # CSP's frame-ancestors). None by default: those pages then open only in a window or tab
    # of their own, where no other site can overlay them.
    frame_ancestors: list[str] = Field(default_factory=list)

    # Operations (docs/deployment.md). Worker processes of `iris-prompt serve`; more than one,
    # or a deployment of several instances, needs the shared replay store in Redis.
    workers: int = Field(default=1, ge=1, le=64)
    instances: int = Field(default=1, ge=1)
    # redis://[:password@]host:port/db (rediss:// for TLS): caller JWT ids shared by every
    # worker and instance. Unset: the in-process cache (one process only).
    redis_url: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    # GET /metrics on its own port (on IRIS_HOST); unset, on the service's port behind the
    # admin token (and not served without one).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: Literal["text", "json"] = "text"
    # On SIGTERM: stop accepting, let calls in flight finish for up to this long, then flush
    # the card log and close the pools.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=300)

    # None: the code sets bundled with this release (the repository's codesets/ folder).
    codesets_dir: Path | None = None
    # Bearer token for POST /admin/codesets/reload; unset, the admin endpoints are not served
    # (SIGHUP still reloads). At least 16 characters.
    admin_token: SecretStr | None = None

    # The store (docs/store.md; retention defaults and their reasons in store/retention.py).
    # The embedded SQLite file, the audit spool and (without IRIS_PSEUDONYM_KEY) the pseudonym
    # secret live in data_dir; IRIS_DATABASE_URL (postgresql+psycopg://...) puts the database
    # in PostgreSQL instead.
    data_dir: Path | None = None
    database_url: SecretStr | None = None
    pseudonym_key: SecretStr | None = None
    audit_spool: Path | None = None
    # Bearer token for GET /fhir/AuditEvent; unset, the audit is not served. At least 16
    # characters, and not the admin token (an auditor is not a code-set administrator).
    auditor_token: SecretStr | None = None
    retention_audit_days: int = Field(default=2922, ge=365, le=MAX_RETENTION_DAYS)
    retention_feedback_days: int = Field(default=730, ge=1, le=MAX_RETENTION_DAYS)
    retention_call_log_days: int = Field(default=730, ge=1, le=MAX_RETENTION_DAYS)
    # Unset, the register keeps every flag: the period for ended flags is for the MAPPA board
    # and the data protection officer to agree (register/retention.py).
    retention_register_days: int | None = Field(default=None, ge=365, le=MAX_RETENTION_DAYS)

    # The prompt engine (README "Configuration").
    enquiry_window_days: int = Field(default=365, ge=0, le=3650)
    # How long a routine enquiry holds back the known-abuse card (never while a MARAC, at-risk
    # or police-report entry is within 12 months).
    known_abuse_enquiry_window_days: int = Field(default=90, ge=0, le=3650)
    household_budget_seconds: float = Field(default=0.3, gt=0, le=10)
    household_cache_seconds: float = Field(default=60.0, gt=0, le=3600)
    # A Group with more other members than this is not a household (a care home, a hostel, a
    # practice-wide Group): the card says it was too large to check, and none is read.
    household_max_members: int = Field(default=20, ge=1, le=200)
    # The engine's CardSettings has the same defaults (a test keeps them equal).
    contact_safeguarding_lead: str = Field(default="your practice safeguarding lead", min_length=3)
    contact_mappa: str = Field(default="the local MAPPA co-ordinator", min_length=3)
    contact_domestic_abuse_service: str = Field(
        default="your IRIS advocate educator or the local IDVA service", min_length=3
    )
    contact_helpline: str = Field(
        default="National Domestic Abuse Helpline: 0808 2000 247 (free, 24 hours)", min_length=3
    )

    # The shared MAPPA flag register (docs/register.md). Off: no /fhir/Flag API and the
    # household check reads the GP system's flags only.
    register_enabled: bool = True
    # Partner systems that may publish or read flags (JSON list of RegisterClient: client_id,
    # organisation (ODS code), scopes, and jwks, jwks_file or jku, as IRIS_TRUSTED_ISSUERS).
    register_clients: list[RegisterClient] = Field(default_factory=list)

    # The recording template as a SMART on FHIR app (README "Configuration", docs/template.md).
    # Unset client id: no SMART launch; the card offers the page only.
    smart_client_id: str | None = Field(default=None, min_length=1)
    # The EHR FHIR base URLs (`iss`) the template may be launched from and file to.
    smart_issuers: list[str] = Field(default_factory=list)
    # A private JWK (JSON, with `kid` and `alg`): a confidential client using private_key_jwt.
    smart_private_key_file: Path | None = None
    # No key: a public client (PKCE alone), only where the EHR allows it; say so explicitly.
    smart_public_client: bool = False
    smart_session_idle_seconds: float = Field(default=900.0, ge=30, le=3600)

    @field_validator("jwt_algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        refused = sorted(set(value) - set(ALLOWED_ALGORITHMS))
        if refused:
            raise ValueError(f"not allowed (CDS Hooks forbids none and HMAC): {refused}")
        if not value:
            raise ValueError("at least one algorithm is needed")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an absolute URL such as https://iris.example.nhs.uk")
        return value.rstrip("/") if value else value

    @field_validator("admin_token", "auditor_token", "pseudonym_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Said without the length given: even that is a hint about a secret.
        least = SECRET_LENGTHS[info.field_name or ""]
        if value is not None and len(value.get_secret_value()) < least:
            raise ValueError(f"must be at least {least} characters")
        return value

    @field_validator("redis_url")
    @classmethod
    def _usable_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        problem = None if value is None else redis_url_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("list the origins; a wildcard would let any web page call us")
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _origins_only(cls, value: list[str]) -> list[str]:
        for origin in value:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("https", "http") or not rest or "/" in rest or "*" in rest:
                raise ValueError(
                    f"{origin!r} is not an origin: give each as https://host or "
                    "https://host:port, with no path and no wildcard"
                )
        return value

    def frame_policy(self) -> str:
        """The CSP frame-ancestors sources of the pages a clinician opens from a card."""
        return " ".join(self.frame_ancestors) or "'none'"

    @model_validator(mode="after")
    def _local_mode_only_on_loopback(self) -> "Settings":
        if self.local_mode and not is_loopback(self.host):
            raise ValueError(
                f"local mode (no caller authentication) is refused on {self.host}: "
                "bind to 127.0.0.1 or turn local mode off"
            )
        return self

    @model_validator(mode="after")
    def _shared_replay_store(self) -> "Settings":
        if self.local_mode or self.redis_url is not None:
            return self
        if self.workers > 1 or self.instances > 1:
            what = f"{self.workers} workers" if self.workers > 1 else f"{self.instances} instances"
            raise ValueError(
                f"{what} need a shared replay store: set IRIS_REDIS_URL. Each process's own "
                "jti cache would accept a caller token another process has already seen"
            )
        return self

    @model_validator(mode="after")
    def _smart_client_complete(self) -> "Settings":
        if self.smart_client_id is None:
            return self
        if not self.smart_issuers:
            raise ValueError("IRIS_SMART_ISSUERS: list the EHR FHIR base URLs the app may use")
        for iss in self.smart_issuers:
            if not iss.startswith("https://") and not (
                iss.startswith("http://") and self.local_mode
            ):
                raise ValueError(f"IRIS_SMART_ISSUERS: {iss} must be an https URL")
        if (self.smart_private_key_file is None) == (not self.smart_public_client):
            raise ValueError(
                "a SMART client needs either IRIS_SMART_PRIVATE_KEY_FILE (private_key_jwt) or "
                "IRIS_SMART_PUBLIC_CLIENT=true, not both"
            )
        return self

    @model_validator(mode="after")
    def _auditor_is_not_admin(self) -> "Settings":
        if (
            self.auditor_token is not None
            and self.admin_token is not None
            and self.auditor_token.get_secret_value() == self.admin_token.get_secret_value()
        ):
            raise ValueError("IRIS_AUDITOR_TOKEN must differ from IRIS_ADMIN_TOKEN")
        return self

    def jwt_policy(self) -> JwtPolicy:
        return JwtPolicy(
            algorithms=frozenset(self.jwt_algorithms),
            leeway=self.jwt_leeway_seconds,
            max_lifetime=self.jwt_max_lifetime_seconds,
            jwks_cache_ttl=self.jwks_cache_seconds,
            jwks_refresh_interval=self.jwks_refresh_interval_seconds,
        )

    def protocol_options(self) -> ProtocolOptions:
        return ProtocolOptions(
            max_body_bytes=self.max_body_bytes,
            public_base_url=self.public_base_url,
            # The engine reads a record with fixed-depth walks and the request model keeps
            # prefetch as plain data: nothing recurses over a call's body, so it is not
            # depth-checked (orjson refuses one over 1,024 levels). The check cost as much as
            # parsing: 12 ms of a 2.7 MB call. tests/api/test_engine_deep.py holds this true.
            max_json_depth=None,
            fhir_limits=FhirLimits(
                connect_timeout=self.fhir_connect_timeout_seconds,
                read_timeout=self.fhir_read_timeout_seconds,
                total_timeout=self.fhir_total_timeout_seconds,
                max_pages=self.fhir_max_pages,
                max_bytes=self.fhir_max_bytes,
                # Local mode is loopback-only development: a local http FHIR server is fine,
                # and so is an open one read without an access token (said at start-up).
                # Outside it, no FHIR request goes without the caller's token.
                allow_http=self.fhir_allow_http or self.local_mode,
                allow_anonymous=self.local_mode,
                allow_private=self.fhir_allow_private_addresses or self.local_mode,
            ),
        )


def refuse_unsafe_start(settings: Settings) -> None:
    """Outside local mode: trusted callers, a public base URL, and that URL https; a ValueError
    saying what to set otherwise. `create_app` checks it, and `iris-prompt serve` before it
    loads the service."""
    if settings.local_mode:
        return
    if not settings.trusted_issuers:
        raise ValueError(
            "no trusted CDS clients: set IRIS_TRUSTED_ISSUERS (see README, 'Connecting a GP "
            "system'), or run `iris-prompt serve --local` for development"
        )
    if settings.public_base_url is None:
        # The JWT `aud` must equal the URL the client called; taken from the Host header, any
        # other CDS service the same client calls could replay its tokens to us.
        raise ValueError(
            "IRIS_PUBLIC_BASE_URL is not set: give the URL CDS clients call (for example "
            "https://iris.example.nhs.uk), which caller JWTs must name as their audience"
        )
    if not is_secure_base(settings.public_base_url):
        # CDS Hooks: "All data exchanged through the RESTful APIs MUST be transmitted over ...
        # HTTPS". Caller JWTs, FHIR access tokens and records cross this channel.
        raise ValueError(
            f"IRIS_PUBLIC_BASE_URL must be https:// outside local mode, not "
            f"{settings.public_base_url}: CDS Hooks requires TLS, since caller JWTs, FHIR "
            "access tokens and patient records cross it. Terminate TLS in front of the service "
            "(a reverse proxy or load balancer) and give its https URL; plain http is allowed "
            "only on a loopback address"
        )


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once per process."""
    return Settings()


def refusal(error: ValueError) -> str:
    """What to tell an operator about refused settings: each setting by its variable and what
    is wrong with it, never the value given (it may be a password or a token)."""
    if not isinstance(error, ValidationError):
        # A value that cannot be parsed at all (pydantic-settings names it by its field).
        return re.sub(r'field "(\w+)"', lambda m: f"IRIS_{m.group(1).upper()}", str(error))
    said = []
    for problem in error.errors(include_url=False, include_input=False):
        message = problem["msg"].removeprefix("Value error, ")
        where = problem["loc"]
        if where:
            path = ".".join(str(part) for part in where[1:])
            name = f"IRIS_{str(where[0]).upper()}" + (f" ({path})" if path else "")
            message = f"{name}: {message}"
        said.append(message)
    return "; ".join(said)
