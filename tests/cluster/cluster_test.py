#!/usr/bin/python3
"""Streaming sessions outlive the replicas that served them.

  cluster_test.py --rnnserve BIN --source DIR [--rnnctl BIN] [--sessions 200]

A redis-server of its own (no persistence), three rnnserve replicas keeping
their sessions in it (--session-store redis://...), Debian's nginx in front
spreading every call round-robin. 200 sessions stream the sine model through
nginx, each chunk of 10 steps on a call of its own (even sessions: a
RegressChunk call; odd ones: a new Regress stream), so that consecutive
chunks land on different replicas. Every chunk carries expected_first_step,
the position it is sent from; a call that breaks is resent, the same chunk
from the same position, after a backoff. Meanwhile one replica is killed
(SIGKILL) and started again on its port, then all three are restarted one by
one with SIGTERM, as a rolling update does.

Beside them, `rnnctl stream --reconnect-every 1 --retries 20` runs again and
again through nginx (a new Regress stream per chunk), so that rnnctl's own
resends meet the same failures: every run must reproduce its uninterrupted
twin (within 1e-5: other sessions' chunks share the engine batches).

Checked: every session's outputs equal one uninterrupted PyTorch pass over
its inputs (1e-5); the answers' first_step run 0, 10, 20, ... without a gap
or a repeat (nothing lost, nothing applied twice); every resend names the
position its chunk was first sent from, and no session is reset or started
again; calls did break (the test exercised the retries). The retries, the
replayed answers and the codes the broken calls ended with are printed.
"""
import argparse
import asyncio
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# gRPC's C core logs an error line for every 502 answer of nginx (its
# text/html content type) while a replica is down: thousands of lines.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
from live import (Processes, connected_aio_channel, fail, free_port,  # noqa: E402
                  generate_stubs, start_rnnserve)
from nginx import start_nginx  # noqa: E402
from redis import RedisServer  # noqa: E402
import rnnserve_format  # noqa: E402

TOLERANCE = 1e-5  # As the golden tests: see tests/engine.
REPLICAS = 3
CHUNK = 10
MAX_STEPS = 6000      # A session stops there if the chaos is still going.
CALL_TIMEOUT = 20     # Seconds; a call stuck on a dead replica is resent.
PACE = 0.4            # Seconds between a session's chunks: modest CPU.
MAX_RETRIES = 40      # Per chunk; a rolling restart must fit in it.
SETTLE_CHUNKS = 3     # Chunks every session makes between chaos events.
DT = 3.141592653589793 / 10


class ChunkFailed(Exception):
    pass


def transport_broke(code, details):
    """A failure after which the chunk is resent (see client/retry_policy)."""
    import grpc
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED):
        return True
    if code == grpc.StatusCode.ABORTED:
        return "taken over" not in details.lower()
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        hints = ("rst_stream", "stream removed", "socket closed",
                 "connection reset", "broken pipe", "goaway",
                 "received http2 header")
        return any(h in details.lower() for h in hints)
    return False


def backoff(retry):
    """Jittered exponential wait before resend number `retry` (1-based)."""
    base = min(2.0, 0.05 * 2 ** (retry - 1))
    return base * (1 - 0.5 * random.random())


class Session:
    """One client session: its inputs, what it sent and what came back."""

    def __init__(self, index, inputs, unary):
        self.index = index
        self.inputs = inputs  # MAX_STEPS floats.
        self.unary = unary
        self.token = ""
        self.position = 0
        self.outputs = []
        self.first_steps = []
        self.sent = []  # (expected_first_step, attempt) of every call.
        self.retries = 0
        self.replays = 0
        self.codes = collections.Counter()
        self.details = collections.Counter()

    def chunks(self):
        return len(self.first_steps)

    async def send(self, pb, stub, request):
        """The chunk's answer, resending it on a new call while calls break."""
        import grpc
        for attempt in range(MAX_RETRIES + 1):
            self.sent.append((request.expected_first_step, attempt))
            try:
                if self.unary:
                    return await stub.RegressChunk(request,
                                                   timeout=CALL_TIMEOUT)
                call = stub.Regress(iter([request]), timeout=CALL_TIMEOUT)
                answers = [a async for a in call]
                if len(answers) == 1:
                    return answers[0]
                raise ChunkFailed(f"session {self.index}: a one-chunk stream "
                                  f"answered {len(answers)} times")
            except grpc.aio.AioRpcError as e:
                if not transport_broke(e.code(), e.details() or ""):
                    raise ChunkFailed(
                        f"session {self.index} at step {self.position}: "
                        f"{e.code().name}: {e.details()}") from None
                self.codes[e.code().name] += 1
                self.details[f"{e.code().name}: {e.details()}"[:90]] += 1
                if attempt == MAX_RETRIES:
                    raise ChunkFailed(
                        f"session {self.index}: gave up after {MAX_RETRIES} "
                        f"retries: {e.code().name}: {e.details()}") from None
                self.retries += 1
                await asyncio.sleep(backoff(attempt + 1))

    async def run(self, pb, stub, stop):
        while not stop.is_set() and self.position + CHUNK <= MAX_STEPS:
            at = self.position
            request = pb.RegressRequest(
                model="sine_rnn", session_token=self.token, steps=CHUNK,
                values=self.inputs[at:at + CHUNK], expected_first_step=at)
            answer = await self.send(pb, stub, request)
            if answer.first_step != at:
                raise ChunkFailed(
                    f"session {self.index}: the chunk sent from step {at} was "
                    f"answered from step {answer.first_step}")
            if len(answer.outputs) != CHUNK or answer.steps != CHUNK:
                raise ChunkFailed(f"session {self.index}: {len(answer.outputs)}"
                                  f" outputs for a chunk of {CHUNK}")
            if not self.token:
                if not answer.session_token:
                    raise ChunkFailed(f"session {self.index}: no token")
                self.token = answer.session_token
            elif answer.session_token and answer.session_token != self.token:
                raise ChunkFailed(f"session {self.index}: the token changed")
            self.replays += answer.replayed
            self.first_steps.append(answer.first_step)
            self.outputs.extend(answer.outputs)
            self.position = at + CHUNK
            await asyncio.sleep(PACE * (0.5 + random.random()))


def reference_outputs(source, inputs):
    """One uninterrupted PyTorch pass of models/sine_rnn over every
    session's inputs (batch-first), after checking the loader against the
    golden stream."""
    import numpy as np
    import torch
    module, _ = rnnserve_format.load_model_folder(
        os.path.join(source, "models", "sine_rnn"))
    golden, _ = rnnserve_format.read_safetensors(
        os.path.join(source, "tests", "goldens", "sine_rnn_stream.safetensors"))
    with torch.no_grad():
        got, _ = module(torch.from_numpy(golden["inputs"]))
        worst = float(np.abs(got.numpy() - golden["outputs"]).max())
        if worst > TOLERANCE:
            fail(f"PyTorch's sine_rnn differs from the golden by {worst}")
        x = torch.tensor(np.array(inputs, dtype=np.float32)).unsqueeze(-1)
        out, _ = module(x)
    return out.squeeze(-1).numpy()


class Fleet:
    """The replicas on fixed ports, to be killed and started again."""

    def __init__(self, processes, binary, models, work, store_url):
        self.processes = processes
        self.binary = binary
        self.models = models
        self.work = work
        self.store_url = store_url
        self.ports = [free_port() for _ in range(REPLICAS)]
        self.starts = 0
        self.servers = [self.start(i) for i in range(REPLICAS)]

    def start(self, i):
        # A folder per start: live.py names logs by the count of children,
        # which forget() lowers.
        self.starts += 1
        folder = os.path.join(self.work, f"replica{i}-{self.starts}")
        os.makedirs(folder)
        return start_rnnserve(
            self.processes, self.binary, self.models, folder,
            [f"--grpc-address=127.0.0.1:{self.ports[i]}",
             f"--session-store={self.store_url}", "--compute-threads=1",
             "--shutdown-grace=2s", "--warmup-steps=10"])

    def forget(self, process):
        # A replica that exited on purpose is no failure of the test.
        self.processes.children = [
            c for c in self.processes.children if c[1] is not process]

    def stop(self, i, sig):
        process = self.servers[i].process
        self.forget(process)
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except Exception:
            fail(f"replica {i} did not exit within 30 s of signal {sig}")
        if sig == signal.SIGTERM and process.returncode != 0:
            fail(f"replica {i} exited with {process.returncode} on SIGTERM:\n"
                 + self.servers[i].log()[-3000:])

    def restart(self, i, sig):
        self.stop(i, sig)
        self.servers[i] = self.start(i)


def chaos(fleet, sessions, done, log):
    """The failures, each once every session has made SETTLE_CHUNKS chunks
    more (so that each hits sessions in full flight); runs in a thread."""
    def settle():
        marks = [s.chunks() for s in sessions]
        deadline = time.monotonic() + 300
        while any(s.chunks() < m + SETTLE_CHUNKS and s.position + CHUNK
                  <= MAX_STEPS for s, m in zip(sessions, marks)):
            if done.is_set() or time.monotonic() > deadline:
                raise RuntimeError("the sessions stopped making progress")
            time.sleep(0.05)

    try:
        settle()
        log.append("replica 1: SIGKILL")
        fleet.stop(1, signal.SIGKILL)
        time.sleep(0.5)  # Calls meanwhile find it gone.
        fleet.servers[1] = fleet.start(1)
        log.append("replica 1: started again")
        settle()
        for i in range(REPLICAS):
            log.append(f"replica {i}: SIGTERM, started again")
            fleet.restart(i, signal.SIGTERM)
            settle()
    except BaseException as e:  # noqa: BLE001 - reported by the main thread
        log.append(f"chaos failed: {e!r}")
        raise
    finally:
        done.set()


async def drive(pb, pb_grpc, address, sessions, done):
    channel = await connected_aio_channel(address)
    stub = pb_grpc.InferenceStub(channel)
    stop = asyncio.Event()

    async def watch():
        while not done.is_set():
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.ensure_future(watch())
    try:
        results = await asyncio.gather(*(s.run(pb, stub, stop)
                                         for s in sessions),
                                       return_exceptions=True)
    finally:
        watcher.cancel()
        await channel.close()
    return [r for r in results if isinstance(r, BaseException)]


def rnnctl_runs(rnnctl, address, done, results):
    """rnnctl stream, run after run until `done`: (exit code, resends,
    replays, output tail) of each; runs in a thread."""
    while not done.is_set():
        run = subprocess.run(
            [rnnctl, "stream", f"--server={address}", "--steps=600",
             "--chunk=10", "--reconnect-every=1", "--retries=20",
             "--timeout=20s", "--quiet"],
            capture_output=True, text=True, timeout=300)
        m = re.search(r"retries\s+(\d+) chunks? resent .*?\((\d+) answers?",
                      run.stdout)
        results.append((run.returncode, int(m.group(1)) if m else 0,
                        int(m.group(2)) if m else 0,
                        (run.stdout + run.stderr)[-3000:]))


def check(sessions, want):
    worst = 0.0
    for s in sessions:
        n = len(s.outputs)
        if n == 0:
            fail(f"session {s.index} answered nothing")
        if s.first_steps != list(range(0, n, CHUNK)):
            fail(f"session {s.index}: first_step ran {s.first_steps[:20]}...,"
                 " not 0, 10, 20, ...")
        diffs = abs(want[s.index][:n] - s.outputs)
        worst = max(worst, float(diffs.max()))
        # Every call named the position of the chunk it carried, and a
        # resend (attempt > 0) the position its first attempt named.
        starts = [p for p, a in s.sent if a == 0]
        if starts != list(range(0, n, CHUNK)):
            fail(f"session {s.index}: chunks were first sent from "
                 f"{starts[:20]}...")
        last = None
        for p, a in s.sent:
            if a > 0 and p != last:
                fail(f"session {s.index}: a resend named step {p}, its chunk "
                     f"was sent from {last}")
            last = p
    if worst > TOLERANCE:
        fail(f"outputs differ from the uninterrupted PyTorch pass by {worst}")
    return worst


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--rnnctl",
                        help="rnnctl binary (default: beside --rnnserve)")
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args()
    import numpy as np
    work = tempfile.mkdtemp(prefix="rnnserve_cluster_sessions_")
    processes = Processes()
    redis = None
    try:
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(os.path.join(args.source, "proto"), stubs)
        from rnnserve.v1 import inference_pb2 as pb
        from rnnserve.v1 import inference_pb2_grpc as pb_grpc

        rng = np.random.default_rng(10)
        k = np.arange(MAX_STEPS)
        inputs = [(rng.uniform(0.5, 1.0) * np.sin(k * DT + rng.uniform(0, 6)))
                  .astype(np.float32) for _ in range(args.sessions)]
        want = reference_outputs(args.source, inputs)

        redis = RedisServer(work)
        fleet = Fleet(processes, args.rnnserve,
                      os.path.join(args.source, "models"), work, redis.url)
        address = start_nginx(processes, work, free_port(), fleet.ports)
        sessions = [Session(i, inputs[i].tolist(), unary=i % 2 == 0)
                    for i in range(args.sessions)]
        done = threading.Event()
        log = []
        chaos_thread = threading.Thread(
            target=chaos, args=(fleet, sessions, done, log), daemon=True)
        rnnctl = args.rnnctl or os.path.join(
            os.path.dirname(args.rnnserve), "rnnctl")
        rnnctl_results = []
        rnnctl_thread = threading.Thread(
            target=rnnctl_runs, args=(rnnctl, address, done, rnnctl_results),
            daemon=True)
        started = time.monotonic()
        chaos_thread.start()
        rnnctl_thread.start()
        errors = asyncio.run(drive(pb, pb_grpc, address, sessions, done))
        done.set()
        chaos_thread.join(timeout=120)
        rnnctl_thread.join(timeout=300)
        elapsed = time.monotonic() - started
        for line in log:
            print(f"cluster: {line}")
        if errors:
            fail(f"{len(errors)} sessions failed; the first: {errors[0]}")
        if any("failed" in line for line in log):
            fail("the chaos did not run to its end")

        worst = check(sessions, np.array(want))
        chunks = sum(s.chunks() for s in sessions)
        retries = sum(s.retries for s in sessions)
        replays = sum(s.replays for s in sessions)
        codes = collections.Counter()
        details = collections.Counter()
        for s in sessions:
            codes.update(s.codes)
            details.update(s.details)
        print(f"cluster: {len(sessions)} sessions, {chunks} chunks in "
              f"{elapsed:.1f} s, each chunk on a call of its own; outputs "
              f"equal one uninterrupted PyTorch pass (worst {worst:.2e}); "
              "first_step continuous in every session")
        print(f"cluster: {retries} resends (broken calls: {dict(codes)}), "
              f"{replays} answers replayed; no session reset or restarted")
        for text, count in details.most_common(4):
            print(f"cluster:   {count:5} x {text}")
        if retries == 0:
            fail("no call broke: the kill and the restarts tested nothing")
        bad = [r for r in rnnctl_results if r[0] != 0]
        if not rnnctl_results or bad:
            fail(f"rnnctl stream failed {len(bad)} of {len(rnnctl_results)} "
                 f"runs; the first:\n{bad[0][3] if bad else ''}")
        print(f"cluster: rnnctl stream ran {len(rnnctl_results)} times "
              "meanwhile (600 steps, a stream per chunk), each equal to its "
              f"uninterrupted twin within 1e-5; {sum(r[1] for r in rnnctl_results)} "
              f"resends, {sum(r[2] for r in rnnctl_results)} replayed")
    finally:
        processes.stop_all()
        if redis is not None:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
