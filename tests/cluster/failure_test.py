#!/usr/bin/python3
"""rnnserve when the Redis holding its sessions stalls, dies or comes back.

  failure_test.py --rnnserve BIN --source DIR

A replica keeps its sessions in a redis-server of the test's own
(--session-store redis://..., --session-store-timeout 300ms). A session
streams the golden sine stream (tests/goldens/sine_rnn_stream.safetensors)
in chunks of 10, each chunk sent with expected_first_step.

- Redis stalled (SIGSTOP): RegressChunk and a new Regress stream get
  UNAVAILABLE naming the session store, while Classify on fashion_lstm is
  answered; the health service "rnnserve.v1.SessionStore" turns
  NOT_SERVING. Redis resumed: SERVING again, and the chunk that failed,
  resent from the same position, continues the session exactly (run once:
  by now it may have been committed, and is then replayed).
- Redis killed: the same UNAVAILABLE and NOT_SERVING; started again
  without persistence, the store is SERVING and the old session is
  NOT_FOUND (its state is gone, and the server says so rather than start
  it afresh).
- Redis with an append-only file fsynced on every write: SIGKILLed and
  started again on the same folder, the session continues exactly where it
  was, to the end of the golden stream.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
from live import (Processes, connected_channel, fail,  # noqa: E402
                  generate_stubs, start_rnnserve)
from redis import RedisServer  # noqa: E402
import rnnserve_format  # noqa: E402

TOLERANCE = 1e-5
CHUNK = 10
CALL_TIMEOUT = 10
HEALTH_WAIT = 20  # Seconds for the store's health to follow Redis.
STORE_SERVICE = "rnnserve.v1.SessionStore"


class Client:
    def __init__(self, pb, pb_grpc, health_pb2, health_pb2_grpc, channel,
                 golden):
        self.pb = pb
        self.stub = pb_grpc.InferenceStub(channel)
        self.health_pb2 = health_pb2
        self.health = health_pb2_grpc.HealthStub(channel)
        self.x, self.want = golden

    def chunk(self, token, at, steps=CHUNK):
        return self.pb.RegressRequest(
            model="sine_rnn", session_token=token, steps=steps,
            values=self.x[at:at + steps], expected_first_step=at)

    def send(self, token, at):
        """The answer to the golden chunk at `at`, checked against the
        golden outputs; returns (token, replayed)."""
        answer = self.stub.RegressChunk(self.chunk(token, at),
                                        timeout=CALL_TIMEOUT)
        if answer.first_step != at:
            fail(f"the chunk sent from step {at} ran from {answer.first_step}")
        worst = max(abs(a - b) for a, b in
                    zip(answer.outputs, self.want[at:at + CHUNK]))
        if len(answer.outputs) != CHUNK or worst > TOLERANCE:
            fail(f"the chunk at step {at} differs from PyTorch by {worst}")
        return answer.session_token or token, answer.replayed

    def refused(self, token, at, stream=False):
        """The error of a chunk that must fail: (code, details)."""
        import grpc
        try:
            if stream:
                list(self.stub.Regress(iter([self.chunk(token, at)]),
                                       timeout=CALL_TIMEOUT))
            else:
                self.stub.RegressChunk(self.chunk(token, at),
                                       timeout=CALL_TIMEOUT)
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        fail(f"a chunk at step {at} succeeded; it should have failed")

    def classify(self):
        request = self.pb.ClassifyRequest(
            model="fashion_lstm",
            sequences=[self.pb.Sequence(steps=28, values=[0.5] * 784)])
        answer = self.stub.Classify(request, timeout=CALL_TIMEOUT)
        if len(answer.results) != 1:
            fail("Classify answered no result")

    def store_health(self):
        import grpc
        try:
            r = self.health.Check(
                self.health_pb2.HealthCheckRequest(service=STORE_SERVICE),
                timeout=CALL_TIMEOUT)
        except grpc.RpcError as e:
            return e.code().name
        return self.health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    def wait_store(self, want):
        deadline = time.monotonic() + HEALTH_WAIT
        status = None
        while time.monotonic() < deadline:
            status = self.store_health()
            if status == want:
                return
            time.sleep(0.1)
        fail(f"health of {STORE_SERVICE} stayed {status}, expected {want}")


def expect_store_unavailable(client, token, at, what):
    import grpc
    for stream in (False, True):
        code, details = client.refused(token, at, stream)
        call = "Regress" if stream else "RegressChunk"
        if code != grpc.StatusCode.UNAVAILABLE or \
                "session store" not in details.lower():
            fail(f"{call} with Redis {what}: {code.name} \"{details}\"; "
                 "expected UNAVAILABLE naming the session store")
    client.classify()
    client.wait_store("NOT_SERVING")
    print(f"failure: Redis {what}: RegressChunk and Regress UNAVAILABLE "
          f"(\"{details}\"), Classify answered, {STORE_SERVICE} NOT_SERVING")


def check_stall_and_loss(client, redis):
    client.wait_store("SERVING")
    token, _ = client.send("", 0)
    token, _ = client.send(token, 10)

    redis.pause()
    try:
        expect_store_unavailable(client, token, 20, "stalled")
    finally:
        redis.resume()
    client.wait_store("SERVING")
    token, replayed = client.send(token, 20)
    token, _ = client.send(token, 30)
    print("failure: Redis resumed: SERVING; the failed chunk resent from "
          f"step 20 continued the session exactly (replayed: {replayed})")

    redis.kill()
    expect_store_unavailable(client, token, 40, "killed")
    redis.start()
    client.wait_store("SERVING")
    import grpc
    code, details = client.refused(token, 40)
    if code != grpc.StatusCode.NOT_FOUND:
        fail(f"after Redis restarted empty, the old session got {code.name} "
             f"\"{details}\"; expected NOT_FOUND")
    print(f"failure: Redis restarted without persistence: SERVING, the old "
          f"session NOT_FOUND (\"{details}\")")


def check_persistence(client, redis):
    client.wait_store("SERVING")
    token = ""
    for at in range(0, 30, CHUNK):
        token, _ = client.send(token, at)
    redis.restart()
    client.wait_store("SERVING")
    replays = 0
    for at in range(30, len(client.x), CHUNK):
        token, replayed = client.send(token, at)
        replays += replayed
    if replays:
        fail(f"{replays} chunks after the restart were replays")
    print("failure: Redis with an fsynced append-only file, SIGKILLed and "
          f"started again: the session continued exactly from step 30 to "
          f"{len(client.x)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnserve_store_failures_")
    processes = Processes()
    stores = []
    try:
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(os.path.join(args.source, "proto"), stubs)
        from rnnserve.v1 import inference_pb2 as pb
        from rnnserve.v1 import inference_pb2_grpc as pb_grpc
        import health_pb2
        import health_pb2_grpc
        tensors, _ = rnnserve_format.read_safetensors(os.path.join(
            args.source, "tests", "goldens", "sine_rnn_stream.safetensors"))
        golden = (tensors["inputs"].reshape(-1).tolist(),
                  tensors["outputs"].reshape(-1).tolist())
        models = os.path.join(args.source, "models")

        def replica(store):
            folder = os.path.join(work, f"replica{len(stores)}")
            os.makedirs(folder)
            server = start_rnnserve(
                processes, args.rnnserve, models, folder,
                [f"--session-store={store.url}",
                 "--session-store-timeout=300ms", "--compute-threads=1",
                 "--shutdown-grace=1s"])
            return Client(pb, pb_grpc, health_pb2, health_pb2_grpc,
                          connected_channel(server.address), golden)

        plain = RedisServer(work, name="redis-plain")
        stores.append(plain)
        check_stall_and_loss(replica(plain), plain)

        durable = RedisServer(work, ["--appendonly", "yes", "--appendfsync",
                                     "always"], name="redis-aof")
        stores.append(durable)
        check_persistence(replica(durable), durable)
    finally:
        processes.stop_all()
        for store in stores:
            store.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
