#!/usr/bin/python3
"""A short call's latency while another client runs long sequences.

  fairness.py [--build-dir build] [--duration 8] [--rounds 3]
              [--settings 0/0,512/5] [--heavy-concurrency 4]
              [--heavy-batch 32] [--heavy-steps 10000]
              [--server-cpu 0] [--client-cpu 1] [--json]

Builds nothing: uses BUILD_DIR/bin/rnnserve (a Release build) and
BUILD_DIR/bin/rnnctl. Per round and per setting (SLICE/NICE: the server's
--slice-steps and --compute-nice), starts rnnserve on 127.0.0.1 pinned to
--server-cpu with one compute thread, and `rnnctl bench` pinned to
--client-cpu:

  1. alone: one light client, Classify of 1 sequence of 28 steps
     (fashion_lstm), concurrency 1, for --duration seconds;
  2. loaded: a heavy client keeps --heavy-concurrency Classify calls of
     --heavy-batch x --heavy-steps steps in flight; after two seconds the
     light client runs again for --duration seconds.

  3. the heavy client alone for --duration + 2 seconds: what slicing costs
     long work (beside the light client, the heavy one also loses the CPU
     the light calls take).

Reports the light client's p50 and p99 alone and loaded, loaded p99 / alone
p99 (the target is <= 3), and the heavy client's sequences/s beside the
light one and alone. 0/0 is the
server as it was before it had lanes and slices (no slices, compute threads
at the default priority), 512/5 its defaults now, so the default compares
before and after in one run. Medians over --rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from server_bench import Server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def start_server(build_dir, cpu, slice_steps, nice):
    return Server(os.path.join(build_dir, "bin", "rnnserve"),
                  ["--compute-threads=1", f"--slice-steps={slice_steps}",
                   f"--compute-nice={nice}",
                   # Four heavy calls (320,000 steps, 8,960,000 values each)
                   # must fit in the queue.
                   "--max-queued-steps=4000000",
                   "--max-queued-values=200000000"],
                  prefix=("taskset", "-c", str(cpu)))


def bench_cmd(build_dir, cpu, address, extra):
    return (["taskset", "-c", str(cpu), os.path.join(build_dir, "bin", "rnnctl"),
             "bench", f"--server={address}", "--json", "--model=fashion_lstm"]
            + extra)


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_round(args, setting):
    slice_steps, nice = setting
    server = start_server(args.build_dir, args.server_cpu, slice_steps, nice)
    address = server.address()
    try:
        light = bench_cmd(args.build_dir, args.client_cpu, address,
                          ["--concurrency=1", "--batch=1", "--steps=28",
                           f"--duration={args.duration}s"])
        alone = run_json(light + ["--warmup=1s"])
        heavy = subprocess.Popen(
            bench_cmd(args.build_dir, args.client_cpu, address,
                      [f"--concurrency={args.heavy_concurrency}",
                       f"--batch={args.heavy_batch}",
                       f"--steps={args.heavy_steps}", "--timeout=120s",
                       "--warmup=2s", f"--duration={args.duration + 2}s"]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(2.5)
        loaded = run_json(light + ["--warmup=0.5s"])
        out, _ = heavy.communicate(timeout=600)
        heavy_result = json.loads(out.strip().splitlines()[-1])
        # The heavy client alone: what slicing costs long work.
        heavy_alone = run_json(
            bench_cmd(args.build_dir, args.client_cpu, address,
                      [f"--concurrency={args.heavy_concurrency}",
                       f"--batch={args.heavy_batch}",
                       f"--steps={args.heavy_steps}", "--timeout=120s",
                       "--warmup=2s", f"--duration={args.duration + 2}s"]))
    finally:
        server.stop()
    for r in (alone, loaded, heavy_result, heavy_alone):
        if r["errors"]:
            raise RuntimeError(f"calls failed: {r['errors']}")
    return {
        "setting": f"{slice_steps}/{nice}",
        "alone_p50_ms": alone["latency_ms"]["p50"],
        "alone_p99_ms": alone["latency_ms"]["p99"],
        "loaded_p50_ms": loaded["latency_ms"]["p50"],
        "loaded_p99_ms": loaded["latency_ms"]["p99"],
        "loaded_max_ms": loaded["latency_ms"]["max"],
        "heavy_sequences_per_s": heavy_result["units_per_second"],
        "heavy_alone_sequences_per_s": heavy_alone["units_per_second"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default="0/0,512/5",
                        help="SLICE/NICE,...: --slice-steps/--compute-nice")
    parser.add_argument("--heavy-concurrency", type=int, default=4)
    parser.add_argument("--heavy-batch", type=int, default=32)
    parser.add_argument("--heavy-steps", type=int, default=10000)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = [tuple(int(v) for v in s.split("/"))
                for s in args.settings.split(",")]
    runs = []
    for r in range(args.rounds):
        for s in settings:
            row = one_round(args, s)
            print(f"round {r + 1} {row}", file=sys.stderr)
            runs.append(row)
    table = []
    for s in settings:
        name = f"{s[0]}/{s[1]}"
        rows = [r for r in runs if r["setting"] == name]
        med = {k: statistics.median(r[k] for r in rows)
               for k in rows[0] if k != "setting"}
        med["setting"] = name
        med["p99_ratio"] = med["loaded_p99_ms"] / med["alone_p99_ms"]
        table.append(med)
    base = table[0]["heavy_alone_sequences_per_s"]
    for t in table:
        t["heavy_alone_vs_first"] = t["heavy_alone_sequences_per_s"] / base
    if args.json:
        print(json.dumps(table, indent=1))
        return
    print("| --slice-steps/--compute-nice | alone p50 ms | alone p99 ms | loaded p50 ms | "
          "loaded p99 ms | p99 loaded/alone | heavy seq/s beside light | "
          "heavy seq/s alone | heavy alone vs first |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in table:
        print(f"| {t['setting']} | {t['alone_p50_ms']:.3f} | "
              f"{t['alone_p99_ms']:.3f} | {t['loaded_p50_ms']:.3f} | "
              f"{t['loaded_p99_ms']:.3f} | {t['p99_ratio']:.2f} | "
              f"{t['heavy_sequences_per_s']:.1f} | "
              f"{t['heavy_alone_sequences_per_s']:.1f} | "
              f"{t['heavy_alone_vs_first']:.2f} |")


if __name__ == "__main__":
    main()
