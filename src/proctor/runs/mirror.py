"""A mirror: something that follows a live run call by call without changing what it
does, as a release's shadow run does (``proctor.releases.shadow``)."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from proctor.runs.model import CallOutcome


class CallMirror(Protocol):
    """Follows a live run (a ``Run``) call by call, as a shadow run does; never changes
    what the run does."""

    async def propose(self, tool: str, args: Mapping[str, Any] | str | bytes) -> None:
        """A call the live run is about to make: before it, on the same world."""
        ...

    async def called(
        self, live: Any, tool: str, args: Mapping[str, Any] | str | bytes, outcome: CallOutcome
    ) -> None:
        """What became of it in the live run (``replayed``: the journal answered)."""
        ...

    async def finish(self, live: Any, note: str | None = None) -> None: ...

    def told(self, trusted: str | None, plan: Any) -> None:
        """The live run was told trusted text (the request), or committed to a plan."""
        ...


async def mirrored(
    mirror: CallMirror | None,
    live: Any,
    tool: str,
    args: Mapping[str, Any] | str | bytes,
    pending: Coroutine[Any, Any, CallOutcome],
) -> CallOutcome:
    """The live call's outcome; the mirror sees the call first, on the world the live call
    sees, then what became of it."""
    if mirror is None:
        return await pending
    await mirror.propose(tool, args)
    try:
        outcome = await pending
    except Exception:
        if live.state.terminal:
            await mirror.finish(live)
        raise
    await mirror.called(live, tool, args, outcome)
    return outcome
