"""Deployment settings, from ``PROCTOR_*`` environment variables or given in code."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from proctor.errors import ConfigError


class Settings(BaseSettings):
    """Where proctor keeps its state and how it behaves as a worker."""

    model_config = SettingsConfigDict(env_prefix="PROCTOR_", frozen=True, extra="forbid")

    home: Path = Path(".proctor")
    """Folder for the embedded database and the generated audit key."""
    db_url: str | None = None
    """Database URL; default is SQLite at ``<home>/proctor.db``. A postgresql:// URL scales out."""
    audit_key_file: Path | None = None
    """PEM Ed25519 private key that signs audit checkpoints; default ``<home>/audit-key.pem``."""
    audit_anchor: Path | None = None
    """Append-only file (or pipe) that every signed audit checkpoint is also written to, so
    a chain cut short in the database shows against it; see docs/audit.md."""
    lease_s: float = Field(default=60.0, gt=0)
    """How long a worker holds a run before another may take it over."""
    checkpoint_every: int = Field(default=1000, gt=0)
    """Sign a checkpoint every this many entries of a tenant's chain (and when a run ends)."""
    shadow_db_url: str | None = None
    """Database of shadow runs; default is SQLite at ``<home>/shadow.db``. Kept apart, so a
    shadow run never appears among live runs nor spends a tenant's budget."""
    releases_refresh_s: float = Field(default=1.0, ge=0)
    """How old this worker's view of the release channels may be when a run opens (a
    change made through the worker itself shows at once)."""

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'proctor.db'}"

    @property
    def shadow_database_url(self) -> str:
        return self.shadow_db_url or f"sqlite:///{self.home / 'shadow.db'}"

    @property
    def key_path(self) -> Path:
        return self.audit_key_file or self.home / "audit-key.pem"


def load_settings() -> Settings:
    """Settings from the environment; a bad value is a ``ConfigError`` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PROCTOR_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid setting: {problems}") from None
