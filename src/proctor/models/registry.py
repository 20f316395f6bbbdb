"""From a spec such as ``openai:gpt-4o-mini`` to a model, at the configuration edge.

``openai`` and ``anthropic`` are built in; their SDKs are the optional
``proctor[providers]`` extra, imported only when a spec names them. So is
``simulated`` (``simulated:cheap``, ``simulated:strong``), the offline model,
whose brain is the app's playbook. Other providers (a test double) are passed
in as ``extra`` factories.
Everything wrong with a spec raises ``ConfigError`` before any request is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from proctor.errors import ConfigError, missing_extra
from proctor.models.base import Model
from proctor.models.playbook import Playbook
from proctor.models.simulated import NO_FAULTS, FaultRates, SimulatedModel

ModelFactory = Callable[[str], Model]
"""Builds a model from the part of the spec after ``provider:``."""

_NONE: Mapping[str, ModelFactory] = MappingProxyType({})

_ENV = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
}
"""Each built-in provider's API key and base URL variables."""

SIMULATED = "simulated"


def model_from_spec(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    extra: Mapping[str, ModelFactory] = _NONE,
    env: Mapping[str, str] | None = None,
    playbook: Playbook | None = None,
    seed: int = 0,
    faults: FaultRates = NO_FAULTS,
    **options: Any,
) -> Model:
    """The model ``spec`` names, as ``provider:model``.

    The model part is everything after the first colon (``openai:llama3.1:8b``
    names ``llama3.1:8b``). For ``openai`` and ``anthropic`` the API key and base
    URL come from the arguments, else from ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``
    or ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL`` in ``env`` (the process
    environment by default); ``options`` (``timeout_s``, ``max_retries``, ...) go
    to the provider. ``playbook``, ``seed`` and ``faults`` shape the ``simulated``
    model only (``SimulatedModel``); other providers do not use them. ``extra`` adds
    providers by name and wins over a built-in of the same name; those, and
    ``simulated``, take no key, URL or options.
    """
    provider, model = _split(spec, extra)
    if provider in extra or provider == SIMULATED:
        if base_url is not None or api_key is not None or options:
            raise ConfigError(
                f"model spec {spec!r}: the {provider} provider takes no base_url, api_key "
                "or options; remove them or choose another provider."
            )
        if provider in extra:
            return extra[provider](model)
        return SimulatedModel(seed, tier=model, faults=faults, playbook=playbook)
    build = _builtin(provider, spec)  # a missing package is said before a missing key
    environ = os.environ if env is None else env
    key_var, url_var = _ENV[provider]
    key = api_key or environ.get(key_var) or None
    if key is None:
        raise ConfigError(
            f"model spec {spec!r} needs an API key: set {key_var} or pass api_key "
            "(a local server that checks no key accepts any value)."
        )
    url = base_url or environ.get(url_var) or None
    try:
        return build(model, api_key=key, base_url=url, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model spec {spec!r}: {exc}") from exc


def _builtin(provider: str, spec: str) -> Callable[..., Model]:
    try:
        if provider == "openai":
            from proctor.models.openai import OpenAIModel

            return OpenAIModel
        from proctor.models.anthropic import AnthropicModel

        return AnthropicModel
    except ImportError as exc:
        raise missing_extra("providers", exc.name or provider, f"model spec {spec!r}") from exc


def _split(spec: str, extra: Mapping[str, ModelFactory]) -> tuple[str, str]:
    known = ", ".join(sorted({*_ENV, SIMULATED, *extra}))
    provider, colon, model = spec.partition(":")
    if not colon or not provider or not model:
        raise ConfigError(
            f"model spec {spec!r} must be 'provider:model', e.g. 'openai:gpt-4o-mini'; "
            f"known providers: {known}."
        )
    if provider not in _ENV and provider != SIMULATED and provider not in extra:
        raise ConfigError(
            f"model spec {spec!r} names unknown provider {provider!r}; known providers: {known}."
        )
    return provider, model
