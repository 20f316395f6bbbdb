"""A toy MCP server, written with the MCP SDK: notes to read, write and delete.

It stands for any upstream server the gateway governs. It counts its executions of each
tool in ``counts.json`` (in ``NOTES_DIR``, default the current folder), so a second
execution of a call would show, and it keeps the idempotency key each effect came with
(``effects.json``), which ``find_effect`` answers from after a gateway crash.

    python examples/mcp/upstream.py              # speaks MCP on stdin/stdout
    python examples/mcp/upstream.py --port 8765  # over streamable HTTP, at /mcp
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

KEY = "proctor/idempotency_key"
HERE = Path(os.environ.get("NOTES_DIR", "."))
server = MCPServer("notes")


def _load(name: str) -> dict[str, Any]:
    path = HERE / name
    return json.loads(path.read_text()) if path.exists() else {}


def _save(name: str, data: dict[str, Any]) -> None:
    path = HERE / name
    path.with_suffix(".tmp").write_text(json.dumps(data, indent=1, sort_keys=True))
    path.with_suffix(".tmp").replace(path)


def executed(tool: str, ctx: Context | None, result: dict[str, Any]) -> dict[str, Any]:
    """Count one execution of ``tool``; keep its result under the caller's idempotency key."""
    counts = _load("counts.json")
    counts[tool] = counts.get(tool, 0) + 1
    _save("counts.json", counts)
    meta = ctx.request_context.meta if ctx is not None else None
    key = (meta or {}).get(KEY)
    if key:
        effects = _load("effects.json")
        effects[key] = {"tool": tool, "result": result}
        _save("effects.json", effects)
    return result


@server.tool()
def read_note(name: str, ctx: Context) -> dict[str, Any]:
    """Read a note: its text is whatever was written into it."""
    notes = _load("notes.json")
    return executed("read_note", ctx, {"name": name, "body": notes.get(name, "")})


@server.tool()
def write_note(name: str, body: str, ctx: Context) -> dict[str, Any]:
    """Write (or overwrite) a note."""
    notes = _load("notes.json")
    notes[name] = body
    _save("notes.json", notes)
    return executed("write_note", ctx, {"name": name, "written": len(body)})


@server.tool()
def delete_note(name: str, ctx: Context) -> dict[str, Any]:
    """Delete a note for good."""
    notes = _load("notes.json")
    existed = notes.pop(name, None) is not None
    _save("notes.json", notes)
    return executed("delete_note", ctx, {"name": name, "deleted": existed})


@server.tool()
def purge_notes(ctx: Context) -> dict[str, Any]:
    """Delete every note."""
    removed = len(_load("notes.json"))
    _save("notes.json", {})
    return executed("purge_notes", ctx, {"deleted": removed})


@server.tool()
def find_effect(idempotency_key: str) -> dict[str, Any]:
    """Whether an effect with this idempotency key happened, and its result."""
    found = _load("effects.json").get(idempotency_key)
    return {"happened": found is not None, "result": None if found is None else found["result"]}


if __name__ == "__main__":
    import sys

    if "--port" in sys.argv:
        port = int(sys.argv[sys.argv.index("--port") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()
