#!/usr/bin/python3
"""What keeping the sessions in Redis costs, beside keeping them in memory.

  session_store_bench.py [--build-dir build] [--sessions 1000] [--chunk 10]
                         [--duration 10] [--rounds 1] [--moves 300]
                         [--server-cpu 0] [--client-cpu 1] [--json]

Builds nothing: uses BUILD_DIR/bin/rnnserve and BUILD_DIR/bin/rnnctl (a
Release build). Everything runs on 127.0.0.1. The replicas are pinned with
taskset to --server-cpu; this script, `rnnctl bench` (the load generator)
and redis-server (no persistence) to --client-cpu.

1. Throughput: one replica, --session-store memory, then one with
   --session-store redis://..., each under `rnnctl bench --mode stream`:
   --sessions concurrent sine_rnn sessions, each on its own Regress stream,
   chunks of --chunk steps back to back, for --duration seconds. Per store:
   chunks/s, p50/p99 chunk latency and, from the replica's /metrics, the
   mean engine batch and the Redis round trips per engine batch
   (rnnserve_session_store_round_trips_total delta / rnnserve_batch_size
   count delta, methods Regress and RegressChunk). With --rounds > 1 the
   two stores alternate and the medians are reported.
   The metrics are read 1 s inside each end of the measured window (so
   --duration >= 4): steady streaming, not the sessions' creation.
2. Moves: two replicas A and B sharing the Redis. A session answered by
   one replica is resumed on the other: the time from opening the new
   Regress stream (token, one chunk with expected_first_step) to its first
   answer, over --moves moves (grpcio client, its own overhead included).
   Beside it, the same reconnect to the replica that answered last, with
   the Redis store and with the memory store: what moving adds.

Prints a table, then one JSON line (--json: only the JSON line).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "testing"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
from live import (Processes, connected_channel, generate_stubs,  # noqa: E402
                  wait_until)
from redis import RedisServer  # noqa: E402

START_TIMEOUT = 120
WARMUP = 2  # Seconds of rnnctl bench's warm-up: the sessions start.


def log(message):
    print(message, file=sys.stderr, flush=True)


class Replica:
    """rnnserve pinned to one CPU, with ports it picks itself."""

    def __init__(self, processes, args, work, store, name):
        self.log_path = os.path.join(work, f"{name}.log")
        command = ["taskset", "-c", str(args.server_cpu),
                   os.path.join(args.build_dir, "bin", "rnnserve"),
                   f"--model-repository={os.path.join(ROOT, 'models')}",
                   "--grpc-address=127.0.0.1:0",
                   "--metrics-address=127.0.0.1:0",
                   f"--session-store={store}", "--shutdown-grace=2s",
                   f"--max-sessions={max(10000, 2 * args.sessions)}",
                   *args.server_flag]
        self.process = processes.start(name, command, self.log_path)
        found = {}

        def started():
            with open(self.log_path) as f:
                text = f.read()
            grpc_port = re.search(r"gRPC on port (\d+)", text)
            metrics_port = re.search(r"metrics on port (\d+)", text)
            if grpc_port is None or metrics_port is None:
                return False
            found["grpc"] = int(grpc_port.group(1))
            found["metrics"] = int(metrics_port.group(1))
            return True

        wait_until(f"{name} to start", started, START_TIMEOUT, processes)
        self.address = f"127.0.0.1:{found['grpc']}"
        self.metrics_port = found["metrics"]
        with open(self.log_path) as f:
            self.banner = next((line.strip() for line in f
                                if "gRPC on port" in line), "")

    def metrics(self):
        """(round trips, engine batches, items in them) so far."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        trips = batches = items = 0.0
        for line in text.splitlines():
            m = re.match(r"(\w+)(?:\{([^}]*)\})? (\S+)$", line)
            if m is None:
                continue
            name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
            if name == "rnnserve_session_store_round_trips_total":
                trips += value
            regress = ('method="Regress"' in labels
                       or 'method="RegressChunk"' in labels)
            if regress and name == "rnnserve_batch_size_count":
                batches += value
            if regress and name == "rnnserve_batch_size_sum":
                items += value
        return trips, batches, items

    def stop(self, processes):
        processes.children = [c for c in processes.children
                              if c[1] is not self.process]
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def throughput(args, processes, work, store, label):
    replica = Replica(processes, args, work, store, f"rnnserve-{label}")
    try:
        command = [os.path.join(args.build_dir, "bin", "rnnctl"), "bench",
                   f"--server={replica.address}", "--mode=stream",
                   "--model=sine_rnn", f"--chunk={args.chunk}",
                   f"--concurrency={args.sessions}", f"--warmup={WARMUP}s",
                   f"--duration={args.duration}s", "--timeout=0", "--json",
                   *args.client_flag]
        client = subprocess.Popen(command, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        # The metrics are read inside the measured window, a second from
        # either end, so that the sessions' creation (warm-up) and their
        # ends (after it) do not count: round trips of steady streaming.
        time.sleep(WARMUP + 1)
        before = replica.metrics()
        time.sleep(args.duration - 2)
        after = replica.metrics()
        out, err = client.communicate(timeout=args.duration + 300)
        if client.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: exit "
                               f"{client.returncode}\n{err[-2000:]}")
    finally:
        replica.stop(processes)
    r = json.loads(out)
    trips, batches, items = (a - b for a, b in zip(after, before))
    return {"store": label, "chunks_per_s": r["per_second"],
            "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
            "errors": sum(r["errors"].values()),
            "mean_batch": items / batches if batches else None,
            "round_trips_per_batch": trips / batches if batches else None,
            "server": replica.banner.split("rnnserve: ", 1)[-1]}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def reconnects(args, pb, pb_grpc, replicas, move, sessions=10):
    """Times of a new Regress stream's first answer (ms), over args.moves
    reconnects spread over `sessions` sessions: each to the other replica
    when `move`, else to the one that answered last."""
    stubs = [pb_grpc.InferenceStub(connected_channel(r.address))
             for r in replicas]
    x = [0.5] * args.chunk
    state = []  # [token, position, replica that answered last]
    for i in range(sessions):
        a = stubs[i % len(stubs)].RegressChunk(pb.RegressRequest(
            model="sine_rnn", steps=args.chunk, values=x,
            expected_first_step=0), timeout=30)
        state.append([a.session_token, args.chunk, i % len(stubs)])
    times = []
    for n in range(args.moves):
        s = state[n % sessions]
        target = (s[2] + 1) % len(stubs) if move else s[2]
        request = pb.RegressRequest(model="sine_rnn", session_token=s[0],
                                    steps=args.chunk, values=x,
                                    expected_first_step=s[1])
        start = time.perf_counter()
        call = stubs[target].Regress(iter([request]), timeout=30)
        answer = next(call)
        times.append(1000 * (time.perf_counter() - start))
        for _ in call:  # The stream's end.
            pass
        if answer.first_step != s[1]:
            raise RuntimeError(f"a move answered from step {answer.first_step}"
                               f", expected {s[1]}")
        s[1] += args.chunk
        s[2] = target
    return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99),
            "mean_ms": statistics.fmean(times), "count": len(times)}


def median_by_store(rows):
    out = {}
    for label in ("memory", "redis"):
        rs = [r for r in rows if r["store"] == label]
        m = {"store": label, "runs": len(rs)}
        for k in ("chunks_per_s", "p50_ms", "p99_ms", "errors", "mean_batch",
                  "round_trips_per_batch"):
            vals = [r[k] for r in rs if r[k] is not None]
            m[k] = statistics.median(vals) if vals else None
        out[label] = m
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=10)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--moves", type=int, default=300)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--server-flag", action="append", default=[],
                   help="extra rnnserve flag, e.g. --server-flag=--compute-threads=1")
    p.add_argument("--client-flag", action="append", default=[],
                   help="extra rnnctl bench flag, e.g. --client-flag=--channels=4")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.duration < 4:
        p.error("--duration must be at least 4 (metrics are read 1 s inside "
                "each end)")
    args.build_dir = os.path.abspath(args.build_dir)
    os.sched_setaffinity(0, {args.client_cpu})  # rnnctl inherits it.

    work = tempfile.mkdtemp(prefix="rnnserve_store_bench_")
    processes = Processes()
    redis = None
    try:
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(os.path.join(ROOT, "proto"), stubs)
        from rnnserve.v1 import inference_pb2 as pb
        from rnnserve.v1 import inference_pb2_grpc as pb_grpc
        redis = RedisServer(work, prefix=["taskset", "-c",
                                          str(args.client_cpu)])
        rows = []
        for r in range(args.rounds):
            order = [("memory", "memory"), ("redis", redis.url)]
            for label, store in order if r % 2 == 0 else order[::-1]:
                log(f"round {r + 1}/{args.rounds}: {label} store, "
                    f"{args.sessions} sessions for {args.duration:g} s")
                rows.append(throughput(args, processes, work, store, label))
                redis.command("FLUSHALL")
        stores = median_by_store(rows)

        log(f"moves: {args.moves} reconnects per case")
        moves = {}
        for label, store, count, move in (
                ("memory_same_replica", "memory", 1, False),
                ("redis_same_replica", redis.url, 2, False),
                ("redis_other_replica", redis.url, 2, True)):
            replicas = [Replica(processes, args, work, store,
                                f"rnnserve-{label}-{i}") for i in range(count)]
            try:
                moves[label] = reconnects(args, pb, pb_grpc, replicas, move)
            finally:
                for replica in replicas:
                    replica.stop(processes)
    finally:
        processes.stop_all()
        if redis is not None:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)

    mem, red = stores["memory"], stores["redis"]
    ratio = red["chunks_per_s"] / mem["chunks_per_s"]
    server = rows[0]["server"]
    for r in rows:
        del r["server"]
    result = {"server": server, "sessions": args.sessions, "chunk_steps": args.chunk,
              "duration_s": args.duration, "rounds": args.rounds,
              "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
              "redis_cpu": args.client_cpu, "server_flags": args.server_flag,
              "stores": stores, "redis_over_memory": ratio,
              "reconnect_ms": moves, "runs": rows}
    if not args.json:
        print(server)
        print(f"{args.sessions} sessions, chunks of {args.chunk} steps, "
              f"{args.duration:g} s, median of {args.rounds} round(s); "
              f"replica on CPU {args.server_cpu}, rnnctl and Redis on CPU "
              f"{args.client_cpu}")
        print(f"{'store':8} {'chunks/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'batch':>6} {'RTT/batch':>9}")
        for s in (mem, red):
            batch = f"{s['mean_batch']:6.1f}" if s["mean_batch"] else f"{'-':>6}"
            trips = (f"{s['round_trips_per_batch']:9.2f}"
                     if s["round_trips_per_batch"] is not None else f"{'-':>9}")
            print(f"{s['store']:8} {s['chunks_per_s']:10,.0f} "
                  f"{s['p50_ms']:8.3f} {s['p99_ms']:8.3f} {s['errors']:6.0f} "
                  f"{batch} {trips}")
        print(f"redis/memory chunks/s: {ratio:.2f}")
        print(f"reconnect to first answer ({args.moves} per case, grpcio "
              "client):")
        for label, m in moves.items():
            print(f"  {label:20} p50 {m['p50_ms']:7.3f} ms  p99 "
                  f"{m['p99_ms']:7.3f} ms")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
