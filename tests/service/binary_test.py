#!/usr/bin/python3
"""The rnnserve binary, called from Debian's Python grpcio.

  binary_test.py interop   --rnnserve BIN --source DIR
  binary_test.py sigterm   --rnnserve BIN --source DIR
  binary_test.py sigterm-idle --rnnserve BIN --source DIR
  binary_test.py bad-model --rnnserve BIN --source DIR
  binary_test.py tls       --rnnserve BIN --source DIR [--rnnctl BIN]

- interop: stubs generated now from proto/; a classification of Fashion-MNIST
  images equals PyTorch's predictions, and a sine stream split over two
  streams (resumed with the session token) equals PyTorch's outputs.
- sigterm: under the load of 64 Classify callers and with a Regress stream
  open, SIGTERM turns health NOT_SERVING at once; calls are served for the
  drain delay, then refused with UNAVAILABLE, none CANCELLED; the stream
  ends with UNAVAILABLE telling the client to resume; exit 0.
- sigterm-idle: an idle server with no drain delay exits without waiting
  for the grace, and with metrics on less than 0.5 s later than with
  metrics off (measured side by side, so that a sanitizer build's slowness
  does not count).
- bad-model: a broken model folder stops start-up with a non-zero exit and a
  message naming the file and the tensor.
- tls: with certificates made now (tests/testing/make_test_certs.sh) and a
  bearer token, rnnserve serves mutual TLS with authentication: rnnctl (found
  beside rnnserve unless --rnnctl) lists the models with the CA, its client
  certificate and the token, and is refused without the token; Python grpcio
  streams a resumed session, is refused with a wrong token, and checks
  health without one. The log never holds a session token nor a bearer
  token. Mistakes in the security flags stop start-up, naming flag and file,
  and --help lists every security flag and limit.
"""
import argparse
import gzip
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from live import (Processes, connected_channel, fail,  # noqa: E402
                  generate_stubs, make_certificates, start_rnnserve,
                  write_private)
import rnnserve_format  # noqa: E402

IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
CALL_TIMEOUT = 30
# See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
TOLERANCE = 1e-5


def read_images(count):
    with gzip.open(IMAGES, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 0x803 or rows != 28 or cols != 28:
            fail(f"{IMAGES}: not an idx file of 28x28 images")
        data = f.read(count * 784)
    return [[b / 255.0 for b in data[i * 784:(i + 1) * 784]]
            for i in range(count)]


def read_golden(source, name):
    tensors, _ = rnnserve_format.read_safetensors(
        os.path.join(source, "tests", "goldens", name))
    return {k: v.reshape(-1).tolist() for k, v in tensors.items()}


def check_interop(args, server):
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc
    channel = connected_channel(server.address)
    stub = pb_grpc.InferenceStub(channel)

    # Classification: 64 images in one request, as PyTorch predicts them.
    golden = read_golden(args.source, "fashion_lstm_test1000.safetensors")
    images = read_images(64)
    request = pb.ClassifyRequest(
        model="fashion_lstm", top_k=3,
        sequences=[pb.Sequence(steps=28, values=v) for v in images])
    response = stub.Classify(request, timeout=CALL_TIMEOUT)
    if len(response.results) != 64:
        fail(f"Classify answered {len(response.results)} of 64 sequences")
    for i, result in enumerate(response.results):
        if result.top[0].index != golden["predictions"][i]:
            fail(f"image {i}: predicted {result.top[0].index}, PyTorch "
                 f"{golden['predictions'][i]}")
        want = golden["logits"][i * 10:(i + 1) * 10]
        worst = max(abs(a - b) for a, b in zip(result.logits, want))
        if worst > 5e-5:  # Logits up to ~20: see fashion_test.cc.
            fail(f"image {i}: logits differ from PyTorch's by {worst}")
    print(f"interop: 64 predictions equal PyTorch's; labels like "
          f"'{response.results[0].top[0].label}'")

    # A stream of 100 steps: 40 on one stream, 60 on a second that resumes.
    sine = read_golden(args.source, "sine_rnn_stream.safetensors")
    x, want = sine["inputs"], sine["outputs"]

    def chunks(first, last, token):
        for at in range(first, last, 10):
            yield pb.RegressRequest(
                model="sine_rnn", session_token=token if at == first else "",
                steps=10, values=x[at:at + 10])

    got = []
    responses = list(stub.Regress(chunks(0, 40, ""), timeout=CALL_TIMEOUT))
    token = responses[0].session_token
    if len(token) < 22:
        fail(f"session token of {len(token)} characters: too short")
    for r in responses:
        got += list(r.outputs)
    responses = list(stub.Regress(chunks(40, 100, token),
                                  timeout=CALL_TIMEOUT))
    if responses[0].first_step != 40:
        fail(f"resumed stream starts at step {responses[0].first_step}")
    for r in responses:
        got += list(r.outputs)
    worst = max(abs(a - b) for a, b in zip(got, want))
    if len(got) != 100 or worst > TOLERANCE:
        fail(f"resumed stream differs from PyTorch by {worst}")
    print(f"interop: 100 streamed steps over two streams match PyTorch "
          f"(worst {worst:.2e})")
    check_text_not_utf8(channel, pb, server)
    channel.close()


SIGTERM_DRAIN = 2.0  # --drain-delay of the sigterm checks, in seconds.
SIGTERM_GRACE = 3.0  # --shutdown-grace.
DRAINING = "server draining; resume with your session token"
REFUSED = "server is shutting down"


class StreamClient:
    """A Regress stream whose requests are sent one at a time, on demand."""

    def __init__(self, stub, pb):
        import queue
        self.pb = pb
        self.requests = queue.Queue()
        self.responses = stub.Regress(iter(self.requests.get, None),
                                      timeout=CALL_TIMEOUT)

    def chunk(self, steps, token=""):
        self.requests.put(self.pb.RegressRequest(
            model="sine_rnn", session_token=token, steps=steps,
            values=[0.5] * steps))
        return next(self.responses)


def check_text_not_utf8(channel, pb, server):
    """Text fields that are not UTF-8 are refused by name, nothing logged.

    The stubs refuse such text, so the requests go as raw bytes: a valid
    request with the field appended again (the last occurrence counts).
    """
    import grpc
    classify = pb.ClassifyRequest(
        model="fashion_lstm", sequences=[pb.Sequence(steps=28,
                                                     values=[0.5] * 784)])
    chunk = pb.RegressRequest(model="sine_rnn", steps=1, values=[0.5])
    cases = [
        ("Classify", False, classify.SerializeToString() + b"\x0a\x02\xc3\x28",
         "model: not valid UTF-8"),
        ("Regress", True, chunk.SerializeToString() + b"\x12\x01\xff",
         "session_token: not valid UTF-8"),
    ]
    for method, stream, body, message in cases:
        path = f"/rnnserve.v1.Inference/{method}"
        try:
            if stream:
                list(channel.stream_stream(path)(iter([body]),
                                                 timeout=CALL_TIMEOUT))
            else:
                channel.unary_unary(path)(body, timeout=CALL_TIMEOUT)
            fail(f"{method} with text that is not UTF-8 was served")
        except grpc.RpcError as e:
            if (e.code() != grpc.StatusCode.INVALID_ARGUMENT
                    or e.details() != message):
                fail(f"{method} with text that is not UTF-8: {e.code()} "
                     f"{e.details()}")
    if "libprotobuf" in server.log():
        fail("the server logged text that is not UTF-8:\n" + server.log())
    print("interop: text that is not UTF-8 refused by name, nothing logged")


def check_sigterm(args, server):
    """64 Classify callers and an open Regress stream around SIGTERM."""
    import grpc
    import health_pb2
    import health_pb2_grpc
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc
    channel = connected_channel(server.address)
    stub = pb_grpc.InferenceStub(channel)
    request = pb.ClassifyRequest(
        model="fashion_lstm",
        sequences=[pb.Sequence(steps=28, values=[0.5] * 784)] * 16)
    expected = list(stub.Classify(request, timeout=CALL_TIMEOUT)
                    .results[0].logits)
    health = health_pb2_grpc.HealthStub(channel)
    if health.Check(health_pb2.HealthCheckRequest(),
                    timeout=CALL_TIMEOUT).status != \
            health_pb2.HealthCheckResponse.SERVING:
        fail("not SERVING before SIGTERM")
    stream = StreamClient(stub, pb)
    if not stream.chunk(10).session_token:
        fail("the first answer of a stream lacks its session token")

    calls = []  # (seconds after SIGTERM it was sent, code, details)
    lock = threading.Lock()
    sent_at = [None]
    channels = [connected_channel(server.address) for _ in range(16)]

    def load(own):
        # 64 callers on 16 connections; a caller that is refused goes
        # elsewhere, as one behind a load balancer or with other backends.
        while True:
            start = time.monotonic()
            try:
                r = own.Classify(request, timeout=CALL_TIMEOUT)
                ok = all(max(abs(a - b) for a, b in zip(x.logits, expected))
                         <= 1e-5 for x in r.results)
                code, details = ("OK" if ok else "WRONG"), ""
            except grpc.RpcError as e:
                code, details = e.code().name, e.details()
            with lock:
                since = None if sent_at[0] is None else start - sent_at[0]
                calls.append((since, code, details))
            if code != "OK":
                return

    threads = [threading.Thread(
        target=load, args=(pb_grpc.InferenceStub(channels[i % 16]),))
        for i in range(64)]
    for t in threads:
        t.start()
    time.sleep(1)
    with lock:
        sent_at[0] = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    # Health says NOT_SERVING well within the drain delay...
    not_serving = None
    while time.monotonic() - sent_at[0] < SIGTERM_DRAIN / 2:
        status = health.Check(health_pb2.HealthCheckRequest(),
                              timeout=CALL_TIMEOUT).status
        if status == health_pb2.HealthCheckResponse.NOT_SERVING:
            not_serving = time.monotonic() - sent_at[0]
            break
        time.sleep(0.01)
    if not_serving is None:
        fail(f"health still SERVING {SIGTERM_DRAIN / 2}s after SIGTERM")
    # ... while the open stream is still served.
    answer = stream.chunk(10)
    if answer.first_step != 10:
        fail(f"a chunk in the drain delay answered from step "
             f"{answer.first_step}, not 10")
    # When the delay ends, the idle stream is told to resume elsewhere.
    try:
        next(stream.responses)
        fail("the open stream got an answer it did not ask for")
    except grpc.RpcError as e:
        ended = time.monotonic() - sent_at[0]
        if e.code() != grpc.StatusCode.UNAVAILABLE or e.details() != DRAINING:
            fail(f"the open stream ended with {e.code()} {e.details()}")
    stream.requests.put(None)
    if ended < SIGTERM_DRAIN - 0.5:
        fail(f"the open stream ended {ended:.2f}s after SIGTERM, before the "
             f"drain delay of {SIGTERM_DRAIN}s")
    try:
        code = server.process.wait(timeout=SIGTERM_DRAIN + SIGTERM_GRACE + 10)
    except subprocess.TimeoutExpired:
        fail("rnnserve did not exit within drain delay + grace + 10s")
    took = time.monotonic() - sent_at[0]
    for t in threads:
        t.join()
    if code != 0:
        fail(f"rnnserve exited with {code} after SIGTERM")

    # Calls sent before the drain delay's last second all succeeded; then
    # calls were refused with UNAVAILABLE only, never CANCELLED.
    ok_during_drain = sum(1 for since, c, _ in calls
                          if c == "OK" and since is not None and since > 0)
    bad = [(since, c, d) for since, c, d in calls if c not in ("OK",
           "UNAVAILABLE") or (c == "UNAVAILABLE" and (
               since is None or since < SIGTERM_DRAIN - 1))]
    refused = [d for _, c, d in calls if c == "UNAVAILABLE"]
    if bad:
        fail(f"{len(bad)} calls failed otherwise, e.g. {bad[:5]}")
    if ok_during_drain == 0 or REFUSED not in refused:
        fail(f"{ok_during_drain} calls OK in the drain delay; refusals: "
             f"{sorted(set(refused))}")
    log = server.log()
    for line in ("received SIGTERM", "stopped after"):
        if line not in log:
            fail(f"log lacks '{line}':\n{log}")
    print(f"sigterm: NOT_SERVING {not_serving:.2f}s after the signal; "
          f"{ok_during_drain} calls OK in the {SIGTERM_DRAIN}s drain delay, "
          f"then {len(refused)} refused with UNAVAILABLE, none CANCELLED; "
          f"the open stream ended {ended:.2f}s after the signal with "
          f"'{DRAINING}'; exit 0 after {took:.2f}s")


def exit_time(server):
    """Seconds from SIGTERM to the exit of an idle `server`; fails the test
    unless it exits 0 without waiting for the grace."""
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=SIGTERM_GRACE + 10)
    except subprocess.TimeoutExpired:
        fail("rnnserve did not exit within the grace + 10s")
    took = time.monotonic() - sent
    if code != 0:
        fail(f"rnnserve exited with {code} after SIGTERM")
    if took >= SIGTERM_GRACE:
        fail(f"idle rnnserve waited out the grace: exited after {took:.2f}s")
    return took


def check_sigterm_idle(args, server, start_plain):
    """An idle server (no drain delay) exits without waiting for the grace,
    and the /metrics HTTP server adds less than 0.5 s to that exit (it added
    up to 2 s, civetweb's poll interval). The cost of the metrics endpoint is
    measured against the same server with metrics off, in the same run, so
    that a slow build (a sanitizer's) does not count against it."""
    from live import http_get
    status, _ = http_get(f"http://127.0.0.1:{server.metrics_port}/metrics")
    if status != 200:
        fail(f"/metrics answered {status}")
    with_metrics = exit_time(server)
    without = exit_time(start_plain())
    if with_metrics - without >= 0.5:
        fail(f"idle rnnserve with metrics on exited {with_metrics:.2f}s after "
             f"SIGTERM, {without:.2f}s with metrics off: the metrics endpoint "
             f"adds {with_metrics - without:.2f}s; expected under 0.5s")
    print(f"sigterm-idle: exit 0 after {with_metrics:.2f}s with metrics on, "
          f"{without:.2f}s off (no drain delay, grace {SIGTERM_GRACE}s)")


def check_bad_model(args, work):
    cases = {
        # A weights file cut in half.
        "truncated": (lambda d: truncate(os.path.join(d, "model.safetensors")),
                      ["model.safetensors"]),
        # A config whose hidden size contradicts the weights.
        "contradiction": (lambda d: edit_config(d, '"hidden_size": 32',
                                                '"hidden_size": 16'),
                          ["rnn.weight_ih_l0", "hidden_size"]),
        # A version folder whose config names another version.
        "version-folder": (lambda d: as_version_folder(d, "2"),
                           [os.path.join("2", "config.json"),
                            '"version" must be "2"']),
    }
    for name, (damage, words) in cases.items():
        repo = os.path.join(work, f"repo_{name}")
        shutil.copytree(os.path.join(args.source, "models"), repo)
        damage(os.path.join(repo, "sine_rnn"))
        processes = Processes()
        log_path = os.path.join(work, f"{name}.log")
        child = processes.start("rnnserve", [
            args.rnnserve, f"--model-repository={repo}",
            "--grpc-address=127.0.0.1:0", "--metrics-address="], log_path)
        try:
            code = child.wait(timeout=60)
        finally:
            processes.stop_all()
        log = open(log_path).read()
        if code == 0:
            fail(f"{name}: rnnserve started on a broken model:\n{log}")
        for word in words + ["sine_rnn"]:
            if word not in log:
                fail(f"{name}: the message does not name '{word}':\n{log}")
        print(f"bad-model {name}: exit {code}: {log.strip().splitlines()[-1]}")


def check_tls_flags(args, work, certs):
    """Mistakes in the security flags stop start-up, naming flag and file."""
    empty = os.path.join(work, "empty_tokens")
    write_private(empty, "# no token yet\n\n")
    cert, key = (os.path.join(certs, f"server.{e}") for e in ("pem", "key"))
    cases = [
        (["--tls-cert", cert], ["--tls-cert", "--tls-key"]),
        (["--tls-cert", cert, "--tls-key", os.path.join(certs, "client.key")],
         ["--tls-key", "client.key", "not the private key"]),
        (["--tls-client-ca", os.path.join(certs, "ca.pem")],
         ["--tls-client-ca", "--tls-cert"]),
        (["--auth-tokens-file", empty], ["--auth-tokens-file", empty,
                                         "no token"]),
        (["--auth-tokens-file", os.path.join(work, "missing")],
         ["--auth-tokens-file", "missing"]),
    ]
    for flags, words in cases:
        result = subprocess.run(
            [args.rnnserve, "--model-repository=/nonexistent",
             "--grpc-address=127.0.0.1:0", "--metrics-address=", *flags],
            capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            fail(f"rnnserve {flags} started")
        for word in words:
            if word not in result.stderr:
                fail(f"rnnserve {flags}: message lacks '{word}': "
                     f"{result.stderr}")
    help_text = subprocess.run([args.rnnserve, "--help"], capture_output=True,
                               text=True, timeout=60, check=True).stdout
    for flag in ("--tls-cert", "--tls-key", "--tls-client-ca",
                 "--auth-tokens-file", "--max-message-bytes",
                 "--max-sequence-length", "--max-sequences-per-request",
                 "--max-streams-per-connection", "--keepalive-time",
                 "--max-sessions", "--max-queued-items"):
        if flag not in help_text:
            fail(f"--help lacks {flag}")
    print(f"tls: {len(cases)} bad security flag sets refused at start-up")


def check_tls(args, work, certs, server, token):
    import grpc
    import health_pb2
    import health_pb2_grpc
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc

    def path(name):
        return os.path.join(certs, name)

    token_file = os.path.join(work, "client_token")
    write_private(token_file, token + "\n")
    rnnctl = args.rnnctl or os.path.join(os.path.dirname(args.rnnserve),
                                         "rnnctl")
    secure = ["--server", server.address, "--tls-ca", path("ca.pem"),
              "--tls-cert", path("client.pem"),
              "--tls-key", path("client.key")]
    listed = subprocess.run([rnnctl, "models", *secure, "--auth-token-file",
                             token_file], capture_output=True, text=True,
                            timeout=60)
    if listed.returncode != 0 or "fashion_lstm" not in listed.stdout \
            or "sine_rnn" not in listed.stdout:
        fail(f"rnnctl models over mutual TLS with the token: exit "
             f"{listed.returncode}\n{listed.stdout}{listed.stderr}")
    refused = subprocess.run([rnnctl, "models", *secure], capture_output=True,
                             text=True, timeout=60)
    if refused.returncode == 0 or "UNAUTHENTICATED" not in refused.stderr:
        fail(f"rnnctl models without the token: exit {refused.returncode}\n"
             f"{refused.stdout}{refused.stderr}")
    print("tls: rnnctl lists the models over mutual TLS with its token, and "
          "is refused without it")
    # The container health check: no token needed, exit 0 only on SERVING.
    for service, code, word in (("", 0, "SERVING"), ("fashion_lstm", 0,
                                                     "SERVING"),
                                ("no_such_model", 1, "NOT_FOUND")):
        probe = subprocess.run([rnnctl, "health", *secure, service],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode != code or word not in probe.stdout + probe.stderr:
            fail(f"rnnctl health '{service}': exit {probe.returncode}\n"
                 f"{probe.stdout}{probe.stderr}")
    print("tls: rnnctl health answers without a token, 0 only when SERVING")

    def read(name):
        with open(path(name), "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"), private_key=read("client.key"),
        certificate_chain=read("client.pem"))
    channel = connected_channel(server.address, credentials)
    stub = pb_grpc.InferenceStub(channel)
    metadata = [("authorization", f"Bearer {token}")]

    def chunks(first, count, session):
        for i in range(count):
            yield pb.RegressRequest(model="sine_rnn",
                                    session_token=session if i == 0 else "",
                                    steps=10, values=[0.1 * (first + i)] * 10)

    responses = list(stub.Regress(chunks(0, 3, ""), metadata=metadata,
                                  timeout=CALL_TIMEOUT))
    session = responses[0].session_token
    resumed = list(stub.Regress(chunks(3, 2, session), metadata=metadata,
                                timeout=CALL_TIMEOUT))
    if len(session) < 22 or resumed[0].first_step != 30:
        fail(f"session over TLS: token of {len(session)} characters, "
             f"resumed at step {resumed[0].first_step}")

    wrong = secrets.token_urlsafe(32)
    try:
        stub.ListModels(pb.ListModelsRequest(),
                        metadata=[("authorization", f"Bearer {wrong}")],
                        timeout=CALL_TIMEOUT)
        fail("ListModels with a wrong token was served")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED or \
                wrong in (e.details() or ""):
            fail(f"wrong token: {e.code()} {e.details()}")
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="rnnserve.v1.Inference"),
        timeout=CALL_TIMEOUT)
    if health.status != health_pb2.HealthCheckResponse.SERVING:
        fail(f"health without a token: {health.status}")
    channel.close()
    print("tls: a session streamed and resumed over mutual TLS; a wrong token "
          "is UNAUTHENTICATED; health needs no token")

    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=30)
    log = server.log()
    if code != 0:
        fail(f"rnnserve exited with {code} after SIGTERM:\n{log}")
    if "mutual TLS, 1 bearer token(s)" not in log:
        fail(f"the start-up line does not say how gRPC is protected:\n{log}")
    for secret, what in ((session, "session token"), (token, "bearer token"),
                         (wrong, "wrong bearer token")):
        if secret in log:
            fail(f"the log holds a full {what}:\n{log}")
    print("tls: the log holds no session token and no bearer token")


def truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def as_version_folder(folder, version):
    """Moves the model in `folder` into its version folder `version`,
    leaving its config's own "version" as it was."""
    inside = os.path.join(folder, version)
    os.makedirs(inside)
    for name in os.listdir(folder):
        if name != version:
            shutil.move(os.path.join(folder, name), inside)


def edit_config(folder, old, new):
    path = os.path.join(folder, "config.json")
    text = open(path).read()
    if old not in text:
        fail(f"{path} has no '{old}'")
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("check",
                        choices=["interop", "sigterm", "sigterm-idle",
                                 "bad-model", "tls"])
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--rnnctl",
                        help="rnnctl binary (default: beside --rnnserve)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnserve_binary_")
    processes = Processes()
    cleanup = [processes]
    try:
        if args.check == "bad-model":
            check_bad_model(args, work)
            return 0
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        generate_stubs(os.path.join(args.source, "proto"), stubs)
        flags = ["--shutdown-grace=3s"]
        if args.check == "sigterm":
            flags = [f"--shutdown-grace={SIGTERM_GRACE}s",
                     f"--drain-delay={SIGTERM_DRAIN}s"]
        elif args.check == "sigterm-idle":
            flags = [f"--shutdown-grace={SIGTERM_GRACE}s", "--drain-delay=0s"]
        if args.check == "tls":
            certs = make_certificates(args.source, work)
            check_tls_flags(args, work, certs)
            token = secrets.token_urlsafe(32)
            tokens_file = os.path.join(work, "tokens")
            write_private(tokens_file, f"# test token\n{token}\n")
            flags += [f"--tls-cert={certs}/server.pem",
                      f"--tls-key={certs}/server.key",
                      f"--tls-client-ca={certs}/ca.pem",
                      f"--auth-tokens-file={tokens_file}"]
        server = start_rnnserve(processes, args.rnnserve,
                                os.path.join(args.source, "models"), work,
                                flags, metrics=args.check == "sigterm-idle")
        if args.check == "tls":
            check_tls(args, work, certs, server, token)
        elif args.check == "interop":
            check_interop(args, server)
        elif args.check == "sigterm-idle":
            # Its own set: the first server's exit is expected, not a
            # failure to report while this one starts.
            plain = Processes()
            cleanup.append(plain)
            check_sigterm_idle(args, server, lambda: start_rnnserve(
                plain, args.rnnserve,
                os.path.join(args.source, "models"), work, flags,
                metrics=False))
        else:
            check_sigterm(args, server)
    finally:
        for children in cleanup:
            children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
