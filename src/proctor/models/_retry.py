"""Bounded retries with exponential backoff, shared by every network provider.

A provider turns each failed attempt into a ``Failure`` (status, whether trying
again may help, how long the server asked to wait); ``call_with_retries`` waits
and tries again on retryable failures and raises ``ModelError`` once the
attempts run out. Retryable: HTTP 429, 5xx, timeouts and connection errors.
Any other 4xx raises at once.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from proctor.errors import ModelError

T = TypeVar("T")

_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a provider tries again."""

    max_retries: int = 2
    """Attempts after the first; 0 tries once."""
    backoff_base_s: float = 0.5
    """The wait before the first retry; it doubles with each further retry."""
    backoff_max_s: float = 8.0
    """The longest wait computed by backoff."""
    retry_after_max_s: float = 30.0
    """The longest wait a server's ``Retry-After`` header is allowed to ask for."""
    jitter: float = 0.25
    """Fraction of each backoff wait taken off at random, so clients spread out (0 to 1)."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.retry_after_max_s < 0:
            raise ValueError("backoff and Retry-After limits must be 0 or more seconds")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def backoff_s(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (0 for the first retry)."""
        wait = min(self.backoff_max_s, self.backoff_base_s * 2.0**retry)
        if self.jitter and wait:
            fraction = rng.random() if rng is not None else random.random()
            wait *= 1.0 - self.jitter * fraction
        return wait

    def wait_s(self, retry: int, retry_after_s: float | None, rng: random.Random | None) -> float:
        """The server's ``Retry-After`` (capped) when it gave one, else backoff."""
        if retry_after_s is not None:
            return min(retry_after_s, self.retry_after_max_s)
        return self.backoff_s(retry, rng)


@dataclass(frozen=True)
class Failure:
    """What one failed attempt tells the retry loop."""

    retryable: bool
    status: int | None
    """The HTTP status, or None when no response came (timeout, connection error)."""
    detail: str
    """What went wrong, in the provider's words, shortened."""
    retry_after_s: float | None = None


def status_failure(status: int, message: str, headers: Mapping[str, str]) -> Failure:
    """A failure with an HTTP response: retryable for 429 and 5xx."""
    retryable = status == 429 or status >= 500
    return Failure(
        retryable=retryable,
        status=status,
        detail=shorten(message),
        retry_after_s=retry_after_s(headers) if retryable else None,
    )


def no_response_failure(message: str) -> Failure:
    """A timeout or a connection that failed before any response: always retryable."""
    return Failure(retryable=True, status=None, detail=shorten(message))


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms`` or ``Retry-After`` in seconds).

    ``headers`` must look names up case-insensitively, as HTTP clients' header maps do.
    An HTTP-date ``Retry-After`` is ignored and backoff applies instead.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    return _number(headers.get("retry-after"))


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def error_detail(body: object, fallback: str) -> str:
    """``error.message`` of an OpenAI or Anthropic JSON error body, else ``fallback``."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return fallback


def shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    classify: Callable[[Exception], Failure | None],
    policy: RetryPolicy,
    model: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, a failure is not retryable, or retries run out.

    ``classify`` turns a provider's exception into a ``Failure``; an exception it
    returns None for is not a provider failure and propagates unchanged.
    ``model`` is ``provider:model``, named in the error.
    """
    retry = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable:
                raise _rejected(model, failure) from exc
            if retry >= policy.max_retries:
                raise _gave_up(model, failure, attempts=retry + 1) from exc
        await sleep(policy.wait_s(retry, failure.retry_after_s, rng))
        retry += 1


def _what(failure: Failure) -> str:
    where = f"HTTP {failure.status}" if failure.status is not None else "no response"
    return f"{where} ({failure.detail})" if failure.detail else where


def _rejected(model: str, failure: Failure) -> ModelError:
    if failure.status in (401, 403):
        hint = "check the API key and that it may use this model"
    elif failure.status == 404:
        hint = "check the model name and the base URL"
    else:
        hint = "check the model name and what the request asks of this provider"
    return ModelError(
        f"{model} rejected the request: {_what(failure)}; {hint}. Trying again will not help.",
        retryable=False,
        status=failure.status,
    )


def _gave_up(model: str, failure: Failure, *, attempts: int) -> ModelError:
    return ModelError(
        f"{model} gave no answer after {attempts} attempt(s): {_what(failure)}. "
        "The provider is failing, overloaded or slow: try again later, raise max_retries "
        "or timeout_s, or route to another model.",
        retryable=True,
        status=failure.status,
    )
