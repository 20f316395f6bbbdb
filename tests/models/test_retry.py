"""The shared retry loop, on its own: waits, limits, and what is not retried."""

from __future__ import annotations

import random

import pytest

from proctor.errors import ModelError
from proctor.models._retry import (
    Failure,
    RetryPolicy,
    call_with_retries,
    error_detail,
    retry_after_s,
    status_failure,
)


class Flaky:
    """Fails with the given failures in turn, then answers."""

    def __init__(self, *failures: Failure) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise _Raised(self.failures.pop(0))
        return "answer"


class _Raised(Exception):
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def classify(exc: Exception) -> Failure | None:
    return exc.failure if isinstance(exc, _Raised) else None


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


BUSY = Failure(retryable=True, status=503, detail="busy")


async def run(attempt: Flaky, policy: RetryPolicy, sleep: Sleeps) -> str:
    return await call_with_retries(
        attempt, classify=classify, policy=policy, model="test:m", sleep=sleep
    )


async def test_backoff_doubles_up_to_its_cap() -> None:
    sleep = Sleeps()
    policy = RetryPolicy(max_retries=5, backoff_base_s=0.5, backoff_max_s=3.0, jitter=0)

    assert await run(Flaky(BUSY, BUSY, BUSY, BUSY), policy, sleep) == "answer"

    assert sleep.waits == [0.5, 1.0, 2.0, 3.0]


def test_jitter_only_shortens_the_wait() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, jitter=0.25)
    rng = random.Random(7)

    waits = [policy.backoff_s(0, rng) for _ in range(50)]

    assert all(0.75 <= w <= 1.0 for w in waits)
    assert len(set(waits)) > 1


async def test_retry_after_replaces_backoff_and_is_capped() -> None:
    sleep = Sleeps()
    policy = RetryPolicy(max_retries=3, backoff_base_s=0.5, retry_after_max_s=10.0, jitter=0)
    asked = [
        Failure(retryable=True, status=429, detail="", retry_after_s=2.0),
        Failure(retryable=True, status=429, detail="", retry_after_s=3600.0),
    ]

    await run(Flaky(*asked), policy, sleep)

    assert sleep.waits == [2.0, 10.0]


async def test_attempts_are_bounded() -> None:
    attempt = Flaky(*[BUSY] * 10)

    with pytest.raises(ModelError) as raised:
        await run(attempt, RetryPolicy(max_retries=2, jitter=0), Sleeps())

    assert attempt.calls == 3
    assert (raised.value.retryable, raised.value.status) == (True, 503)
    assert str(raised.value).startswith("test:m gave no answer after 3 attempt(s): HTTP 503 (busy)")


async def test_zero_retries_tries_once() -> None:
    attempt = Flaky(BUSY)

    with pytest.raises(ModelError):
        await run(attempt, RetryPolicy(max_retries=0), Sleeps())

    assert attempt.calls == 1


async def test_a_non_retryable_failure_raises_at_once() -> None:
    attempt = Flaky(Failure(retryable=False, status=401, detail="bad key"))
    sleep = Sleeps()

    with pytest.raises(ModelError) as raised:
        await run(attempt, RetryPolicy(), sleep)

    assert attempt.calls == 1
    assert sleep.waits == []
    assert raised.value.retryable is False
    assert "check the API key" in str(raised.value)


async def test_an_unclassified_exception_propagates_untouched() -> None:
    calls = 0

    async def broken() -> str:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await call_with_retries(
            broken, classify=classify, policy=RetryPolicy(), model="test:m", sleep=Sleeps()
        )

    assert calls == 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_in_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_s(headers) == seconds


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (529, True), (400, False), (408, False)]
)
def test_only_429_and_5xx_are_retryable(status: int, retryable: bool) -> None:
    failure = status_failure(status, "x", {"retry-after": "1"})

    assert failure.retryable is retryable
    assert failure.retry_after_s == (1.0 if retryable else None)


def test_error_detail_reads_either_providers_error_body() -> None:
    openai_body = {"error": {"message": "Rate limit reached", "type": "requests"}}
    anthropic_body = {"type": "error", "error": {"type": "overloaded_error", "message": "Busy"}}

    assert error_detail(openai_body, "fallback") == "Rate limit reached"
    assert error_detail(anthropic_body, "fallback") == "Busy"
    assert error_detail("<html>502</html>", "fallback") == "fallback"


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
