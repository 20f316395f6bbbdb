"""The CLI works with the base install: the extras' packages load only when used.

`pip install . && proctor demo` must work on a machine with nothing but Python;
a command that needs an extra says which one.
"""

from __future__ import annotations

import json
import subprocess
import sys

EXTRAS_PACKAGES = {
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "jinja2",
    "prometheus_client",
    "opentelemetry",
    "grpc",
    "openai",
    "anthropic",
    "psycopg",
    "langgraph",
    "langchain_core",
    "langchain",
    "agents",
    "pydantic_ai",
    "mcp",
}


def test_the_cli_and_the_demo_import_no_extra() -> None:
    code = (
        "import sys, json\n"
        "import proctor, proctor.integrations\n"
        "import proctor.cli.main, proctor.cli.demo, proctor.evals.runner\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert set(json.loads(loaded)) & EXTRAS_PACKAGES == set()
