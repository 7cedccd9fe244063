"""The durable store: disclosure audit, feedback, the call log and the leads' analytics.

SQLite in the data directory by default, PostgreSQL when IRIS_DATABASE_URL is set; Alembic
migrations ship in `migrations/`. docs/store.md describes the schema and retention.
"""

__all__: list[str] = []
