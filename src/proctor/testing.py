"""Helpers for testing agents governed by proctor: a clock you move, models you script."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from proctor.models import ModelRequest, ModelResponse


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


class FunctionModel:
    """A model played by a function: ``fn(request) -> response``. For tests of agents."""

    def __init__(
        self,
        fn: Callable[[ModelRequest], ModelResponse | Awaitable[ModelResponse]],
        *,
        name: str = "simulated:cheap",
    ) -> None:
        self._fn = fn
        self._name = name
        self.requests: list[ModelRequest] = []

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        answer = self._fn(request)
        return await answer if inspect.isawaitable(answer) else answer


class ScriptedModel:
    """A model that answers from a queue. An unexpected call, or an answer left unused
    (check with ``assert_done()``), fails the test."""

    def __init__(self, responses: Sequence[ModelResponse], *, name: str = "simulated:cheap"):
        self._queue = list(responses)
        self._name = name
        self.requests: list[ModelRequest] = []

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if not self._queue:
            raise AssertionError(
                f"{self._name} was called {len(self.requests)} times; the script has "
                f"{len(self.requests) - 1} answers"
            )
        return self._queue.pop(0)

    def assert_done(self) -> None:
        if self._queue:
            raise AssertionError(f"{len(self._queue)} scripted answer(s) were never asked for")
