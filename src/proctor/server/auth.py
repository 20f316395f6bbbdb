"""Bearer authentication and role checks, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from proctor.errors import Forbidden, Unauthorized
from proctor.runtime import Runtime
from proctor.server.tokens import ApiToken, Role, verify_token

_bearer = HTTPBearer(auto_error=False, description="A token from `proctor tokens create`.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def authenticated(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    """The caller's live token; 401 without one, or for an unknown or revoked one."""
    if credentials is None:
        raise Unauthorized("send a bearer token: Authorization: Bearer pct_...")
    token = verify_token(runtime.store, credentials.credentials)
    if token is None:
        raise Unauthorized("the bearer token is unknown or revoked")
    return token


_RANK = {Role.VIEWER: 0, Role.APPROVER: 1, Role.ADMIN: 2}
"""Each role includes the ones before it: an approver reads what a viewer reads."""


def at_least(minimum: Role) -> Callable[[ApiToken], ApiToken]:
    """A dependency that lets through only tokens of ``minimum`` or a role that includes it."""

    def check(token: Annotated[ApiToken, Depends(authenticated)]) -> ApiToken:
        if _RANK[token.role] < _RANK[minimum]:
            allowed = " or ".join(r.value for r, rank in _RANK.items() if rank >= _RANK[minimum])
            raise Forbidden(
                f"this needs a token with the role {allowed}; {token.name} is {token.role}"
            )
        return token

    return check


Caller = Annotated[ApiToken, Depends(authenticated)]
Decider = Annotated[ApiToken, Depends(at_least(Role.APPROVER))]
Auditor = Annotated[ApiToken, Depends(at_least(Role.VIEWER))]
