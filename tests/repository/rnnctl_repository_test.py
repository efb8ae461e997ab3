"""rnnctl's repository commands and SIGHUP against the real rnnserve binary.

A repository in a temporary folder holds the seed regressor sine_rnn as
version 1 of "reg". The test checks, with the binaries as a user runs them:
- without --admin-tokens-file the server offers no Repository service, and
  rnnctl says so;
- a wrong admin token is refused, and rnnctl says so;
- a version 2 copied in is served after `kill -HUP` (no poll), and version
  1, holding a session, drains: `rnnctl models` and `rnnctl repository
  index` show it; it is unloaded once the session ends;
- a corrupt version 3 makes `rnnctl repository load` fail naming it, while
  version 2 serves on;
- `rnnctl repository unload` takes the model out of service, and `load`
  brings it back.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
from live import (Processes, fail, generate_stubs, start_rnnserve,  # noqa: E402
                  wait_until, write_private)

ADMIN_TOKEN = "admin-token-for-the-rnnctl-test-0123"


def copy_version(source, folder, version):
    """Copies model folder `source` to `folder` with config version
    `version`."""
    os.makedirs(folder)
    with open(os.path.join(source, "config.json")) as f:
        parsed = json.load(f)
    parsed["version"] = version
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(parsed, f)
    shutil.copy(os.path.join(source, parsed.get("weights",
                                                 "model.safetensors")),
                folder)


class Rnnctl:
    def __init__(self, binary, address, work):
        self.binary = binary
        self.address = address
        self.token_file = os.path.join(work, "admin.token")
        self.wrong_file = os.path.join(work, "wrong.token")
        write_private(self.token_file, ADMIN_TOKEN + "\n")
        write_private(self.wrong_file, "not-the-admin-token-0123456789\n")

    def run(self, *args, token=None):
        command = [self.binary, *args, f"--server={self.address}"]
        if token is not None:
            command.append(f"--admin-token-file={token}")
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=60)
        return done.returncode, done.stdout + done.stderr

    def repository(self, *args, token="right"):
        return self.run("repository", *args,
                        token=self.token_file if token == "right"
                        else self.wrong_file)


def expect(condition, what, output=""):
    if not condition:
        fail(f"{what}\n--- output ---\n{output}")


def row_of(index_text, model, version):
    """The line of `model` `version` in rnnctl's repository table."""
    for line in index_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == model and fields[1] == version:
            return line
    return ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--rnnctl", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnctl_repository_")
    processes = Processes()
    try:
        run(args, work, processes)
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print("rnnctl repository test passed")


def run(args, work, processes):
    repo = os.path.join(work, "models")
    sine = os.path.join(args.source, "models", "sine_rnn")
    copy_version(sine, os.path.join(repo, "reg", "1"), "1")

    # Without admin tokens: no Repository service.
    plain = start_rnnserve(processes, args.rnnserve, repo, work)
    ctl = Rnnctl(args.rnnctl, plain.address, work)
    code, out = ctl.repository("index")
    expect(code != 0 and "no admin tokens" in out,
           "a server without --admin-tokens-file should be reported as such",
           out)
    processes.stop_all()
    processes.children.clear()

    tokens = os.path.join(work, "admin.tokens")
    write_private(tokens, ADMIN_TOKEN + "\n")
    server = start_rnnserve(processes, args.rnnserve, repo, work,
                            flags=[f"--admin-tokens-file={tokens}"])
    ctl = Rnnctl(args.rnnctl, server.address, work)
    code, out = ctl.repository("index", token="wrong")
    expect(code != 0 and "refused" in out, "a wrong admin token", out)

    # A session on version 1, left open.
    pb, pb_grpc = stubs(args.source, work)
    session = open_session(pb, pb_grpc, server.address)

    # Version 2, then SIGHUP.
    copy_version(sine, os.path.join(repo, "reg", ".2"), "2")
    os.rename(os.path.join(repo, "reg", ".2"), os.path.join(repo, "reg", "2"))
    server.process.send_signal(signal.SIGHUP)

    def index():
        return ctl.repository("index")[1]

    wait_until("version 2 ready after SIGHUP",
               lambda: "ready" in row_of(index(), "reg", "2"), 30, processes)
    expect("draining" in row_of(index(), "reg", "1"),
           "version 1 should drain for its session", index())
    code, models = ctl.run("models")
    expect(code == 0 and "draining" in models,
           "rnnctl models should show the draining version", models)

    end_session(pb, pb_grpc, server.address, session)
    wait_until("version 1 unloaded once its session ended",
               lambda: "unloaded" in row_of(index(), "reg", "1"), 30,
               processes)

    # A corrupt version 3: load fails naming it; version 2 serves on.
    os.makedirs(os.path.join(repo, "reg", "3"))
    with open(os.path.join(repo, "reg", "3", "config.json"), "w") as f:
        f.write("{ not json")
    code, out = ctl.repository("load", "reg")
    expect(code != 0 and "version" in out and "3" in out,
           "a failed load should name the version", out)
    expect("ready" in row_of(index(), "reg", "2"),
           "version 2 should keep serving", index())
    shutil.rmtree(os.path.join(repo, "reg", "3"))

    # Unload, then load.
    code, out = ctl.repository("unload", "reg")
    expect(code == 0 and "unloaded" in out, "unload", out)
    code, out = ctl.repository("load", "reg")
    expect(code == 0 and "ready" in row_of(out, "reg", "2"), "load again",
           out)
    processes.check_alive()


def stubs(source, work):
    out = os.path.join(work, "stubs")
    os.makedirs(out)
    generate_stubs(os.path.join(source, "proto"), out)
    from rnnserve.v1 import inference_pb2, inference_pb2_grpc
    return inference_pb2, inference_pb2_grpc


def open_session(pb, pb_grpc, address):
    import grpc
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.InferenceStub(channel)
        response = stub.RegressChunk(
            pb.RegressRequest(model="reg", steps=3, values=[0.1, 0.2, 0.3]),
            timeout=30)
        if response.model_version != "1":
            fail(f"the session started on {response.model_version!r}")
        return response.session_token


def end_session(pb, pb_grpc, address, token):
    import grpc
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.InferenceStub(channel)
        stub.RegressChunk(pb.RegressRequest(model="reg", session_token=token,
                                            end_session=True), timeout=30)


if __name__ == "__main__":
    main()
