#!/usr/bin/python3
"""Every query of the Grafana dashboard is valid PromQL, as promtool parses it.

  check_dashboard_syntax.py --promtool PROMTOOL --dashboard JSON

Grafana's variables are replaced by values of their kind ($__rate_interval
by a duration, $model and the like by a regex), each query becomes a
recording rule of a throwaway rules file, and `promtool check rules` parses
them all. Unlike check_promql.py this needs no list of exported series, so it
also checks queries of series the server does not export yet.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_promql import dashboard_queries  # noqa: E402

DURATIONS = {"__rate_interval": "1m", "__interval": "15s",
             "__range": "1h", "interval": "1m"}


def substitute(expr):
    """`expr` with Grafana's variables replaced by values of their kind."""
    def value(m):
        name = m.group(1) or m.group(2)
        return DURATIONS.get(name, ".*")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--promtool", required=True)
    parser.add_argument("--dashboard", required=True)
    args = parser.parse_args()
    try:
        dashboard = json.load(open(args.dashboard, encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SystemExit(f"{args.dashboard}: not valid JSON: {e}")
    queries = [(where, substitute(expr))
               for where, expr in dashboard_queries(dashboard)
               if where.startswith("panel")]
    if not queries:
        raise SystemExit(f"{args.dashboard}: no panel queries")
    failed = []
    with tempfile.TemporaryDirectory() as work:
        # One file per query, so that an error names its panel.
        for i, (where, expr) in enumerate(queries):
            path = os.path.join(work, f"query{i}.yml")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"groups": [{"name": "dashboard", "rules": [
                    {"record": f"dashboard:query{i}", "expr": expr}]}]}, f)
            result = subprocess.run([args.promtool, "check", "rules", path],
                                    capture_output=True, text=True,
                                    timeout=60)
            if result.returncode != 0:
                failed.append(f"{where}: {expr}\n{result.stdout}"
                              f"{result.stderr}")
    for f in failed:
        print(f"FAIL: {f}", file=sys.stderr)
    if failed:
        return 1
    print(f"{len(queries)} dashboard queries parse as PromQL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
