#!/usr/bin/python3
"""rnnserve's engine against PyTorch 1.13 eager, single thread, in one run.

  compare.py [--engine-bench build/bin/engine_bench] [--rounds 3]
             [--repetitions 5] [--min-time 0.5] [--filter REGEX]
             [--openblas DIR] [--json]

Builds nothing. Runs bench/engine_bench (Google Benchmark, JSON, median
aggregate of --repetitions) and bench/pytorch_bench.py (median of
--repetitions) alternately, --rounds times, rotating which goes first, and
takes the median of each side's per-round medians. Prints, per shape:
rnnserve items/s, PyTorch items/s, and their ratio; then the issue's targets
(Classify at batch 64 >= 3x PyTorch, at batch 1 >= 10x).

Debian's torch calls whatever libblas.so.3 the loader finds: the reference
BLAS unless another is installed. --openblas DIR (a directory holding
OpenBLAS's libblas.so.3, see BENCHMARKS.md) adds a second PyTorch column run
with LD_LIBRARY_PATH=DIR, the fairer baseline.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TARGETS = (("Classify/batch:64", 3.0), ("Classify/batch:1", 10.0))


def run_engine(args):
    cmd = [args.engine_bench, "--benchmark_format=json",
           f"--benchmark_repetitions={args.repetitions}",
           "--benchmark_report_aggregates_only=true",
           f"--benchmark_min_time={args.min_time}"]
    if args.filter:
        cmd.append(f"--benchmark_filter={args.filter}")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    # One repetition reports no aggregates: take the run itself.
    want = "median" if args.repetitions > 1 else None
    return {b["run_name"]: b["items_per_second"]
            for b in json.loads(out)["benchmarks"]
            if b.get("aggregate_name") == want}


def run_pytorch(args, lib_dir):
    env = dict(os.environ)
    if lib_dir:
        env["LD_LIBRARY_PATH"] = lib_dir
    cmd = [sys.executable, os.path.join(HERE, "pytorch_bench.py"), "--json",
           f"--repetitions={args.repetitions}", f"--min-time={args.min_time}"]
    if args.filter:
        cmd.append(f"--filter={args.filter}")
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                    text=True, env=env).stdout)
    return ({b["name"]: b["items_per_second"] for b in out["benchmarks"]},
            out["context"]["blas"])


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "nproc": os.cpu_count(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine-bench", default=os.path.join(ROOT, "build", "bin", "engine_bench"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--filter", default="")
    p.add_argument("--openblas", default="",
                   help="directory with OpenBLAS's libblas.so.3 for a second PyTorch column")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if not os.access(args.engine_bench, os.X_OK):
        sys.exit(f"compare.py: no {args.engine_bench}; build it first "
                 "(tools/build.sh --target engine_bench)")

    sides = [("rnnserve", lambda: (run_engine(args), "oneDNN"))]
    sides.append(("pytorch", lambda: run_pytorch(args, "")))
    if args.openblas:
        sides.append(("pytorch_openblas", lambda: run_pytorch(args, args.openblas)))
    info = machine()
    info["load_start"] = loadavg()
    samples = {name: {} for name, _ in sides}
    blas = {}
    for r in range(args.rounds):
        shift = r % len(sides)
        for name, run in sides[shift:] + sides[:shift]:
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr)
            result, blas[name] = run()
            for shape, rate in result.items():
                samples[name].setdefault(shape, []).append(rate)
    info["load_end"] = loadavg()

    med = {name: {s: statistics.median(v) for s, v in by_shape.items()}
           for name, by_shape in samples.items()}
    shapes = list(med["rnnserve"])
    rows = []
    for s in shapes:
        row = {"shape": s, "rnnserve": med["rnnserve"][s]}
        for name, _ in sides[1:]:
            if s in med[name]:
                row[name] = med[name][s]
                row[name + "_ratio"] = med["rnnserve"][s] / med[name][s]
        rows.append(row)

    targets = []
    for shape, want in TARGETS:
        row = next((r for r in rows if r["shape"] == shape), None)
        if row is None:
            continue
        for name, _ in sides[1:]:
            if name + "_ratio" in row:
                got = row[name + "_ratio"]
                targets.append({"shape": shape, "baseline": name, "want": want,
                                "got": got, "met": got >= want})

    if args.json:
        json.dump({"machine": info, "blas": blas, "rounds": args.rounds,
                   "repetitions": args.repetitions, "rows": rows,
                   "samples": samples, "targets": targets}, sys.stdout, indent=1)
        print()
        return

    print(f"{info['date']}  {info['cpu']}, {info['nproc']} CPUs, one thread each side; "
          f"load {info['load_start']} -> {info['load_end']}")
    print(f"medians of {args.rounds} interleaved rounds x {args.repetitions} repetitions, items/s")
    for name, _ in sides[1:]:
        print(f"  {name}: BLAS {blas[name]}")
    header = f"{'shape':28} {'rnnserve':>12}"
    for name, _ in sides[1:]:
        header += f" {name:>17} {'ratio':>6}"
    print(header)
    for row in rows:
        line = f"{row['shape']:28} {row['rnnserve']:12,.0f}"
        for name, _ in sides[1:]:
            if name in row:
                line += f" {row[name]:17,.0f} {row[name + '_ratio']:6.2f}"
        print(line)
    for t in targets:
        print(f"target {t['shape']} >= {t['want']:g}x {t['baseline']}: "
              f"{t['got']:.2f}x {'met' if t['met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
