"""Runs one page's Python snippets in one namespace, as a notebook would: each snippet
read from a file named on the command line, in order; top-level ``await`` allowed.
Exits non-zero at the first snippet that fails, naming it."""

from __future__ import annotations

import ast
import asyncio
import sys
import traceback
from pathlib import Path
from typing import Any

FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


async def _run(files: list[str]) -> int:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for name in files:
        where, _, path = name.partition("=")
        code = compile(Path(path).read_text(encoding="utf-8"), where, "exec", flags=FLAGS)
        try:
            result = eval(code, namespace)
            if asyncio.iscoroutine(result):
                await result
        except BaseException:
            traceback.print_exc()
            print(f"snippet failed: {where}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_run(sys.argv[1:])))
