#!/usr/bin/python3
"""A real rnnserve under `rnnctl bench`, in one session on this machine.

  server_bench.py [--build-dir build] [--duration 10] [--rounds 1]
                  [--concurrency 1,16,64] [--stream-sessions 1000]
                  [--stream-duration 10] [--server-flag=--compute-threads=1 ...]
                  [--client-flag=--channels=4 ...] [--json]

Builds nothing: uses BUILD_DIR/bin/rnnserve (a Release build) and
BUILD_DIR/bin/rnnctl. Starts rnnserve on 127.0.0.1 with a port it picks and
metrics on a free port, then, per round and per concurrency, runs the health
check (the RPC floor) and classify (fashion_lstm, batch 1) back to back,
interleaved: health, classify, health, classify, ... each for --duration
seconds; then streaming: --stream-sessions concurrent sine_rnn sessions,
chunks of 10 steps. Stops the server at the end, on failure too.

For each run: requests (or chunks) per second, p50 and p99 latency, the CPU
the server and the client spent per request (from /proc and the client's
rusage), and from the server's metrics the mean engine batch and engine time
per request. Then the ratio classify/health at each concurrency; the issue's
target is >= 0.7 at concurrency 64. Medians over --rounds.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid):
    """utime + stime of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    def __init__(self, binary, extra_flags, prefix=()):
        """`prefix` goes before the command, e.g. ("taskset", "-c", "0")."""
        self.metrics_port = free_port()
        cmd = list(prefix) + [binary, "--grpc-address=127.0.0.1:0",
               f"--metrics-address=127.0.0.1:{self.metrics_port}",
               "--shutdown-grace=2s"] + extra_flags
        self.log = open(os.devnull, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        self.banner = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"gRPC on port (\d+)", line)
            if m:
                self.port = int(m.group(1))
                self.banner = line.strip()
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"rnnserve did not start: {' '.join(cmd)}")
        # Keep draining its log so that it never blocks on a full pipe.
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stderr,
                                      stdout=subprocess.DEVNULL)

    def address(self):
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self):
        return process_cpu_seconds(self.proc.pid)

    def metrics(self):
        """{(name, labels): value} of the rnnserve_batch_size and
        rnnserve_compute_duration_seconds sums and counts."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"(rnnserve_(?:batch_size|compute_duration_seconds)_(?:sum|count))"
                         r"\{([^}]*)\} (\S+)", line)
            if m:
                out[(m.group(1), m.group(2))] = float(m.group(3))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "drain", None) is not None:
            self.drain.wait(timeout=5)
        self.log.close()


def metric_delta(before, after, name, method):
    total = 0.0
    for (n, labels), v in after.items():
        if n == name and f'method="{method}"' in labels:
            total += v - before.get((n, labels), 0.0)
    return total


def engine_figures(before, after, method):
    """(mean batch, engine microseconds per item) of `method`'s batches
    between two metrics readings, or None when none ran."""
    batches = metric_delta(before, after, "rnnserve_batch_size_count", method)
    items = metric_delta(before, after, "rnnserve_batch_size_sum", method)
    compute = metric_delta(before, after,
                           "rnnserve_compute_duration_seconds_sum", method)
    if not batches or not items:
        return None
    return items / batches, 1e6 * compute / items


def run_client(args, server, mode, concurrency, duration, extra):
    cmd = [os.path.join(args.build_dir, "bin", "rnnctl"), "bench",
           f"--server={server.address()}", f"--mode={mode}",
           f"--concurrency={concurrency}", f"--duration={duration}s", "--json"]
    method = {"classify": "Classify", "stream": "Regress"}.get(mode)
    if mode == "classify":
        cmd += ["--model=fashion_lstm", "--batch=1"]
    if mode == "stream":
        # The deadline covers a whole stream: warm-up plus the measurement.
        cmd += ["--model=sine_rnn", "--chunk=10", "--timeout=0"]
    cmd += args.client_flag + extra
    before = server.metrics()
    server_cpu = server.cpu_seconds()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    server_cpu = server.cpu_seconds() - server_cpu
    after = server.metrics()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out}")
    r = json.loads(out)
    # CPU over the whole client run (warm-up included), per operation of it.
    ops = r["per_second"] * wall
    row = {"mode": mode, "concurrency": concurrency, "per_second": r["per_second"],
           "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
           "errors": sum(r["errors"].values()),
           "server_cpu_us": 1e6 * server_cpu / ops,
           "client_cpu_us": 1e6 * (usage.ru_utime + usage.ru_stime) / ops}
    if method:
        figures = engine_figures(before, after, method)
        if figures:
            row["mean_batch"], row["compute_us"] = figures
    return row


def median_rows(rows):
    """One row per (mode, concurrency): the median of each figure."""
    groups = {}
    for r in rows:
        groups.setdefault((r["mode"], r["concurrency"]), []).append(r)
    out = []
    for (mode, conc), rs in groups.items():
        m = {"mode": mode, "concurrency": conc, "runs": len(rs)}
        for k in rs[0]:
            if k not in m and isinstance(rs[0][k], (int, float)):
                m[k] = statistics.median(r[k] for r in rs if k in r)
        out.append(m)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--stream-sessions", type=int, default=1000)
    p.add_argument("--stream-duration", type=float, default=10)
    p.add_argument("--server-flag", action="append", default=[],
                   help="extra rnnserve flag, e.g. --server-flag=--compute-threads=1")
    p.add_argument("--client-flag", action="append", default=[],
                   help="extra rnnctl bench flag, e.g. --client-flag=--channels=4")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c]

    server = Server(os.path.join(args.build_dir, "bin", "rnnserve"), args.server_flag)
    rows = []
    try:
        for r in range(args.rounds):
            for c in levels:
                for mode in ("health", "classify"):
                    print(f"round {r + 1}/{args.rounds}: {mode} at concurrency {c}",
                          file=sys.stderr)
                    rows.append(run_client(args, server, mode, c, args.duration, []))
        if args.stream_sessions > 0:
            print(f"stream: {args.stream_sessions} sessions", file=sys.stderr)
            rows.append(run_client(args, server, "stream", args.stream_sessions,
                                   args.stream_duration, []))
    finally:
        server.stop()

    table = median_rows(rows)
    by = {(t["mode"], t["concurrency"]): t for t in table}
    ratios = {c: by[("classify", c)]["per_second"] / by[("health", c)]["per_second"]
              for c in levels}
    if args.json:
        json.dump({"server": server.banner, "server_flags": args.server_flag,
                   "client_flags": args.client_flag, "duration_s": args.duration,
                   "rounds": args.rounds, "runs": rows, "medians": table,
                   "classify_over_health": ratios}, sys.stdout, indent=1)
        print()
        return
    print(server.banner.split("rnnserve: ", 1)[-1])
    if args.server_flag or args.client_flag:
        print("server flags:", " ".join(args.server_flag) or "-",
              " client flags:", " ".join(args.client_flag) or "-")
    print(f"{args.duration:g} s per run, median of {args.rounds} round(s); "
          "CPU per op over the whole run (warm-up too)")
    print(f"{'mode':9} {'conc':>5} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'srv CPU us':>10} {'cli CPU us':>10} {'batch':>6} {'engine us':>9}")
    for t in table:
        batch = f"{t['mean_batch']:6.1f}" if "mean_batch" in t else f"{'':6}"
        comp = f"{t['compute_us']:9.1f}" if "compute_us" in t else f"{'':9}"
        print(f"{t['mode']:9} {t['concurrency']:5} {t['per_second']:10,.0f} {t['p50_ms']:8.3f} "
              f"{t['p99_ms']:8.3f} {t['errors']:6.0f} {t['server_cpu_us']:10.1f} "
              f"{t['client_cpu_us']:10.1f} {batch} {comp}")
    for c in levels:
        target = "  (target >= 0.7)" if c == 64 else ""
        print(f"classify/health at concurrency {c}: {ratios[c]:.2f}{target}")


if __name__ == "__main__":
    main()
