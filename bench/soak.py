#!/usr/bin/python3
"""Long-running checks of a real rnnserve under load.

  soak.py soak     --rnnserve BIN [--duration 60] [--sessions 300]
  soak.py overload --rnnserve BIN [--duration 20]

soak: hundreds of concurrent sessions stream sin(t) in chunks of random
sizes, disconnect and resume with their token at random, and end; beside
them, classification traffic on Fashion-MNIST images. Every answer is
checked against PyTorch (the model folder loaded into torch): every
streamed output, every predicted class. Reports the server's resident
memory at start and end, and fails on any wrong answer, any error, or
memory growing without bound.

overload: offers far more Classify load than one compute thread can take,
against a short queue. The excess must be refused with RESOURCE_EXHAUSTED
at once, admitted calls must succeed with bounded latency, memory must stay
bounded, and once the load drops the server must answer at once again.

Everything runs on 127.0.0.1 with ports the server picks; the server is
stopped at the end, on failure too.
"""
import argparse
import asyncio
import gzip
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "testing"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from live import (Processes, connected_aio_channel,  # noqa: E402
                  connected_channel, fail, generate_stubs, start_rnnserve)
import rnnserve_format  # noqa: E402

IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
# See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
TOLERANCE = 1e-5
STREAM_STEPS = 200  # Steps per session before it ends.
PHASES = 16  # Distinct input streams, each with its PyTorch answer.
DT = 0.1 * 3.141592653589793
# gRPC's threads do not survive fork(): helper processes start afresh.
SPAWN = multiprocessing.get_context("spawn")


def resident_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def mib(n):
    return f"{n / (1 << 20):.1f} MiB"


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


class Expected:
    """PyTorch's answers for the inputs the clients send."""

    def __init__(self, images_count):
        import torch
        torch.set_num_threads(1)
        sine, _ = rnnserve_format.load_model_folder(
            os.path.join(ROOT, "models", "sine_rnn"))
        self.streams = []
        with torch.no_grad():
            for p in range(PHASES):
                x = [float(torch.sin(torch.tensor(p * 0.37 + k * DT)))
                     for k in range(STREAM_STEPS)]
                out, _ = sine(torch.tensor(x).reshape(1, -1, 1))
                self.streams.append((x, out.reshape(-1).tolist()))
        classifier, _ = rnnserve_format.load_model_folder(
            os.path.join(ROOT, "models", "fashion_lstm"))
        with gzip.open(IMAGES, "rb") as f:
            f.read(16)
            data = f.read(images_count * 784)
        self.images = [[b / 255.0 for b in data[i * 784:(i + 1) * 784]]
                       for i in range(images_count)]
        with torch.no_grad():
            logits = classifier(torch.tensor(self.images).reshape(-1, 28, 28))
        self.classes = logits.argmax(1).tolist()


class Tally:
    def __init__(self):
        self.chunks = 0
        self.sessions = 0
        self.reconnects = 0
        self.classified = 0
        self.errors = []
        self.worst = 0.0

    def error(self, what):
        if len(self.errors) < 20:
            self.errors.append(what)
        else:
            self.errors[-1] = f"... and more: {what}"


async def session_loop(stub, pb, expected, tally, deadline, rng):
    import grpc
    while time.monotonic() < deadline:
        x, want = expected.streams[rng.randrange(PHASES)]
        token, at = "", 0
        tally.sessions += 1
        while at < STREAM_STEPS:
            # One stream: a few chunks, then disconnect (or end).
            chunks = rng.randint(1, 6)
            call = stub.Regress()
            try:
                for c in range(chunks):
                    steps = min(rng.randint(1, 20), STREAM_STEPS - at)
                    last = at + steps == STREAM_STEPS
                    await call.write(pb.RegressRequest(
                        model="sine_rnn" if c == 0 else "",
                        session_token=token if c == 0 else "",
                        steps=steps, values=x[at:at + steps],
                        end_session=last))
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        raise RuntimeError("stream ended early")
                    if c == 0 and not token:
                        token = response.session_token
                    if response.first_step != at:
                        tally.error(f"first_step {response.first_step} != {at}")
                    for i, y in enumerate(response.outputs):
                        d = abs(y - want[at + i])
                        tally.worst = max(tally.worst, d)
                        if d > TOLERANCE:
                            tally.error(f"step {at + i}: {y} vs PyTorch "
                                        f"{want[at + i]}")
                            break
                    at += steps
                    tally.chunks += 1
                    if last:
                        break
                await call.done_writing()
                await call.wait_for_connection()
                code = await call.code()
                if code != grpc.StatusCode.OK:
                    tally.error(f"stream ended with {code}")
                    return
                if at < STREAM_STEPS:
                    tally.reconnects += 1
            except (grpc.aio.AioRpcError, RuntimeError) as e:
                tally.error(f"stream: {e}")
                return
            if time.monotonic() > deadline and at < STREAM_STEPS:
                return


async def classify_loop(stub, pb, expected, tally, deadline, rng):
    import grpc
    n = len(expected.images)
    while time.monotonic() < deadline:
        picks = [rng.randrange(n) for _ in range(rng.randint(1, 32))]
        request = pb.ClassifyRequest(model="fashion_lstm", sequences=[
            pb.Sequence(steps=28, values=expected.images[i]) for i in picks])
        try:
            response = await stub.Classify(request, timeout=30)
        except grpc.aio.AioRpcError as e:
            tally.error(f"classify: {e.code()} {e.details()}")
            return
        for i, result in zip(picks, response.results):
            if result.top[0].index != expected.classes[i]:
                tally.error(f"image {i}: class {result.top[0].index}, "
                            f"PyTorch {expected.classes[i]}")
        tally.classified += len(picks)


async def run_soak(args, server, expected):
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc
    channels = [await connected_aio_channel(server.address) for _ in range(4)]
    stubs = [pb_grpc.InferenceStub(c) for c in channels]
    tally = Tally()
    deadline = time.monotonic() + args.duration
    rng = random.Random(args.seed)
    tasks = [session_loop(stubs[i % 4], pb, expected, tally, deadline,
                          random.Random(rng.random()))
             for i in range(args.sessions)]
    tasks += [classify_loop(stubs[i % 4], pb, expected, tally, deadline,
                            random.Random(rng.random()))
              for i in range(args.classifiers)]
    samples = []

    async def sample_memory():
        while time.monotonic() < deadline:
            samples.append(resident_bytes(server.process.pid))
            await asyncio.sleep(1)

    await asyncio.gather(sample_memory(), *tasks)
    for c in channels:
        await c.close()
    return tally, samples


def probe_refusals(address, duration, results, stubs_dir):
    """Sends one Classify every 20 ms and records how long each refusal
    took, into `results` (a multiprocessing list)."""
    sys.path.insert(0, stubs_dir)
    import grpc
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc
    stub = pb_grpc.InferenceStub(connected_channel(address))
    request = pb.ClassifyRequest(model="fashion_lstm", sequences=[
        pb.Sequence(steps=28, values=[0.5] * 784)])
    deadline = time.monotonic() + duration - 1
    time.sleep(1)  # Let the load build up.
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            stub.Classify(request, timeout=30)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                results.append(time.monotonic() - start)
        time.sleep(0.02)


async def run_overload(args, server, probe_results):
    import grpc
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc
    channels = [await connected_aio_channel(server.address) for _ in range(4)]
    stubs = [pb_grpc.InferenceStub(c) for c in channels]
    request = pb.ClassifyRequest(model="fashion_lstm", sequences=[
        pb.Sequence(steps=28, values=[0.5] * 784)] * 64)
    reference = await stubs[0].Classify(request, timeout=30)
    want = list(reference.results[0].logits)
    admitted, refused, other, wrong = [], [], [], 0
    deadline = time.monotonic() + args.duration

    async def client(stub):
        nonlocal wrong
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                r = await stub.Classify(request, timeout=30)
                admitted.append(time.monotonic() - start)
                if list(r.results[0].logits) != want:
                    wrong += 1
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    refused.append(time.monotonic() - start)
                    await asyncio.sleep(0.001)
                else:
                    other.append(f"{e.code()} {e.details()}")

    start_rss = resident_bytes(server.process.pid)
    peak = [start_rss]
    # The latency of a refusal is measured by a lone probe in its own
    # process: the load generator's own event loop is saturated on purpose.
    probe = SPAWN.Process(target=probe_refusals, args=(
        server.address, args.duration, probe_results, args.stubs))
    probe.start()

    async def sample_memory():
        while time.monotonic() < deadline:
            peak[0] = max(peak[0], resident_bytes(server.process.pid))
            await asyncio.sleep(0.5)

    await asyncio.gather(sample_memory(),
                         *[client(stubs[i % 4]) for i in range(args.clients)])
    probe.join(timeout=60)
    # The load is gone: the server answers at once again.
    start = time.monotonic()
    await stubs[0].Classify(request, timeout=30)
    recovery = time.monotonic() - start
    for c in channels:
        await c.close()
    return admitted, refused, other, wrong, start_rss, peak[0], recovery


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["soak", "overload"])
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--classifiers", type=int, default=8)
    parser.add_argument("--clients", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnserve_soak_")
    processes = Processes()
    try:
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(os.path.join(ROOT, "proto"), stubs)
        args.stubs = stubs
        if args.mode == "soak":
            expected = Expected(1000)
            server = start_rnnserve(processes, args.rnnserve,
                                    os.path.join(ROOT, "models"), work,
                                    metrics=False)
            tally, samples = asyncio.run(run_soak(args, server, expected))
            processes.check_alive()
            start, end = samples[0], samples[-1]
            print(f"soak: {args.duration:.0f}s, {args.sessions} concurrent "
                  f"sessions: {tally.sessions} sessions, {tally.chunks} "
                  f"chunks, {tally.reconnects} reconnects; "
                  f"{tally.classified} images classified; worst difference "
                  f"from PyTorch {tally.worst:.2e}; resident memory "
                  f"{mib(start)} at start, {mib(max(samples))} peak, "
                  f"{mib(end)} at end")
            if tally.errors:
                fail("\n".join(tally.errors))
            if tally.chunks == 0 or tally.classified == 0:
                fail("no traffic went through")
            # Sessions and buffers are bounded; steady traffic must not grow
            # memory past warm-up by more than a generous margin.
            if end > max(2 * start, start + (256 << 20)):
                fail(f"resident memory grew from {mib(start)} to {mib(end)}")
        else:
            server = start_rnnserve(
                processes, args.rnnserve, os.path.join(ROOT, "models"), work,
                ["--compute-threads=1", "--max-batch-size=64",
                 "--max-queued-items=256"], metrics=False)
            probe_results = SPAWN.Manager().list()
            (admitted, refused, other, wrong, start_rss, peak,
             recovery) = asyncio.run(run_overload(args, server,
                                                  probe_results))
            probed = list(probe_results)
            processes.check_alive()
            print(f"overload: {args.clients} clients for {args.duration:.0f}s"
                  f": {len(admitted)} admitted (p50 "
                  f"{percentile(admitted, 50) * 1e3:.1f} ms, p99 "
                  f"{percentile(admitted, 99) * 1e3:.1f} ms, max "
                  f"{max(admitted or [0]) * 1e3:.1f} ms), {len(refused)} "
                  f"refused; a lone probe's {len(probed)} refusals took p50 "
                  f"{percentile(probed, 50) * 1e3:.2f} ms, p99 "
                  f"{percentile(probed, 99) * 1e3:.2f} ms; "
                  f"memory {mib(start_rss)} -> peak {mib(peak)}; first call "
                  f"after the load {recovery * 1e3:.1f} ms")
            if other or wrong:
                fail(f"{len(other)} other errors ({other[:3]}), {wrong} wrong")
            if not admitted or not refused:
                fail("the load did not both pass and overflow the queue")
            # Refusals are immediate; admitted calls wait at most for the
            # queue ahead of them (4 batches of 64 sequences).
            if not probed or percentile(probed, 50) > 0.05:
                fail("refusals were not immediate")
            if percentile(admitted, 99) > 5.0:
                fail("admitted calls waited without bound")
            if peak > max(2 * start_rss, start_rss + (256 << 20)):
                fail(f"memory grew from {mib(start_rss)} to {mib(peak)}")
            if recovery > 2.0:
                fail(f"after the load, a call took {recovery:.2f}s")
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
