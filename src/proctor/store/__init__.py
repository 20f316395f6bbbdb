"""The database: SQLAlchemy Core tables and Alembic migrations."""

from proctor.store.engine import Store, normalise_url, sqlite_url

__all__ = ["Store", "normalise_url", "sqlite_url"]
