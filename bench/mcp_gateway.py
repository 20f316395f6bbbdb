"""What the MCP gateway adds to a tool call, over stdio: the same upstream (a trivial
echo tool, declared a write) called directly and through `proctor mcp serve`.

The same benchmark as `proctor bench mcp` (code in src/proctor/bench/mcp.py).

    python bench/mcp_gateway.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import json

from proctor.bench.mcp import measure

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    print(json.dumps(measure(parser.parse_args().calls), indent=2))
