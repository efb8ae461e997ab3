#!/usr/bin/python3
"""Bytes a streaming session takes in Redis, measured.

  bench/redis_session_size.py --rnnserve build/bin/rnnserve [--sessions 2000]

Starts its own redis-server (no persistence) and one rnnserve on the
bundled models with --session-store redis://..., opens N sine_rnn sessions
with one RegressChunk of 10 steps each, and reports Redis's used_memory
growth per session, MEMORY USAGE of one session's hash, and the sizes of
the two sorted sets that bound sessions (all of them, and per bearer
token). For docs/scaling.md's sizing formula.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "testing"))
from live import (Processes, generate_stubs, start_redis,  # noqa: E402
                  start_rnnserve)


def redis_cli(port, *words):
    out = subprocess.run(["redis-cli", "-p", str(port), *map(str, words)],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def used_memory(port):
    info = redis_cli(port, "INFO", "memory")
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=10)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnserve-redis-size-")
    processes = Processes()
    try:
        generate_stubs(os.path.join(ROOT, "proto"), work)
        import grpc
        from rnnserve.v1 import inference_pb2 as pb
        from rnnserve.v1 import inference_pb2_grpc as pb_grpc
        redis = start_redis(processes, work)
        port = int(redis.rsplit(":", 1)[1])
        server = start_rnnserve(
            processes, args.rnnserve, os.path.join(ROOT, "models"), work,
            flags=[f"--session-store={redis}"])
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.InferenceStub(channel)
        # One session first, so that scripts and connections are counted
        # before the baseline.
        request = pb.RegressRequest(model="sine_rnn", steps=args.chunk,
                                    values=[0.5] * args.chunk)
        first = stub.RegressChunk(request, timeout=10)
        before = used_memory(port)
        for _ in range(args.sessions):
            stub.RegressChunk(request, timeout=10)
        after = used_memory(port)
        key = redis_cli(port, "--scan", "--pattern",
                        "rnnserve:session:*").splitlines()[0]
        report = {
            "sessions": args.sessions,
            "chunk_steps": args.chunk,
            "used_memory_per_session": round((after - before) / args.sessions),
            "memory_usage_of_one_hash": int(
                redis_cli(port, "MEMORY", "USAGE", key, "SAMPLES", "0")),
            "memory_usage_of_the_sessions_set": int(
                redis_cli(port, "MEMORY", "USAGE", "rnnserve:sessions",
                          "SAMPLES", "0")),
            "sessions_in_redis": int(redis_cli(port, "ZCARD",
                                               "rnnserve:sessions")),
            "token_found_in_keys": first.session_token in redis_cli(
                port, "KEYS", "*"),
        }
        print(json.dumps(report))
        channel.close()
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
