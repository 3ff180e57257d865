#!/usr/bin/env python3
"""Runs the statements dumped by `tests/compat.rs` (ClickHouse 18.16's answers included) in
chDB, the ClickHouse engine of a current release (`pip install chdb-core`), and compares the
answers line by line (as sorted lines: some answers have no ORDER BY). Exit status 1 on any
difference or failure.

Usage: check_current.py target/clickhouse-compat.json
"""
import json
import sys
import tempfile

from chdb import session


def main(path):
    doc = json.load(open(path))
    s = session.Session(tempfile.mkdtemp())
    version = s.query("SELECT version()", "TSV").bytes().decode().strip()
    s.query("CREATE DATABASE IF NOT EXISTS replay")
    s.query("USE replay")
    failures = 0
    for q in doc["setup"]:
        try:
            s.query(q)
        except Exception as e:  # noqa: BLE001 - report every statement that fails
            failures += 1
            print(f"FAIL setup on {version}: {q[:300]}\n    {e}")
    for item in doc["queries"]:
        q, want = item["sql"], bytes.fromhex(item["answer_hex"])
        try:
            got = s.query(q, "TSV").bytes()
        except Exception as e:  # noqa: BLE001
            failures += 1
            print(f"FAIL on {version}: {q[:300]}\n    {e}")
            continue
        if sorted(got.split(b"\n")) != sorted(want.split(b"\n")):
            failures += 1
            print(f"DIFF {doc['version']} vs {version}: {q[:300]}\n    old {want[:200]!r}\n    new {got[:200]!r}")
    n = len(doc["queries"])
    print(f"{len(doc['setup'])} setup statements, {n} queries: {failures} failures or differences "
          f"between ClickHouse {doc['version']} and {version}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
