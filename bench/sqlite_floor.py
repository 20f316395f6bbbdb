"""The floor under a governed call: the same two transactions in raw sqlite3.

proctor's intent transaction (head update, audit entry, payload, step row;
synchronous=FULL) and outcome transaction (the same, synchronous=NORMAL),
written with the standard library's sqlite3 and nothing else. Compare its
medians with `proctor bench` to see what proctor itself adds.

    python bench/sqlite_floor.py [--calls 5000] [--dir .]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

SCHEMA = [
    "CREATE TABLE heads (tenant TEXT PRIMARY KEY, seq INTEGER, head TEXT)",
    "CREATE TABLE entries (tenant TEXT, seq INTEGER, id TEXT UNIQUE, kind TEXT, run TEXT,"
    " step INTEGER, at TEXT, version TEXT, payload_hash TEXT, prev TEXT, hash TEXT,"
    " PRIMARY KEY (tenant, seq))",
    "CREATE INDEX entries_run ON entries (run)",
    "CREATE TABLE payloads (id TEXT PRIMARY KEY, tenant TEXT, at TEXT, body TEXT)",
    "CREATE TABLE steps (run TEXT, idx INTEGER, tool TEXT, args TEXT, status TEXT,"
    " decision TEXT, result TEXT, PRIMARY KEY (run, idx))",
]


def measure(folder: Path, calls: int) -> dict[str, float]:
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO heads VALUES ('t', 0, '')")
    decision = json.dumps({"effect": "allow", "policy_ids": ["p"], "reason": "permitted by p"})
    intent, outcome = [], []
    for i in range(calls):
        for durable, times in ((True, intent), (False, outcome)):
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            entry = uuid.uuid4().hex
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            seq = 2 * i + (1 if durable else 2)
            conn.execute("UPDATE heads SET seq = ?, head = ? WHERE tenant = 't'", (seq, "h" * 64))
            conn.execute(
                "INSERT INTO entries VALUES ('t', ?, ?, 'action', 'run', ?, 'at', 'v', ?, ?, ?)",
                (seq, entry, i, "p" * 64, "q" * 64, "r" * 64),
            )
            conn.execute(
                "INSERT INTO payloads VALUES (?, 't', 'at', ?)", (entry, json.dumps({"n": i}) * 8)
            )
            if durable:
                conn.execute(
                    "INSERT INTO steps VALUES ('run', ?, 'tool', '{}', 'executing', ?, NULL)",
                    (i, decision),
                )
            else:
                conn.execute(
                    "UPDATE steps SET status = 'succeeded', result = '{}' WHERE run = 'run' "
                    "AND idx = ?",
                    (i,),
                )
            conn.execute("COMMIT")
            times.append((time.perf_counter() - started) * 1e6)
    conn.close()
    return {
        "intent_txn_us_median": round(statistics.median(intent), 1),
        "outcome_txn_us_median": round(statistics.median(outcome), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the disk is measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(json.dumps(measure(Path(tmp), args.calls), indent=2))


if __name__ == "__main__":
    main()
