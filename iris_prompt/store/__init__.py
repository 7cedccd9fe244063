"""The durable store: disclosure audit, feedback, the call log and the leads' analytics.

SQLite in the data directory by default, PostgreSQL when IRIS_DATABASE_URL is set; Alembic
migrations ship in `migrations/`. docs/store.md describes the schema and retention.
"""

from iris_prompt.store.audit import AuditLog, Disclosure, Spool
from iris_prompt.store.cardlog import CallRecord, CardLog, pseudonym
from iris_prompt.store.database import SchemaBehind, make_engine, prepare, schema_state, upgrade
from iris_prompt.store.feedback import StoreFeedback
from iris_prompt.store.retention import Retention, purge
from iris_prompt.store.service import Store, StoreConfig

__all__ = [
    "AuditLog",
    "CallRecord",
    "CardLog",
    "Disclosure",
    "Retention",
    "SchemaBehind",
    "Spool",
    "Store",
    "StoreConfig",
    "StoreFeedback",
    "make_engine",
    "prepare",
    "pseudonym",
    "purge",
    "schema_state",
    "upgrade",
]
