#!/usr/bin/python3
"""The server's CPU per call, measured the way two shared cores allow.

  call_cpu.py [--build-dir build] [--before-build-dir DIR] [--rounds 5]
              [--duration 6] [--concurrency 1,16] [--no-pin]
              [--server-cpu 0] [--client-cpu 1] [--modes health,classify,stream]
              [--json] [--json-out FILE]

Builds nothing: uses BUILD_DIR/bin/rnnserve and BUILD_DIR/bin/rnnctl (a
Release build). Starts rnnserve with --compute-threads=1 pinned to one CPU
(taskset -c --server-cpu) and runs `rnnctl bench` pinned to the other
(--client-cpu), so that client and server never take each other's core.
Pinning is on by default when the machine has two CPUs or more.

Per round and concurrency it runs health (the bare gRPC call), classify
(fashion_lstm, batch 1) and stream (sine_rnn sessions, chunks of 10 steps,
one session per worker). Each run warms up for a second; then, inside the
measured window only, it reads the server process's utime + stime from
/proc/PID/stat and its metrics (rnnserve_compute_duration_seconds and
rnnserve_batch_size sums) at both ends, and the context switches of its
threads (/proc/PID/task/*/status). From that window:

  server CPU us per call  = server CPU seconds / wall seconds / calls per second
  engine us per sequence  = engine seconds / sequences (or chunks) run
  ours                    = classify CPU - health CPU - engine per sequence

"ours" is what the server spends on a Classify call beyond a bare gRPC call
and the engine's own work. Engine time is the engine call's wall time, which
on a pinned, single compute thread is its CPU time (other server threads can
preempt it on the shared CPU: at high concurrency it reads a little high, and
"ours" a little low).

With --before-build-dir a second server (another build, e.g. an older
commit) is measured the same way, its runs interleaved with this build's
(each run of one build next to the same run of the other, which goes first
in every other round), and the table gives both and their ratio, also as
the median of each round's ratio. Medians over --rounds. --json-out FILE
keeps every run. BENCHMARKS.md section 4 has the figures and how to read
them.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from server_bench import Server, engine_figures, process_cpu_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("health", "classify", "stream")
METHOD = {"classify": "Classify", "stream": "Regress"}


def context_switches(pid):
    """Voluntary and involuntary context switches of all of a process's
    threads so far (threads that have ended are not counted)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def client_command(build_dir, server, mode, concurrency, warmup, duration):
    cmd = [os.path.join(build_dir, "bin", "rnnctl"), "bench",
           f"--server={server.address()}", f"--mode={mode}",
           f"--concurrency={concurrency}", f"--warmup={warmup}s",
           f"--duration={duration}s", "--json"]
    if mode == "classify":
        cmd += ["--model=fashion_lstm", "--batch=1"]
    if mode == "stream":
        # The deadline covers a whole stream: warm-up plus the measurement.
        cmd += ["--model=sine_rnn", "--chunk=10", "--timeout=0"]
    return cmd


def measure(args, build_dir, server, mode, concurrency):
    """One run; the server's CPU and metrics inside the measured window."""
    warmup, margin = 1.0, 0.3
    cmd = args.client_prefix + client_command(build_dir, server, mode, concurrency,
                                              warmup, args.duration)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        time.sleep(warmup + margin)
        # Scrapes stay outside the CPU window: metrics, then CPU; CPU, then
        # metrics.
        m0 = server.metrics()
        s0 = context_switches(server.proc.pid)
        c0, t0 = process_cpu_seconds(server.proc.pid), time.monotonic()
        time.sleep(args.duration - 2 * margin)
        c1, t1 = process_cpu_seconds(server.proc.pid), time.monotonic()
        s1 = context_switches(server.proc.pid)
        m1 = server.metrics()
        out = proc.communicate(timeout=args.duration + 60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out}")
    r = json.loads(out)
    row = {"mode": mode, "concurrency": concurrency, "per_second": r["per_second"],
           "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
           "errors": sum(r["errors"].values()),
           "server_cpu_load": (c1 - c0) / (t1 - t0)}
    row["server_cpu_us"] = 1e6 * row["server_cpu_load"] / r["per_second"]
    row["switches"] = (s1 - s0) / (t1 - t0) / r["per_second"]
    method = METHOD.get(mode)
    if method:
        figures = engine_figures(m0, m1, method)
        if figures:
            row["mean_batch"], row["engine_us"] = figures
    return row


def medians(rows):
    out = {}
    for r in rows:
        out.setdefault((r["mode"], r["concurrency"]), []).append(r)
    table = {}
    for key, rs in out.items():
        table[key] = {k: statistics.median(r[k] for r in rs if k in r)
                      for k in rs[0] if isinstance(rs[0][k], (int, float))}
        table[key]["runs"] = len(rs)
    return table


def ours(table, concurrency):
    """Classify CPU - health CPU - engine per sequence, from medians."""
    c, h = table[("classify", concurrency)], table[("health", concurrency)]
    return c["server_cpu_us"] - h["server_cpu_us"] - c.get("engine_us", 0.0)


def runs_of(rows, key):
    return [r for r in rows if (r["mode"], r["concurrency"]) == key]


def round_ours(rows, concurrency):
    """ours of each round, from that round's own classify and health runs."""
    c = runs_of(rows, ("classify", concurrency))
    h = runs_of(rows, ("health", concurrency))
    return [rc["server_cpu_us"] - rh["server_cpu_us"] - rc.get("engine_us", 0.0)
            for rc, rh in zip(c, h)]


def print_table(name, table, levels):
    print(f"\n{name}")
    print(f"{'mode':9} {'conc':>5} {'ops/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} "
          f"{'srv CPU':>8} {'CPU us/op':>9} {'cs/op':>6} {'batch':>6} {'engine us':>9}")
    for (mode, conc), t in sorted(table.items(), key=lambda kv: (kv[0][1],
                                                                 MODES.index(kv[0][0]))):
        batch = f"{t['mean_batch']:6.1f}" if "mean_batch" in t else f"{'':6}"
        eng = f"{t['engine_us']:9.2f}" if "engine_us" in t else f"{'':9}"
        print(f"{mode:9} {conc:5} {t['per_second']:9,.0f} {t['p50_ms']:7.3f} "
              f"{t['p99_ms']:7.3f} {t['errors']:4.0f} {t['server_cpu_load']:8.2f} "
              f"{t['server_cpu_us']:9.2f} {t['switches']:6.2f} {batch} {eng}")
    for c in levels:
        print(f"ours at concurrency {c}: classify - health - engine = {ours(table, c):.2f} us")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(os.path.dirname(HERE), "build"))
    p.add_argument("--before-build-dir", default="",
                   help="a second build to measure the same way, interleaved")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=6)
    p.add_argument("--concurrency", default="1,16")
    p.add_argument("--modes", default=",".join(MODES))
    pin_default = (os.cpu_count() or 1) >= 2
    p.add_argument("--pin", action=argparse.BooleanOptionalAction, default=pin_default,
                   help="pin server and client to separate CPUs with taskset "
                        "(default: on with two CPUs or more)")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--json", action="store_true")
    p.add_argument("--json-out", default="", help="also write every run to this file")
    args = p.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]
    server_prefix = ["taskset", "-c", args.server_cpu] if args.pin else []
    args.client_prefix = ["taskset", "-c", args.client_cpu] if args.pin else []

    builds = {"after": args.build_dir}
    if args.before_build_dir:
        builds = {"before": args.before_build_dir, "after": args.build_dir}
    servers = {}
    rows = {name: [] for name in builds}
    try:
        for name, d in builds.items():
            servers[name] = Server(os.path.join(d, "bin", "rnnserve"),
                                   ["--compute-threads=1"], prefix=server_prefix)
        for r in range(args.rounds):
            # ABBA: each build goes first in every other round, so that a
            # drift of the machine's speed within a pair favours neither.
            order = list(builds.items())
            if r % 2 == 1:
                order.reverse()
            for c in levels:
                for mode in modes:
                    for name, d in order:
                        print(f"round {r + 1}/{args.rounds}: {name} {mode} at "
                              f"concurrency {c}", file=sys.stderr)
                        rows[name].append(measure(args, d, servers[name], mode, c))
    finally:
        for s in servers.values():
            s.stop()

    tables = {name: medians(rs) for name, rs in rows.items()}
    everything = {"pinned": args.pin, "duration_s": args.duration, "rounds": args.rounds,
                  "builds": builds, "runs": rows,
                  "medians": {n: {f"{m}@{c}": v for (m, c), v in t.items()}
                              for n, t in tables.items()}}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(everything, f, indent=1)
    if args.json:
        json.dump(everything, sys.stdout, indent=1)
        print()
        return
    pinned = (f"server on CPU {args.server_cpu}, rnnctl on CPU {args.client_cpu}"
              if args.pin else "no")
    print(f"pinned: {pinned}; "
          f"{args.duration:g} s runs, medians of {args.rounds} rounds; CPU us per call "
          "from /proc inside the measured window")
    for name, t in tables.items():
        print_table(f"{name}: {builds[name]}", t,
                    levels if {"classify", "health"} <= set(modes) else [])
    if "before" in tables:
        b, a = tables["before"], tables["after"]
        print("\nafter / before (server CPU us per call)")
        for key in sorted(a, key=lambda k: (k[1], MODES.index(k[0]))):
            print(f"{key[0]:9} {key[1]:5} {b[key]['server_cpu_us']:8.2f} -> "
                  f"{a[key]['server_cpu_us']:8.2f}  ({a[key]['server_cpu_us'] / b[key]['server_cpu_us']:.3f}x)")
        if "classify" in modes and "health" in modes:
            for c in levels:
                print(f"ours at concurrency {c}: {ours(b, c):.2f} -> {ours(a, c):.2f} us")
        print("\nper round, paired (median over rounds of after / before, and of ours)")
        for key in sorted(a, key=lambda k: (k[1], MODES.index(k[0]))):
            ratios = [ra["server_cpu_us"] / rb["server_cpu_us"]
                      for rb, ra in zip(runs_of(rows["before"], key), runs_of(rows["after"], key))]
            print(f"{key[0]:9} {key[1]:5} {statistics.median(ratios):.3f}x  "
                  f"(rounds: {' '.join(f'{x:.2f}' for x in ratios)})")
        if "classify" in modes and "health" in modes:
            for c in levels:
                ob = round_ours(rows["before"], c)
                oa = round_ours(rows["after"], c)
                print(f"ours at concurrency {c}, median of rounds: {statistics.median(ob):.2f} -> "
                      f"{statistics.median(oa):.2f} us; paired difference "
                      f"{statistics.median(y - x for x, y in zip(ob, oa)):+.2f} us")


if __name__ == "__main__":
    main()
