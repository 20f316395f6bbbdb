"""The gateway's configuration (``gateway.yaml``): the upstream servers, what each of
their tools declares, and whom the sessions' runs act as."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from proctor.errors import ConfigError
from proctor.integrations import Declarations
from proctor.policy import ResourceRef
from proctor.tools import ToolDeclaration

_STRICT = ConfigDict(extra="forbid", frozen=True)


class ResourceConfig(BaseModel):
    """What a call touches, for policies: ``{type: Note, id: name}`` makes the call's
    resource ``Note::"<its name argument>"``."""

    model_config = _STRICT
    type: str = Field(min_length=1)
    id: str = Field(min_length=1)
    """The argument whose value is the entity's id."""


class ToolConfig(BaseModel):
    """One upstream tool's declaration (the keywords of ``@tool``)."""

    model_config = _STRICT
    effect: Literal["read", "write", "destructive", "irreversible"]
    trust: Literal["trusted", "untrusted"] | None = None
    untrusted: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    sinks: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    resource: ResourceConfig | None = None
    idempotent: bool | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0)

    def declaration(self) -> ToolDeclaration:
        return ToolDeclaration(
            self.effect,
            trust=self.trust,
            untrusted=self.untrusted,
            identifiers=self.identifiers,
            sinks=self.sinks,
            targets=self.targets,
            sensitive=self.sensitive,
            scopes=self.scopes,
            resource=None if self.resource is None else _resource(self.resource),
            idempotent=self.idempotent,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
        )


def _resource(config: ResourceConfig) -> Any:
    def resource(args: Any) -> ResourceRef:
        value = args.model_dump(mode="json").get(config.id)
        return ResourceRef(config.type, "" if value is None else str(value))

    return resource


class ServerConfig(BaseModel):
    """One upstream MCP server: a command speaking stdio, or a streamable-HTTP URL."""

    model_config = _STRICT
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    """Declarations by upstream tool name or ``fnmatch`` pattern (``read_*``)."""
    default: ToolConfig | None = None
    """The declaration of a tool ``tools`` does not name; without it such a tool is not
    offered (nothing runs undeclared)."""
    prefix: str | None = None
    """Put before the server's tool names where they clash with another server's (and
    always with ``always_prefix``); default the server's name."""
    always_prefix: bool = False
    reconcile: str | None = None
    """A tool of this server that says whether an effect with an idempotency key happened:
    called with ``{"idempotency_key": KEY}``, it answers ``{"happened": bool, "result": ...}``
    (as structured content). Without it a call lost in a crash is handed off as
    ``outcome_unknown``."""
    connect_timeout_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give an upstream server either a command (stdio) or a url")
        return self

    def declarations(self) -> Declarations:
        return Declarations(
            {name: tool.declaration() for name, tool in self.tools.items()},
            default=None if self.default is None else self.default.declaration(),
        )


class GatewayConfig(BaseModel):
    """``gateway.yaml``."""

    model_config = _STRICT
    name: str = "proctor-gateway"
    policy: Path
    """The policy bundle's folder (relative to the config file)."""
    agent: str = Field(default="mcp-agent", min_length=1)
    role: str = Field(default="agent", min_length=1)
    """The agent's policy role (``principal in Role::"..."``)."""
    roles: dict[str, str] = Field(default_factory=dict)
    """Over HTTP: a token's name → the policy role its sessions act in."""
    tenant: str = Field(default="default", min_length=1)
    """Over stdio; over HTTP the token's tenant, if it has one."""
    workflow: str = Field(default="mcp", min_length=1)
    requester: str | None = None
    """Who the runs act for; default the client's declared name (``clientInfo``), or the
    ``requester_header`` over HTTP."""
    requester_header: str = "x-proctor-requester"
    session: Literal["connection", "client"] = "connection"
    """``connection``: each MCP session is a run. ``client``: the client's identity and
    requester name the session, so a client that reconnects continues its run."""
    idle_timeout_s: float = Field(default=900.0, gt=0)
    hide_denied: bool = True
    """Leave out of ``tools/list`` the tools the policy never allows for the role."""
    approval_url: str | None = None
    """Where a person decides an approval, ``{approval_id}`` filled in (the service's
    approval page); shown in the waiting result, and sent as a URL elicitation to clients
    that support it."""
    servers: dict[str, ServerConfig]

    @model_validator(mode="after")
    def _named(self) -> GatewayConfig:
        if not self.servers:
            raise ValueError("name at least one upstream server under servers:")
        for name in self.servers:
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]*", name):
                raise ValueError(f"server name {name!r}: use letters, digits, _ and -")
        return self


def load_config(path: Path | str) -> GatewayConfig:
    """Read ``gateway.yaml``; relative paths in it (the bundle, a server's cwd) are taken
    from the file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the gateway config {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the gateway config is a mapping (policy:, servers:...)")
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    base = path.resolve().parent
    servers = {
        name: server.model_copy(update={"cwd": str(base / (server.cwd or "."))})
        if server.command
        else server
        for name, server in config.servers.items()
    }
    return config.model_copy(update={"policy": base / config.policy, "servers": servers})
