"""Shared by the store's API tests: a store opened on an upgraded database, the auditor's and the
admin's tokens, and the audit table read back."""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from iris_prompt.store.models import AuditEvent
from iris_prompt.store.service import Store, StoreConfig
from tests.api.engine_support import CONTACTS
from tests.conftest import upgraded

AUDITOR = "auditor-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"


def open_store(url: str, data_dir: Path, **config: Any) -> Store:
    upgraded(url)
    store_config = StoreConfig(
        data_dir=data_dir, database_url=url, pseudonym_key=b"k" * 32, **config
    )
    return Store.open(store_config, CONTACTS)


def audit_rows(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent)))
