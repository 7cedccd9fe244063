"""The register's partner systems as configured (IRIS_REGISTER_CLIENTS), and its scopes.

Kept apart from `auth.py` so the settings can read them without loading the register.

    IRIS_REGISTER_CLIENTS='[{"client_id": "probation-nps-north", "organisation": "XYZ12",
        "scopes": ["system/Flag.write", "system/Flag.read"],
        "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", ...}]}}]'
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cds_hooks.auth import TrustedIssuer
from iris_prompt.register.identifiers import ODS_CODE

__all__ = ["READ", "SCOPES", "WRITE", "RegisterClient"]

READ, WRITE = "system/Flag.read", "system/Flag.write"
SCOPES = (READ, WRITE)


class RegisterClient(BaseModel):
    """One partner system (police, probation, the MAPPA co-ordinator) that may use the register."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1, max_length=256)
    organisation: str  # ODS code of the organisation the client publishes for
    scopes: tuple[str, ...] = (READ,)
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None
    jku: tuple[str, ...] = ()

    @field_validator("organisation")
    @classmethod
    def _ods(cls, value: str) -> str:
        if not ODS_CODE.fullmatch(value):
            raise ValueError("organisation must be an ODS code (3-10 A-Z and 0-9)")
        return value

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown or not value:
            raise ValueError(f"scopes: one or more of {list(SCOPES)}, not {unknown}")
        return value

    @model_validator(mode="after")
    def _keys(self) -> "RegisterClient":
        self.issuer()  # the same rule as a CDS client's: jwks, jwks_file or jku
        return self

    def issuer(self) -> TrustedIssuer:
        return TrustedIssuer(
            iss=self.client_id, jwks=self.jwks, jwks_file=self.jwks_file, jku=self.jku
        )
