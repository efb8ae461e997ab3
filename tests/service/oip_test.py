#!/usr/bin/python3
"""The Open Inference Protocol (inference.GRPCInferenceService) on a real
rnnserve, from Python grpcio with stubs generated now from proto/.

  oip_test.py --rnnserve BIN --source DIR

- server A (two bearer tokens, in-memory sessions): refused without a
  token; ServerLive/Ready, ModelReady, ServerMetadata, ModelMetadata;
  Fashion-MNIST through ModelInfer, raw and typed, equal to PyTorch's
  golden; mixed lengths through LENGTHS equal to each sequence computed
  alone by PyTorch, whatever the padding holds; the sine stream by
  sequence_id in uneven chunks equal to the golden; sequence_start on a
  running sequence starts it again; two tokens using one sequence_id get
  separate sessions; every error names its tensor or field.
- servers B and C (no authentication, sessions in one real redis-server):
  the sine stream's chunks alternate between the two replicas and still
  equal the golden.
Expected numbers come from the PyTorch goldens in tests/goldens.
"""
import argparse
import os
import secrets
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from live import (FASHION_TEST_IMAGES, Processes,  # noqa: E402
                  connected_channel, fail, generate_stubs, golden,
                  http_get, read_fashion_images, repository_with_golden,
                  start_redis, start_rnnserve)

TOLERANCE = 1e-5  # See tests/engine/engine_golden_test.cc.
LOGIT_TOLERANCE = 5e-5  # Fashion logits reach ~20: see fashion_test.cc.
CUTS = [0, 7, 20, 21, 40, 77, 100]  # Uneven chunks of the sine stream.


def check(condition, message):
    if not condition:
        fail(message)


def worst(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


class Oip:
    """A GRPCInferenceService stub with a bearer token (or none)."""

    def __init__(self, channel, token=None):
        from inference import grpc_predict_v2_pb2 as pb
        from inference import grpc_predict_v2_pb2_grpc as pb_grpc
        self.pb = pb
        self.channel = channel
        self.stub = pb_grpc.GRPCInferenceServiceStub(channel)
        self.metadata = ([("authorization", f"Bearer {token}")]
                         if token else [])

    def call(self, method, request):
        return getattr(self.stub, method)(request, metadata=self.metadata,
                                          timeout=30)

    def tensor(self, name, array, datatype, raw):
        """An input tensor and its raw bytes (None when typed)."""
        t = self.pb.ModelInferRequest.InferInputTensor(
            name=name, datatype=datatype, shape=list(array.shape))
        if raw:
            return t, np.ascontiguousarray(array).astype("<" + array.dtype.str[1:]).tobytes()
        if datatype == "FP32":
            t.contents.fp32_contents.extend(array.ravel().tolist())
        else:
            t.contents.int_contents.extend(array.ravel().tolist())
        return t, None

    def request(self, model, inputs, raw=True, outputs=(), params=None):
        """inputs: [(name, array, datatype)]."""
        r = self.pb.ModelInferRequest(model_name=model, id="req-1")
        for name, array, datatype in inputs:
            t, data = self.tensor(name, array, datatype, raw)
            r.inputs.append(t)
            if data is not None:
                r.raw_input_contents.append(data)
        for name in outputs:
            r.outputs.add(name=name)
        for key, value in (params or {}).items():
            p = r.parameters[key]
            if isinstance(value, bool):
                p.bool_param = value
            elif isinstance(value, int):
                p.int64_param = value
            else:
                p.string_param = value
        return r

    def infer(self, *args, **kwargs):
        return self.call("ModelInfer", self.request(*args, **kwargs))


def outputs_of(response):
    """name -> numpy array of each output, raw or typed."""
    out = {}
    for i, t in enumerate(response.outputs):
        check(t.datatype == "FP32", f"output {t.name}: {t.datatype}")
        if len(response.raw_output_contents) > 0:
            a = np.frombuffer(response.raw_output_contents[i], dtype="<f4")
        else:
            a = np.array(t.contents.fp32_contents, dtype=np.float32)
        out[t.name] = a.reshape(list(t.shape))
    return out


def expect_error(what, code, needle, thunk):
    import grpc
    try:
        thunk()
    except grpc.RpcError as e:
        check(e.code() == code and needle in e.details(),
              f"{what}: {e.code()} {e.details()!r}, wanted {code} naming "
              f"{needle!r}")
        return e
    fail(f"{what}: succeeded, wanted {code}")


def check_auth_and_metadata(channel, oip):
    import grpc
    anonymous = Oip(channel)
    for method, request in (("ServerLive", oip.pb.ServerLiveRequest()),
                            ("ModelMetadata", oip.pb.ModelMetadataRequest(
                                name="fashion_lstm"))):
        expect_error(f"{method} without a token",
                     grpc.StatusCode.UNAUTHENTICATED, "",
                     lambda: anonymous.call(method, request))
    expect_error("ModelInfer without a token", grpc.StatusCode.UNAUTHENTICATED,
                 "", lambda: anonymous.infer(
                     "fashion_lstm",
                     [("INPUT", np.zeros((1, 2, 28), np.float32), "FP32")]))
    pb = oip.pb
    check(oip.call("ServerLive", pb.ServerLiveRequest()).live, "not live")
    check(oip.call("ServerReady", pb.ServerReadyRequest()).ready, "not ready")
    ready = oip.call("ModelReady", pb.ModelReadyRequest(name="fashion_lstm"))
    check(ready.ready, "fashion_lstm not ready")
    check(not oip.call("ModelReady", pb.ModelReadyRequest(name="nope")).ready,
          "an unknown model is ready")
    meta = oip.call("ServerMetadata", pb.ServerMetadataRequest())
    check(meta.name == "rnnserve" and meta.version and
          list(meta.extensions) == [], f"server metadata: {meta}")
    m = oip.call("ModelMetadata", pb.ModelMetadataRequest(name="fashion_lstm"))
    tensors = lambda ts: [(t.name, t.datatype, list(t.shape)) for t in ts]
    check(m.name == "fashion_lstm" and len(m.versions) == 1 and m.platform ==
          "rnnserve_onednn", f"fashion_lstm metadata: {m}")
    check(tensors(m.inputs) == [("INPUT", "FP32", [-1, -1, 28]),
                                ("LENGTHS", "INT32", [-1])] and
          tensors(m.outputs) == [("LOGITS", "FP32", [-1, 10]),
                                 ("PROBABILITIES", "FP32", [-1, 10])],
          f"fashion_lstm tensors: {m}")
    check(not oip.call("ModelReady", pb.ModelReadyRequest(
        name="fashion_lstm", version=m.versions[0] + "x")).ready,
        "another version is ready")
    s = oip.call("ModelMetadata", pb.ModelMetadataRequest(name="sine_rnn"))
    check(tensors(s.inputs) == [("INPUT", "FP32", [1, -1, 1])] and
          tensors(s.outputs) == [("OUTPUT", "FP32", [1, -1, 1])],
          f"sine_rnn tensors: {s}")
    expect_error("metadata of an unknown model", grpc.StatusCode.NOT_FOUND,
                 "name: no model named", lambda: oip.call(
                     "ModelMetadata", pb.ModelMetadataRequest(name="nope")))
    print("auth and metadata: refused without a token; live, ready, "
          "metadata and tensors as declared")
    return m.versions[0]


def check_fashion(oip, source):
    if not os.path.exists(FASHION_TEST_IMAGES):
        if os.environ.get("RNNSERVE_ALLOW_MISSING_DATASETS") == "1":
            print(f"fashion: SKIPPED ({FASHION_TEST_IMAGES} missing)")
            return
        fail(f"{FASHION_TEST_IMAGES} missing: install dataset-fashion-mnist")
    g = golden(source, "fashion_lstm_test1000.safetensors")
    images = read_fashion_images(64)
    r = oip.infer("fashion_lstm", [("INPUT", images, "FP32")], raw=True)
    check(r.model_name == "fashion_lstm" and r.id == "req-1" and
          [t.name for t in r.outputs] == ["LOGITS", "PROBABILITIES"] and
          len(r.raw_output_contents) == 2, f"raw answer: {r.outputs}")
    out = outputs_of(r)
    check(out["LOGITS"].shape == (64, 10), f"LOGITS {out['LOGITS'].shape}")
    check(worst(out["LOGITS"], g["logits"][:64]) <= LOGIT_TOLERANCE,
          f"raw logits off by {worst(out['LOGITS'], g['logits'][:64])}")
    check(list(np.argmax(out["PROBABILITIES"], 1)) ==
          list(g["predictions"][:64]), "raw: classes differ from PyTorch")
    check(np.allclose(out["PROBABILITIES"].sum(1), 1, atol=1e-4),
          "probabilities do not sum to 1")
    typed = oip.infer("fashion_lstm", [("INPUT", images[:16], "FP32")],
                      raw=False, outputs=["PROBABILITIES"])
    check(len(typed.raw_output_contents) == 0 and
          [t.name for t in typed.outputs] == ["PROBABILITIES"],
          f"typed answer: {typed.outputs}")
    tp = outputs_of(typed)["PROBABILITIES"]
    check(worst(tp, out["PROBABILITIES"][:16]) <= TOLERANCE,
          f"typed probabilities off by {worst(tp, out['PROBABILITIES'][:16])}")
    print("fashion: 64 images (raw) and 16 (typed, PROBABILITIES only) equal "
          "PyTorch's golden")


def check_lengths(oip, source):
    g = golden(source, os.path.join("lstm_cls_1l", "golden.safetensors"))
    lengths = np.asarray(g["lengths"], dtype=np.int32)
    padded = np.array(g["inputs"], dtype=np.float32)
    # Padding is ignored: fill it with something a model would notice.
    garbage = padded.copy()
    for i, n in enumerate(lengths):
        garbage[i, n:] = 5.0
    for raw in (True, False):
        for x in (padded, garbage):
            r = oip.infer("lstm_cls_1l", [("INPUT", x, "FP32"),
                                          ("LENGTHS", lengths, "INT32")],
                          raw=raw)
            out = outputs_of(r)
            check(worst(out["LOGITS"], g["logits"]) <= TOLERANCE and
                  worst(out["PROBABILITIES"], g["probabilities"]) <=
                  TOLERANCE,
                  f"LENGTHS (raw={raw}): off by "
                  f"{worst(out['LOGITS'], g['logits'])}")
    print(f"lengths: sequences of lengths {list(lengths)} via LENGTHS, raw "
          "and typed, whatever the padding, equal PyTorch's each alone")


def sine(source):
    t = golden(source, "sine_rnn_stream.safetensors")
    return (t["inputs"].reshape(100).astype(np.float32),
            t["outputs"].reshape(100).astype(np.float32))


def send_chunk(oip, x, seq, start=False, end=False, raw=True):
    params = {"sequence_id": seq}
    if start:
        params["sequence_start"] = True
    if end:
        params["sequence_end"] = True
    r = oip.infer("sine_rnn", [("INPUT", x.reshape(1, -1, 1), "FP32")],
                  raw=raw, params=params)
    out = outputs_of(r)["OUTPUT"]
    check(out.shape == (1, len(x), 1), f"OUTPUT shape {out.shape}")
    return out.reshape(-1)


def stream(oips, x, seq, cuts=CUTS):
    """The sine stream in chunks at `cuts`, the i-th chunk on
    oips[i % len(oips)]; started on the first, ended on the last."""
    outs = []
    spans = list(zip(cuts[:-1], cuts[1:]))
    for i, (a, b) in enumerate(spans):
        outs.append(send_chunk(oips[i % len(oips)], x[a:b], seq,
                               start=i == 0, end=i == len(spans) - 1,
                               raw=i % 2 == 0))
    return np.concatenate(outs)


def check_sequences(oip, other, source):
    import grpc
    x, want = sine(source)
    got = stream([oip], x, 7)
    check(worst(got, want) <= TOLERANCE,
          f"sine by sequence_id off by {worst(got, want)}")
    expect_error("a chunk after sequence_end", grpc.StatusCode.NOT_FOUND,
                 "parameters.sequence_id: no sequence \"7\"",
                 lambda: send_chunk(oip, x[:5], 7))
    # sequence_start on a running sequence starts it over.
    send_chunk(oip, x[:30], "again", start=True)
    restarted = send_chunk(oip, x[:30], "again", start=True)
    check(worst(restarted, want[:30]) <= TOLERANCE,
          "sequence_start on a running sequence did not start it over")
    # Two bearer tokens, one sequence_id: two sessions.
    first = send_chunk(oip, x[:50], "shared", start=True)
    send_chunk(other, x[60:70], "shared", start=True)
    rest = send_chunk(oip, x[50:], "shared", end=True)
    got = np.concatenate([first, rest])
    check(worst(got, want) <= TOLERANCE,
          "another token's sequence with the same id disturbed this one")
    send_chunk(oip, x[:5], "mine", start=True)
    expect_error("another token's sequence", grpc.StatusCode.NOT_FOUND,
                 "parameters.sequence_id: no sequence \"mine\"",
                 lambda: send_chunk(other, x[5:10], "mine"))
    print("sequences: the sine stream by sequence_id in uneven chunks equals "
          "PyTorch's; ended sequences are gone; sequence_start restarts; "
          "sequence ids are scoped to their bearer token")


def check_errors(oip):
    import grpc
    INVALID, NOT_FOUND = (grpc.StatusCode.INVALID_ARGUMENT,
                          grpc.StatusCode.NOT_FOUND)
    img = np.zeros((2, 3, 28), np.float32)
    lens = np.array([3, 1], np.int32)
    pb = oip.pb

    def infer(model="fashion_lstm", inputs=None, **kw):
        return lambda: oip.infer(model, inputs if inputs is not None else
                                 [("INPUT", img, "FP32")], **kw)

    cases = [
        ("unknown model", NOT_FOUND, "model_name: no model named \"nope\"",
         infer("nope")),
        ("unknown tensor", INVALID, "inputs[0].name: model \"fashion_lstm\" "
         "takes no tensor \"IMAGES\"", infer(inputs=[("IMAGES", img, "FP32")])),
        ("no INPUT", INVALID, "inputs: model \"fashion_lstm\" needs the "
         "tensor INPUT", infer(inputs=[("LENGTHS", lens, "INT32")])),
        ("unknown output", INVALID, "outputs[0].name: model \"fashion_lstm\" "
         "gives no tensor \"SCORES\"", infer(outputs=["SCORES"])),
        ("wrong datatype", INVALID, "inputs[0] (INPUT).datatype: expected "
         "FP32, got \"FP64\"", infer(inputs=[("INPUT", img.astype(np.float64),
                                              "FP64")])),
        ("rank 2", INVALID, "inputs[0] (INPUT).shape: expected [-1, -1, 28]",
         infer(inputs=[("INPUT", img.reshape(6, 28), "FP32")])),
        ("wrong features", INVALID, "inputs[0] (INPUT).shape: expected "
         "[-1, -1, 28]", infer(inputs=[("INPUT", img.reshape(2, 4, 21),
                                          "FP32")])),
        ("zero steps", INVALID, "inputs[0] (INPUT).shape: 0 steps",
         infer(inputs=[("INPUT", np.zeros((2, 0, 28), np.float32), "FP32")])),
        ("not finite", INVALID, "inputs[0] (INPUT): element 0 is nan",
         infer(inputs=[("INPUT", np.full((1, 1, 28), np.nan, np.float32),
                        "FP32")])),
        ("LENGTHS too long", INVALID, "inputs[1] (LENGTHS): element 0 is 4",
         infer(inputs=[("INPUT", img, "FP32"),
                       ("LENGTHS", np.array([4, 1], np.int32), "INT32")])),
        ("LENGTHS zero", INVALID, "inputs[1] (LENGTHS): element 1 is 0",
         infer(inputs=[("INPUT", img, "FP32"),
                       ("LENGTHS", np.array([3, 0], np.int32), "INT32")],
               raw=False)),
        ("LENGTHS datatype", INVALID, "inputs[1] (LENGTHS).datatype: expected "
         "INT32", infer(inputs=[("INPUT", img, "FP32"),
                                ("LENGTHS", lens.astype(np.int64), "INT64")])),
        ("LENGTHS shape", INVALID, "inputs[1] (LENGTHS).shape: expected [2]",
         infer(inputs=[("INPUT", img, "FP32"),
                       ("LENGTHS", np.array([3], np.int32), "INT32")])),
        ("LENGTHS twice", INVALID, "inputs[2].name: tensor \"LENGTHS\" given "
         "twice", infer(inputs=[("INPUT", img, "FP32"),
                                ("LENGTHS", lens, "INT32"),
                                ("LENGTHS", lens, "INT32")])),
        ("LENGTHS of a stream", INVALID, "inputs[1].name: model \"sine_rnn\" "
         "takes no tensor \"LENGTHS\"", infer(
             "sine_rnn", [("INPUT", np.zeros((1, 2, 1), np.float32), "FP32"),
                          ("LENGTHS", np.array([2], np.int32), "INT32")],
             params={"sequence_id": 1, "sequence_start": True})),
        ("no sequence_id", INVALID, "parameters.sequence_id: model "
         "\"sine_rnn\" is a regression model", infer(
             "sine_rnn", [("INPUT", np.zeros((1, 2, 1), np.float32),
                           "FP32")])),
        ("missing sequence", NOT_FOUND, "parameters.sequence_id: no sequence "
         "\"404\"", infer("sine_rnn", [("INPUT", np.zeros((1, 2, 1),
                                                           np.float32),
                                        "FP32")],
                          params={"sequence_id": 404})),
        ("batch of a stream", INVALID, "inputs[0] (INPUT).shape: expected "
         "[1, -1, 1]", infer("sine_rnn", [("INPUT", np.zeros((2, 2, 1),
                                                             np.float32),
                                          "FP32")],
                             params={"sequence_id": 1,
                                     "sequence_start": True})),
    ]
    for what, code, needle, thunk in cases:
        expect_error(what, code, needle, thunk)
    # Element counts that disagree with the shape, raw and typed.
    r = oip.request("fashion_lstm", [("INPUT", img, "FP32")], raw=True)
    r.raw_input_contents[0] = r.raw_input_contents[0][:-4]
    expect_error("raw count", INVALID, "inputs[0] (INPUT): shape [2, 3, 28] "
                 "has 168 FP32 elements (672 bytes), raw_input_contents has "
                 "668 bytes", lambda: oip.call("ModelInfer", r))
    r = oip.request("fashion_lstm", [("INPUT", img, "FP32")], raw=False)
    r.inputs[0].contents.fp32_contents.append(1.0)
    expect_error("typed count", INVALID, "inputs[0] (INPUT).contents."
                 "fp32_contents: shape [2, 3, 28] has 168 elements, got 169",
                 lambda: oip.call("ModelInfer", r))
    r = oip.request("fashion_lstm", [("INPUT", img, "FP32")], raw=True)
    r.raw_input_contents.append(b"")
    expect_error("raw entries", INVALID, "raw_input_contents: 2 entries for 1 "
                 "inputs", lambda: oip.call("ModelInfer", r))
    r = oip.request("fashion_lstm", [("INPUT", img, "FP32")])
    r.model_version = "v-nope"
    expect_error("unknown version", NOT_FOUND, "model_version: model "
                 "\"fashion_lstm\" has version", lambda: oip.call(
                     "ModelInfer", r))
    # A tensor name that is not UTF-8 (bytes no Python protobuf would
    # write): refused by name before protobuf's parse.
    tensor = b"\x0a\x02\xc3\x28" + b"\x12\x04FP32"
    body = b"\x0a\x0cfashion_lstm" + b"\x2a" + bytes([len(tensor)]) + tensor
    raw_infer = oip.channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer")
    expect_error("tensor name not UTF-8", INVALID,
                 "inputs.name: not valid UTF-8",
                 lambda: raw_infer(body, metadata=oip.metadata, timeout=30))
    print(f"errors: {len(cases) + 5} bad requests refused, each naming its "
          "tensor or field")


def check_draining(processes, args, repo, work):
    """SIGTERM starts the drain delay: calls are still answered, and
    ServerReady and ModelReady say false, so clients go elsewhere."""
    import signal
    d = start_rnnserve(processes, args.rnnserve, repo, work,
                       ["--compute-threads=1", "--drain-delay=20s",
                        "--shutdown-grace=1s"], metrics=False)
    oip = Oip(connected_channel(d.address))
    pb = oip.pb
    check(oip.call("ServerReady", pb.ServerReadyRequest()).ready,
          "not ready before SIGTERM")
    d.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while oip.call("ServerReady", pb.ServerReadyRequest()).ready:
        check(time.monotonic() < deadline, "still ready 15 s after SIGTERM")
        time.sleep(0.05)
    check(not oip.call("ModelReady", pb.ModelReadyRequest(
        name="fashion_lstm")).ready, "model ready while draining")
    check(oip.call("ServerLive", pb.ServerLiveRequest()).live,
          "not live while draining")
    print("draining: after SIGTERM ServerReady and ModelReady say false "
          "while calls are still answered")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    processes = Processes()
    with tempfile.TemporaryDirectory() as work:
        try:
            generate_stubs(os.path.join(args.source, "proto"),
                           os.path.join(work))
            repo = repository_with_golden(args.source, work)
            tokens = [secrets.token_urlsafe(32), secrets.token_urlsafe(32)]
            tokens_file = os.path.join(work, "tokens")
            with open(os.open(tokens_file, os.O_WRONLY | os.O_CREAT, 0o600),
                      "w") as f:
                f.write("\n".join(tokens) + "\n")
            common = ["--compute-threads=1", "--shutdown-grace=2s",
                      "--drain-delay=0s"]
            a = start_rnnserve(processes, args.rnnserve, repo, work, common + [
                f"--auth-tokens-file={tokens_file}"], metrics=False)
            channel = connected_channel(a.address)
            oip, other = Oip(channel, tokens[0]), Oip(channel, tokens[1])
            check_auth_and_metadata(channel, oip)
            check_fashion(oip, args.source)
            check_lengths(oip, args.source)
            check_sequences(oip, other, args.source)
            check_errors(oip)
            redis = start_redis(processes, work)
            replicas = [start_rnnserve(processes, args.rnnserve, repo, work,
                                       common + [f"--session-store={redis}"])
                        for _ in range(2)]
            stubs = [Oip(connected_channel(r.address)) for r in replicas]
            x, want = sine(args.source)
            got = stream(stubs, x, "across-replicas")
            check(worst(got, want) <= TOLERANCE,
                  f"alternating replicas: off by {worst(got, want)}")
            # ModelInfer is counted as its own method: three chunks each
            # (sequence_start and sequence_end included).
            for r in replicas:
                _, text = http_get(f"http://127.0.0.1:{r.metrics_port}/metrics")
                line = ('rnnserve_requests_total{code="OK",'
                        'method="ModelInfer",model="sine_rnn",'
                        'version="1"} 3')
                check(line in text, f"metrics of a replica lack {line!r}")
            print("redis: the sine stream's chunks alternating between two "
                  "replicas by sequence_id equal PyTorch's, each replica "
                  "counting its chunks under method ModelInfer")
            check_draining(processes, args, repo, work)
        finally:
            processes.stop_all()
    print("PASS")


if __name__ == "__main__":
    main()
