"""``proctor mcp check``: every upstream's tools, what each declares, and what the
policy says of it for each role; tools with no declaration are named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proctor.gateway.config import GatewayConfig, load_config
from proctor.gateway.core import Gateway
from proctor.policy import MatrixCell, permission_matrix
from proctor.runtime import Runtime
from proctor.settings import Settings, load_settings


@dataclass(frozen=True)
class CheckedTool:
    name: str
    """As the gateway offers it."""
    server: str
    upstream_name: str
    effect: str | None
    """None: no declaration, so not offered."""
    trust: str | None
    verdicts: dict[str, MatrixCell]
    """Role → what the policy allows."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server": self.server,
            "upstream_name": self.upstream_name,
            "effect": self.effect,
            "trust": self.trust,
            "declared": self.effect is not None,
            "verdicts": {role: cell.to_json() for role, cell in self.verdicts.items()},
        }


async def check(
    config: GatewayConfig | Path | str, settings: Settings | None = None
) -> tuple[list[CheckedTool], list[str]]:
    """The tools of every upstream with their verdicts per role, and warnings."""
    loaded = config if isinstance(config, GatewayConfig) else load_config(config)
    runtime = Runtime(policy=loaded.policy, settings=settings or load_settings())
    gateway = Gateway(loaded, runtime)
    try:
        await gateway.start(sweep=False)
        effects = {n: e.tool.effect.value for n, e in gateway.exposed.items()}
        matrix = permission_matrix(runtime.policy, tools=effects)
        roles = tuple(dict.fromkeys((loaded.role, *loaded.roles.values(), *matrix.roles)))
        matrix = permission_matrix(runtime.policy, tools=effects, roles=roles)
        found = [
            CheckedTool(
                e.name,
                e.server,
                e.upstream_name,
                e.tool.effect.value,
                None if e.tool.trust is None else e.tool.trust.value,
                {role: matrix.cells[(role, e.name)] for role in roles},
            )
            for e in gateway.exposed.values()
        ]
        warnings = []
        for server, name in gateway.undeclared:
            found.append(CheckedTool(name, server, name, None, None, {}))
            warnings.append(
                f"{server}: tool {name} has no declaration, so the gateway does not offer it; "
                f"declare it under servers.{server}.tools (effect: read | write | "
                "destructive | irreversible)"
            )
        for e in gateway.exposed.values():
            if e.tool.trust is None:
                warnings.append(
                    f"{e.server}: tool {e.upstream_name} does not say whether its result can "
                    "be trusted (trust: trusted | untrusted); it is read as records"
                )
        return found, warnings
    finally:
        await gateway.close()
        runtime.close()
