"""Governed runs to purge: the audit tests' fixtures, and purging as the command does."""

from __future__ import annotations

from proctor import Runtime
from proctor.retention.purge import PurgeReport, purge
from proctor.retention.settings import RetentionSettings
from tests.audit.conftest import logged  # noqa: F401  (fixture)
from tests.cli.conftest import cli  # noqa: F401  (fixture)

DAY = 86400


def retention(**sections: object) -> RetentionSettings:
    """``retention(default={"payloads": "30d"}, tenants={...})``, as proctor.yaml holds it."""
    return RetentionSettings.model_validate(sections)


def purge_now(
    rt: Runtime, settings: RetentionSettings, *, days_later: float = 0, **options: object
) -> PurgeReport:
    """Move the test clock on by ``days_later``, then purge as `proctor retention purge` does."""
    rt.clock.advance(days_later * DAY)  # type: ignore[attr-defined]
    return purge(
        rt.store,
        rt.audit,
        settings,
        now=rt.clock.now(),
        bundle_version=str(rt.policy.version),
        **options,  # type: ignore[arg-type]
    )
