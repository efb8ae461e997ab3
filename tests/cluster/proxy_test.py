#!/usr/bin/python3
"""rnnserve replicas behind Debian's nginx, as a fleet runs them.

  proxy_test.py --rnnserve BIN --source DIR

Three replicas on loopback ports, nginx in front proxying gRPC round-robin
(tests/cluster/nginx.py). Through nginx, on one client channel:
- Classify calls are answered exactly as a replica answers them directly,
  and every replica serves some of them (each replica's own metrics say
  so): calls are spread, not pinned to one connection;
- a whole Regress stream stays on the replica it reached and equals
  PyTorch's outputs;
- with one replica killed, calls keep succeeding on the other two.
"""
import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
from live import (Processes, connected_channel, fail, free_port,  # noqa: E402
                  generate_stubs, start_rnnserve)
from nginx import start_nginx  # noqa: E402
import rnnserve_format  # noqa: E402

CALL_TIMEOUT = 30
TOLERANCE = 1e-5  # As the golden tests: see tests/engine.
REPLICAS = 3


def classify_count(server):
    """Classify calls the replica has answered OK, from its own metrics."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for m in re.finditer(
            r'^rnnserve_requests_total\{([^}]*)\} (\S+)$', text, re.M):
        labels = m.group(1)
        if 'method="Classify"' in labels and 'code="OK"' in labels:
            total += float(m.group(2))
    return total


def sine_golden(source):
    tensors, _ = rnnserve_format.read_safetensors(
        os.path.join(source, "tests", "goldens",
                     "sine_rnn_stream.safetensors"))
    return (tensors["inputs"].reshape(-1).tolist(),
            tensors["outputs"].reshape(-1).tolist())


def check_spread(pb, stub, direct_stub, replicas):
    request = pb.ClassifyRequest(
        model="fashion_lstm", top_k=10,
        sequences=[pb.Sequence(steps=28, values=[(i % 7) / 7.0] * 784)
                   for i in range(3)])
    want = direct_stub.Classify(request, timeout=CALL_TIMEOUT)
    before = [classify_count(r) for r in replicas]
    for _ in range(30):
        got = stub.Classify(request, timeout=CALL_TIMEOUT)
        if got != want:
            fail("an answer through nginx differs from the replica's own")
    served = [classify_count(r) - b for r, b in zip(replicas, before)]
    if sum(served) != 30 or min(served) == 0:
        fail(f"30 calls through nginx were served {served} by the replicas:"
             " not spread over all three")
    print(f"proxy: 30 Classify calls spread over the replicas as {served}")


def check_stream(pb, stub, source):
    x, want = sine_golden(source)

    def chunks():
        for at in range(0, 100, 10):
            yield pb.RegressRequest(model="sine_rnn" if at == 0 else "",
                                    steps=10, values=x[at:at + 10])

    got = []
    for r in stub.Regress(chunks(), timeout=CALL_TIMEOUT):
        got += list(r.outputs)
    worst = max(abs(a - b) for a, b in zip(got, want))
    if len(got) != 100 or worst > TOLERANCE:
        fail(f"a stream through nginx differs from PyTorch by {worst}")
    print(f"proxy: a 100-step stream through nginx matches PyTorch "
          f"(worst {worst:.2e})")


def check_replica_down(pb, stub, replicas):
    replicas[0].process.send_signal(signal.SIGKILL)
    replicas[0].process.wait(timeout=10)
    request = pb.ClassifyRequest(
        model="fashion_lstm",
        sequences=[pb.Sequence(steps=28, values=[0.5] * 784)])
    for i in range(20):
        stub.Classify(request, timeout=CALL_TIMEOUT)
    print("proxy: with a replica killed, 20 calls through nginx succeeded")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnserve_cluster_")
    processes = Processes()
    try:
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(os.path.join(args.source, "proto"), stubs)
        from rnnserve.v1 import inference_pb2 as pb
        from rnnserve.v1 import inference_pb2_grpc as pb_grpc
        models = os.path.join(args.source, "models")
        replicas = []
        for _ in range(REPLICAS):
            port = free_port()
            replicas.append(start_rnnserve(
                processes, args.rnnserve, models, work,
                [f"--grpc-address=127.0.0.1:{port}", "--compute-threads=1",
                 "--shutdown-grace=2s"]))
        address = start_nginx(processes, work, free_port(),
                              [r.grpc_port for r in replicas])
        stub = pb_grpc.InferenceStub(connected_channel(address))
        direct = pb_grpc.InferenceStub(connected_channel(replicas[1].address))
        check_spread(pb, stub, direct, replicas)
        check_stream(pb, stub, args.source)
        check_replica_down(pb, stub, replicas)
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
