from __future__ import annotations

from tests.kernel.conftest import Env, env, make_env  # noqa: F401 - shared fixtures

__all__ = ["Env"]
