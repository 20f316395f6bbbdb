"""Helpers for testing agents governed by proctor."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class ManualClock:
    """A clock that moves only when told: for expiry and wall-time budgets in tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        # Durations still use real time so stage timings stay meaningful.
        return time.monotonic()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
