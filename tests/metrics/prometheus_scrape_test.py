#!/usr/bin/python3
"""A real Prometheus scrapes a real rnnserve, and says what the clients saw.

  prometheus_scrape_test.py scrape  --rnnserve BIN --models DIR --proto DIR
  prometheus_scrape_test.py promtool --rnnserve BIN --models DIR --proto DIR

Starts rnnserve on 127.0.0.1 (free ports, the bundled models), sends known
traffic with Python gRPC stubs generated now from proto/, then:
- scrape: starts Debian's prometheus (scrape interval 1s, a temporary
  storage dir) and checks through its HTTP query API that every counter
  equals what the clients sent and received;
- promtool: runs `promtool check metrics` on the live /metrics text and
  expects no output and exit 0.
Everything runs on 127.0.0.1 and is stopped and removed at the end, on
failure too; every wait is bounded.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SCRAPE_TIMEOUT = 30
CALL_TIMEOUT = 10

CLASSIFIER = "fashion_lstm"  # 28 steps of 28 features.
REGRESSOR = "sine_rnn"  # 1 feature per step.

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "testing"))
from live import (START_TIMEOUT, Processes, fail, free_port,  # noqa: E402
                  generate_stubs, http_get, start_rnnserve, wait_until)


class Traffic:
    """Sends the known traffic and tallies what the clients saw, as the
    series the server should show."""

    def __init__(self, channel):
        import grpc
        from rnnserve.v1 import inference_pb2 as pb
        from rnnserve.v1 import inference_pb2_grpc as pb_grpc
        self.grpc, self.pb = grpc, pb
        self.stub = pb_grpc.InferenceStub(channel)
        self.requests = {}  # (model, method, code) -> calls (or chunks).
        self.sequences = {CLASSIFIER: 0, REGRESSOR: 0}
        self.steps = {CLASSIFIER: 0, REGRESSOR: 0}
        self.batch_sum = 0  # Classify sequences run.
        self.batch_count = 0  # Classify engine calls.
        self.sessions = {"created": 0, "resumed": 0, "ended": 0}
        self.rng = random.Random(1)

    def count(self, model, method, code, n=1):
        key = (model, method, code)
        self.requests[key] = self.requests.get(key, 0) + n

    def values(self, n):
        return [self.rng.random() for _ in range(n)]

    def classify(self, model, sequences, expect):
        request = self.pb.ClassifyRequest(model=model, sequences=sequences)
        try:
            self.stub.Classify(request, timeout=CALL_TIMEOUT)
            code = "OK"
        except self.grpc.RpcError as e:
            code = e.code().name
        if code != expect:
            fail(f"Classify on {model} gave {code}, expected {expect}")
        self.count(model, "Classify", code)
        return code

    def classify_ok(self, steps_per_sequence):
        sequences = [self.pb.Sequence(steps=s, values=self.values(s * 28))
                     for s in steps_per_sequence]
        self.classify(CLASSIFIER, sequences, "OK")
        self.sequences[CLASSIFIER] += len(sequences)
        self.steps[CLASSIFIER] += sum(steps_per_sequence)
        self.batch_sum += len(sequences)
        self.batch_count += 1  # One call at a time: one batch per call.

    def chunk(self, steps, token="", end=False):
        return self.pb.RegressRequest(model=REGRESSOR, session_token=token,
                                      steps=steps, values=self.values(steps),
                                      end_session=end)

    def ran_chunk(self, steps):
        self.sequences[REGRESSOR] += 1
        self.steps[REGRESSOR] += steps

    def regress_stream(self, chunks, token="", end=False):
        """One stream of chunks (steps each); returns the session token."""
        requests = [self.chunk(s, token if i == 0 else "",
                               end and i == len(chunks) - 1)
                    for i, s in enumerate(chunks)]
        responses = list(self.stub.Regress(iter(requests),
                                           timeout=CALL_TIMEOUT))
        if len(responses) != len(chunks):
            fail(f"Regress answered {len(responses)} of {len(chunks)} chunks")
        for s in chunks:
            self.ran_chunk(s)
        self.count(REGRESSOR, "Regress", "OK", len(chunks))
        self.sessions["resumed" if token else "created"] += 1
        if end:
            self.sessions["ended"] += 1
        return responses[0].session_token

    def regress_chunk(self, steps, token="", end=False):
        response = self.stub.RegressChunk(self.chunk(steps, token, end),
                                          timeout=CALL_TIMEOUT)
        self.ran_chunk(steps)
        self.count(REGRESSOR, "RegressChunk", "OK")
        self.sessions["resumed" if token else "created"] += 1
        if end:
            self.sessions["ended"] += 1
        return response.session_token

    def send(self):
        seq = self.pb.Sequence
        # Classify: 6 good calls, 16 sequences of mixed lengths.
        for lengths in ([28], [28, 28, 28], [14, 28], [28, 7, 28, 21], [1],
                        [28, 28, 10, 28, 28]):
            self.classify_ok(lengths)
        # Bad calls on purpose: the values do not match the steps, a
        # sequence of 0 steps, no sequence at all.
        self.classify(CLASSIFIER, [seq(steps=28, values=self.values(27))],
                      "INVALID_ARGUMENT")
        self.classify(CLASSIFIER, [seq(steps=0)], "INVALID_ARGUMENT")
        self.classify(CLASSIFIER, [], "INVALID_ARGUMENT")
        # A regression model cannot classify; whatever code the server
        # gives must be counted under that model.
        try:
            self.stub.Classify(self.pb.ClassifyRequest(
                model=REGRESSOR, sequences=[seq(steps=1, values=[0.5])]),
                timeout=CALL_TIMEOUT)
            fail("Classify on a regression model succeeded")
        except self.grpc.RpcError as e:
            self.count(REGRESSOR, "Classify", e.code().name)

        # Streams: one session ended on its last chunk; one left open, then
        # resumed by a second stream and ended there.
        self.regress_stream([10, 10, 10, 10], end=True)
        token = self.regress_stream([10, 10])
        self.regress_stream([10], token=token, end=True)
        # RegressChunk: a session over three calls, and one left open.
        token = self.regress_chunk(10)
        self.regress_chunk(5, token=token)
        self.regress_chunk(3, token=token, end=True)
        self.regress_chunk(10)

    def expected(self, models):
        """(PromQL selector, value) pairs."""
        out = []
        for (model, method, code), n in sorted(self.requests.items()):
            out.append((f'rnnserve_requests_total{{model="{model}",'
                        f'method="{method}",code="{code}"}}', n))
            # Every call is also observed by the latency histogram.
        for model in (CLASSIFIER, REGRESSOR):
            for method in ("Classify", "Regress", "RegressChunk"):
                n = sum(v for (m, me, _), v in self.requests.items()
                        if m == model and me == method)
                out.append((f'rnnserve_request_duration_seconds_count{{'
                            f'model="{model}",method="{method}"}}', n))
            out.append((f'rnnserve_sequences_total{{model="{model}"}}',
                        self.sequences[model]))
            out.append((f'rnnserve_steps_total{{model="{model}"}}',
                        self.steps[model]))
        c = f'model="{CLASSIFIER}",method="Classify"'
        out.append((f'rnnserve_batch_size_sum{{{c}}}', self.batch_sum))
        out.append((f'rnnserve_batch_size_count{{{c}}}', self.batch_count))
        out.append((f'rnnserve_compute_duration_seconds_count{{{c}}}',
                    self.batch_count))
        out.append((f'rnnserve_queue_wait_seconds_count{{{c}}}',
                    self.batch_count))
        out.append((f'rnnserve_requests_total{{{c},code="OK"}}', 6))
        out.append((f'rnnserve_requests_total{{{c},code="INVALID_ARGUMENT"}}',
                    3))
        r = f'model="{REGRESSOR}"'
        for event, n in self.sessions.items():
            out.append((f'rnnserve_sessions_{event}_total{{{r}}}', n))
        out.append((f'rnnserve_sessions_expired_total{{{r}}}', 0))
        out.append((f'rnnserve_sessions_refused_total{{{r}}}', 0))
        open_sessions = self.sessions["created"] - self.sessions["ended"]
        out.append((f'rnnserve_sessions_active{{{r}}}', open_sessions))
        out.append(('count(rnnserve_model_info)', models))
        # Series of a model carry its version (the bundled models' is "1").
        out.append(('count(rnnserve_sequences_total{version="1"})', models))
        out.append(('up{job="rnnserve"}', 1))
        return out


def query(prometheus, promql):
    """The single value of an instant query, or None."""
    url = (f"http://127.0.0.1:{prometheus}/api/v1/query?"
           + urllib.parse.urlencode({"query": promql}))
    status, body = http_get(url)
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        fail(f"query {promql}: {body}")
    result = data["data"]["result"]
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


def check_scrape(args, work, processes, metrics_port, traffic):
    prometheus_port = free_port()
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rnnserve
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""")
    processes.start("prometheus", [
        args.prometheus, f"--config.file={config}",
        f"--storage.tsdb.path={os.path.join(work, 'data')}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
        "--log.level=warn"], os.path.join(work, "prometheus.log"))
    wait_until("prometheus to be ready",
               lambda: http_get(f"http://127.0.0.1:{prometheus_port}/-/ready")
               [0] == 200, START_TIMEOUT, processes)

    # Every model folder of the repository is served.
    models = sum(os.path.isfile(os.path.join(args.models, name, "config.json"))
                 for name in os.listdir(args.models))
    expected = traffic.expected(models)
    mismatches = []

    def all_match():
        mismatches.clear()
        for promql, value in expected:
            got = query(prometheus_port, promql)
            if got != value:
                mismatches.append(f"{promql}: Prometheus says {got}, "
                                  f"expected {value}")
        return not mismatches

    deadline = time.monotonic() + SCRAPE_TIMEOUT
    while not all_match():
        processes.check_alive()
        if time.monotonic() > deadline:
            fail("after scraping, Prometheus disagrees with the traffic:\n  "
                 + "\n  ".join(mismatches))
        time.sleep(0.5)
    print(f"{len(expected)} series agree with the traffic sent")


def check_promtool(args, metrics_port):
    status, text = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    if status != 200:
        fail(f"/metrics answered {status}")
    result = subprocess.run([args.promtool, "check", "metrics"], input=text,
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or result.stdout or result.stderr:
        fail(f"promtool check metrics exited {result.returncode}:\n"
             + result.stdout + result.stderr)
    print(f"promtool check metrics: clean ({len(text.splitlines())} lines)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("check", choices=["scrape", "promtool"])
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--proto", required=True)
    parser.add_argument("--prometheus", default="prometheus")
    parser.add_argument("--promtool", default="promtool")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="rnnserve_scrape_")
    processes = Processes()
    try:
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(args.proto, stubs)
        server = start_rnnserve(processes, args.rnnserve, args.models, work,
                                ["--compute-threads=1", "--max-batch-size=8"])
        metrics_port = server.metrics_port

        import grpc
        channel = grpc.insecure_channel(server.address)
        wait_until("rnnserve to serve gRPC",
                   lambda: grpc.channel_ready_future(channel).result(
                       timeout=1) is None, 30, processes)
        import health_pb2
        import health_pb2_grpc
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        if health.status != health_pb2.HealthCheckResponse.SERVING:
            fail(f"health says {health.status}")

        traffic = Traffic(channel)
        traffic.send()
        if args.check == "scrape":
            check_scrape(args, work, processes, metrics_port, traffic)
        else:
            check_promtool(args, metrics_port)
        channel.close()
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
