#!/usr/bin/python3
"""Checks that the Grafana dashboard and the alert rules ask only for series
rnnserve exports.

  check_promql.py (--exported METRICS_TEXT | --render BINARY) \
                  --dashboard JSON --rules YAML

METRICS_TEXT is what Metrics::Render() prints; BINARY is a program that
prints it (tests/metrics' render_metrics). The dashboard must be valid JSON, have a `model` template
variable, and every rnnserve_* selector of a series that has a model label
must filter on it (model=~"$model"). Every metric name in a dashboard query or
a rule expression must be a series of METRICS_TEXT, or `up`.
"""
import argparse
import json
import re
import subprocess
import sys

# Series Prometheus makes itself for every target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on",
    "ignoring", "group_left", "group_right", "inf", "nan", "atan2",
}
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def exported_series(text):
    """Sample name -> the set of label names it carries."""
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(rf"({NAME})(?:\{{(.*?)\}})?\s", line)
        if not m:
            raise SystemExit(f"unreadable exposition line: {line}")
        labels = set(re.findall(rf"({NAME})=\"", m.group(2) or ""))
        series.setdefault(m.group(1), set()).update(labels)
    return series


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    e = re.sub(r"\$__\w+|\$\{?\w+\}?", "x", expr)  # Grafana variables.
    # label_values(metric, label) names a metric then a label.
    e = re.sub(r"label_values\(\s*([^,()]*?)\s*,\s*\w+\s*\)", r"\1", e)
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', e)  # Strings.
    e = re.sub(r"\{[^}]*\}", " ", e)  # Label matchers.
    e = re.sub(r"\[[^\]]*\]", " ", e)  # Ranges.
    e = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        " ", e)
    names = set()
    for m in re.finditer(rf"(?<![\w.]){NAME}", e):
        word = m.group(0)
        if word.lower() in KEYWORDS:
            continue
        if re.match(r"\s*\(", e[m.end():]):  # A function call.
            continue
        names.add(word)
    return names


def selectors(expr):
    """(metric, matchers) for every selector of `expr`."""
    return re.findall(rf"(?<![\w.])({NAME})\s*(\{{[^}}]*\}})?", expr)


def dashboard_queries(dashboard):
    """(where, expr) for every query of the dashboard, panels in rows too."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f'panel "{p.get("title")}" {t.get("refId")}',
                                t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if q:
            out.append((f'variable "{v.get("name")}"', q))
    return out


def rule_exprs(path):
    """(where, expr) for every `expr:` of a rules file, block scalars too.
    A line reader rather than a YAML parser: promtool has checked the file."""
    out = []
    lines = open(path, encoding="utf-8").read().splitlines()
    alert = "?"
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-?\s*(alert|record):\s*(\S+)", line)
        if m:
            alert = m.group(2)
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        i += 1
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2).strip()
        if value in ("|", ">", "|-", ">-"):
            body = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip())
                                      > indent):
                body.append(lines[i])
                i += 1
            value = "\n".join(body)
        out.append((f"rule {alert}", value.strip().strip("'")))
    return out


def main():
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exported", help="file of exposition text")
    source.add_argument("--render", help="program printing exposition text")
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--rules", required=True)
    args = parser.parse_args()

    if args.render:
        text = subprocess.run([args.render], check=True, capture_output=True,
                              text=True, timeout=60).stdout
    else:
        text = open(args.exported, encoding="utf-8").read()
    series = exported_series(text)
    known = set(series) | SYNTHETIC
    errors = []

    try:
        dashboard = json.load(open(args.dashboard, encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SystemExit(f"{args.dashboard}: not valid JSON: {e}")
    variables = {v.get("name") for v in
                 dashboard.get("templating", {}).get("list", [])}
    if "model" not in variables:
        errors.append(f"{args.dashboard}: no `model` template variable")
    queries = dashboard_queries(dashboard)
    if not queries:
        errors.append(f"{args.dashboard}: no queries")
    for where, expr in queries:
        if where.startswith("panel"):
            for metric, matchers in selectors(expr):
                if ("model" in series.get(metric, ()) and
                        not re.search(r'model=~"\$model"', matchers)):
                    errors.append(f"{args.dashboard}: {where}: {metric} not "
                                  f'filtered by model=~"$model"')

    rules = rule_exprs(args.rules)
    if not rules:
        errors.append(f"{args.rules}: no rule expressions found")

    for source, items in ((args.dashboard, queries), (args.rules, rules)):
        for where, expr in items:
            names = metric_names(expr)
            if not names:
                errors.append(f"{source}: {where}: no metric in: {expr}")
            for name in sorted(names - known):
                errors.append(f"{source}: {where}: {name} is not exported")

    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        return 1
    print(f"{len(queries)} dashboard queries and {len(rules)} rule "
          f"expressions name only exported series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
