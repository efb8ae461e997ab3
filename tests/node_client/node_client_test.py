#!/usr/bin/python3
"""The Node.js example client (client/node/example.js) against a real rnnserve.

  node_client_test.py --rnnserve BIN --source DIR --cache DIR

Installs the pinned packages of client/node/package-lock.json with `npm ci`
into --cache (under the build tree; reinstalled only when the lock file
changes), then runs the repository's example.js with NODE_PATH pointing there:
- server A (mutual TLS, a bearer token, the bundled models): in --check mode
  with inputs from a JSON file (the first Fashion-MNIST test images, the sine
  golden's stream): the models are listed; the classification logits equal
  PyTorch's golden within 5e-5 and every argmax its prediction; the sine
  outputs over a Regress stream and over RegressChunk equal PyTorch's golden
  within 1e-5; a chunk resent from where it was sent is replayed (so
  expected_first_step reaches the server) and one sent from position 0 is
  refused with FAILED_PRECONDITION naming the real position 20 (so a zero
  expected_first_step keeps its presence). Without the token it exits
  non-zero with UNAUTHENTICATED.
- server B (plaintext, no authentication): the default text mode, with
  generated inputs and the proto found relative to the repository.
Expected numbers come from the PyTorch goldens in tests/goldens.
"""
import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from live import (FASHION_TEST_IMAGES, Processes, fail, golden,  # noqa: E402
                  make_certificates, read_fashion_images, start_rnnserve,
                  write_private)

NUM_IMAGES = 16
TOP_K = 3
CHUNK = 10
TOLERANCE = 1e-5  # See tests/engine/engine_golden_test.cc.
LOGIT_TOLERANCE = 5e-5  # Fashion logits reach ~20: see fashion_test.cc.
RUN_TIMEOUT = 120


def check(condition, message):
    if not condition:
        fail(message)


def tool(name):
    path = shutil.which(name)
    if path is None:
        fail(f"'{name}' not found: install Debian's nodejs and npm packages "
             f"(apt-get install nodejs npm, or tools/setup.sh)")
    return path


def npm_install(source, cache):
    """`npm ci` of client/node's lock file into cache, unless the install
    there was made from the same package.json and package-lock.json."""
    node_dir = os.path.join(source, "client", "node")
    files = ("package.json", "package-lock.json")
    digest = hashlib.sha256()
    for name in files:
        with open(os.path.join(node_dir, name), "rb") as f:
            digest.update(f.read())
    stamp = os.path.join(cache, "installed.sha256")
    modules = os.path.join(cache, "node_modules")
    if (os.path.isdir(modules) and os.path.exists(stamp) and
            open(stamp).read() == digest.hexdigest()):
        print(f"install: cached npm install in {cache}")
        return modules
    os.makedirs(cache, exist_ok=True)
    for name in files:
        shutil.copyfile(os.path.join(node_dir, name), os.path.join(cache, name))
    if os.path.exists(stamp):
        os.remove(stamp)
    result = subprocess.run(
        [tool("npm"), "ci", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=cache, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        fail(f"npm ci in {cache} failed (it needs the npm registry or a "
             f"filled npm cache):\n{result.stdout}{result.stderr}")
    with open(stamp, "w") as f:
        f.write(digest.hexdigest())
    print(f"install: npm ci into {cache}")
    return modules


def write_inputs(source, work):
    """The example's --inputs file: the images as rows of pixels (float32
    values, written exactly), the sine golden's stream."""
    if not os.path.exists(FASHION_TEST_IMAGES):
        fail(f"{FASHION_TEST_IMAGES} missing: install Debian's dataset-fashion-mnist")
    sine = golden(source, "sine_rnn_stream.safetensors")
    inputs = {
        "classify": {"model": "fashion_lstm", "top_k": TOP_K,
                     "sequences": read_fashion_images(NUM_IMAGES).tolist()},
        "stream": {"model": "sine_rnn", "chunk": CHUNK,
                   "values": sine["inputs"].reshape(-1).tolist()},
    }
    path = os.path.join(work, "inputs.json")
    with open(path, "w") as f:
        json.dump(inputs, f)
    return path


def run_example(source, modules, args, env_extra=None):
    env = dict(os.environ, NODE_PATH=modules)
    env.pop("RNNSERVE_PROTO_DIR", None)
    env.pop("RNNSERVE_TOKEN", None)
    env.update(env_extra or {})
    return subprocess.run(
        [tool("node"), os.path.join(source, "client", "node", "example.js"),
         *args], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def worst(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) -
                               np.asarray(b, dtype=np.float64))))


def check_models(out):
    models = {m["name"]: m for m in out["models"]}
    check(set(models) == {"fashion_lstm", "sine_rnn", "word_language"},
          f"models: {sorted(models)}")
    f, s = models["fashion_lstm"], models["sine_rnn"]
    check((f["task"], f["input_size"], f["output_size"], len(f["labels"])) ==
          ("TASK_CLASSIFICATION", 28, 10, 10), f"fashion_lstm: {f}")
    check((s["task"], s["cell"], s["input_size"], s["output_size"]) ==
          ("TASK_REGRESSION", "CELL_RNN_TANH", 1, 1), f"sine_rnn: {s}")
    print("models: fashion_lstm and sine_rnn with their tasks and sizes")


def check_classify(out, source):
    g = golden(source, "fashion_lstm_test1000.safetensors")
    results = out["classify"]["results"]
    check(len(results) == NUM_IMAGES,
          f"{len(results)} results for {NUM_IMAGES} images")
    for i, r in enumerate(results):
        off = worst(r["logits"], g["logits"][i])
        check(off <= LOGIT_TOLERANCE, f"image {i}: logits off by {off}")
        want = int(g["predictions"][i])
        check(int(np.argmax(r["logits"])) == want and
              r["top"][0]["index"] == want,
              f"image {i}: class {r['top'][0]['index']}, PyTorch {want}")
        p = [t["probability"] for t in r["top"]]
        check(len(p) == TOP_K and p == sorted(p, reverse=True) and
              r["top"][0]["label"] != "", f"image {i}: top {r['top']}")
    print(f"classify: {NUM_IMAGES} Fashion-MNIST images equal PyTorch's "
          f"logits and classes")


def check_stream(name, record, want):
    got = record["outputs"]
    check(len(got) == len(want), f"{name}: {len(got)} outputs, not "
          f"{len(want)}")
    check(worst(got, want) <= TOLERANCE,
          f"{name}: off PyTorch's by {worst(got, want)}")
    chunks = record["chunks"]
    check([c["first_step"] for c in chunks] ==
          list(range(0, len(want), CHUNK)),
          f"{name}: first steps {[c['first_step'] for c in chunks]}")
    check(chunks[0]["has_token"] and chunks[-1]["session_ended"] and
          not any(c["replayed"] for c in chunks),
          f"{name}: chunks {chunks}")
    print(f"{name}: {len(chunks)} chunks of the sine stream equal PyTorch's")


def check_probes(probes, want):
    resent = probes["resent"]
    check(resent["replayed"] and resent["first_step"] == CHUNK and
          worst(resent["outputs"], want[CHUNK:2 * CHUNK]) <= TOLERANCE,
          f"a chunk resent from its position: {resent}")
    wrong = probes["wrong_position"]
    check(wrong["code"] == "FAILED_PRECONDITION" and
          wrong["position"] == str(2 * CHUNK) and
          "expected_first_step" in wrong["details"],
          f"a chunk sent from position 0 at 20: {wrong}")
    print("probes: resent chunk replayed; expected_first_step 0 refused at 20")


def check_server_a(source, modules, server, certs, token, inputs):
    tls = [f"--tls-ca={certs}/ca.pem", f"--tls-cert={certs}/client.pem",
           f"--tls-key={certs}/client.key"]
    env = {"RNNSERVE_PROTO_DIR": os.path.join(source, "proto")}
    address = f"localhost:{server.grpc_port}"
    result = run_example(source, modules, [
        f"--address={address}", "--token", token, *tls, "--inputs", inputs,
        "--check"], env)
    check(result.returncode == 0,
          f"example --check exited {result.returncode}:\n{result.stderr}")
    out = json.loads(result.stdout)
    want = golden(source, "sine_rnn_stream.safetensors")["outputs"].reshape(-1)
    check_models(out)
    check_classify(out, source)
    check_stream("regress_stream", out["regress_stream"], want)
    check_stream("regress_chunk", out["regress_chunk"], want)
    check_probes(out["probes"], want)

    result = run_example(source, modules, [f"--address={address}", *tls,
                                           "--inputs", inputs], env)
    check(result.returncode != 0 and
          result.stderr.startswith("error: UNAUTHENTICATED"),
          f"without the token: exit {result.returncode}, {result.stderr}")
    print("errors: without the token, exit status 1 and UNAUTHENTICATED")


def check_server_b(source, modules, server):
    result = run_example(source, modules, ["--address", server.address])
    check(result.returncode == 0,
          f"example (text mode) exited {result.returncode}:\n{result.stderr}")
    for line in ("Models:", "  sine_rnn 1: TASK_REGRESSION",
                 "Classify with fashion_lstm", "  sequence 2: ",
                 "Regress stream:", "RegressChunk:", "  steps 90..99: "):
        check(line in result.stdout, f"text mode lacks '{line}':\n"
              f"{result.stdout}")
    print("text mode: generated inputs, proto found in the repository")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--cache", required=True)
    args = parser.parse_args()
    source = os.path.abspath(args.source)
    tool("node")
    modules = npm_install(source, os.path.abspath(args.cache))
    work = tempfile.mkdtemp(prefix="rnnserve_nodeclient_")
    processes = Processes()
    try:
        inputs = write_inputs(source, work)
        certs = make_certificates(source, work)
        token = secrets.token_urlsafe(32)
        tokens_file = os.path.join(work, "tokens")
        write_private(tokens_file, f"{token}\n")
        common = ["--compute-threads=1", "--shutdown-grace=2s",
                  "--drain-delay=0s"]
        models = os.path.join(source, "models")
        a = start_rnnserve(processes, args.rnnserve, models, work, common + [
            f"--tls-cert={certs}/server.pem", f"--tls-key={certs}/server.key",
            f"--tls-client-ca={certs}/ca.pem",
            f"--auth-tokens-file={tokens_file}"], metrics=False)
        check_server_a(source, modules, a, certs, token, inputs)
        b = start_rnnserve(processes, args.rnnserve, models, work, common,
                           metrics=False)
        check_server_b(source, modules, b)
        processes.check_alive()
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
