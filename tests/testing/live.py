"""Helpers for tests that run the real rnnserve binary and talk to it.

Everything runs on 127.0.0.1; every child is stopped at the end, on failure
too, and every wait is bounded.
"""
import gzip
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request

START_TIMEOUT = 90  # Model loading and warm-up on a slow machine.
# Debian's dataset-fashion-mnist: the 10,000 test images.
FASHION_TEST_IMAGES = (
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


# A call on a fresh channel fails at once with UNAVAILABLE when the first
# connection attempt failed, and Debian's gRPC 1.51 can fail one that is
# under way (it reads connect()'s errno after calls that may overwrite it;
# seen as "connect: No such file or directory"). The helpers below wait for
# the connection, riding out gRPC's retry, before the first call.
CONNECT_TIMEOUT = 10


def connected_channel(address, credentials=None):
    """A grpc channel to `address` (TLS when `credentials` are given),
    connected; fails the test if it does not connect in time."""
    import grpc
    channel = (grpc.secure_channel(address, credentials) if credentials
               else grpc.insecure_channel(address))
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT)
    except grpc.FutureTimeoutError:
        fail(f"cannot connect to {address} within {CONNECT_TIMEOUT} s")
    return channel


async def connected_aio_channel(address):
    """The same for grpc.aio, to be awaited."""
    import asyncio
    import grpc
    channel = grpc.aio.insecure_channel(address)
    try:
        await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"cannot connect to {address} within {CONNECT_TIMEOUT} s")
    return channel


def generate_stubs(proto_dir, out_dir):
    """Python modules for proto/ in out_dir, made now with Debian's protoc
    and grpc_python_plugin, and put on sys.path. health.proto is compiled
    from its own folder so that its modules are top-level health_pb2*: a
    "grpc" package of ours would shadow grpcio's."""
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None:
        fail("grpc_python_plugin not found (Debian package "
             "protobuf-compiler-grpc)")
    jobs = [(proto_dir, "rnnserve/v1/inference.proto"),
            (proto_dir, "inference/grpc_predict_v2.proto"),
            (os.path.join(proto_dir, "grpc/health/v1"), "health.proto")]
    for include, proto in jobs:
        subprocess.run(["protoc", f"-I{include}", f"--python_out={out_dir}",
                        f"--grpc_python_out={out_dir}",
                        f"--plugin=protoc-gen-grpc_python={plugin}", proto],
                       check=True, timeout=60)
    sys.path.insert(0, out_dir)


class Processes:
    """Children to stop, last started first."""

    def __init__(self):
        self.children = []

    def start(self, name, command, log_path):
        log = open(log_path, "w")
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        self.children.append((name, child, log_path))
        return child

    def check_alive(self):
        for name, child, log_path in self.children:
            if child.poll() is not None:
                fail(f"{name} exited with {child.returncode}:\n"
                     + open(log_path).read()[-4000:])

    def stop_all(self):
        for _, child, _ in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for _, child, _ in reversed(self.children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_until(what, predicate, timeout, processes):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if predicate():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    fail(f"timed out after {timeout}s waiting for {what}")


class Server:
    """A started rnnserve: its process, log and bound ports."""

    def __init__(self, process, log_path, grpc_port, metrics_port):
        self.process = process
        self.log_path = log_path
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self.address = f"127.0.0.1:{grpc_port}"

    def log(self):
        with open(self.log_path) as f:
            return f.read()


def start_rnnserve(processes, binary, models, work, flags=(), metrics=True):
    """Starts rnnserve on 127.0.0.1 with ports it picks itself, and waits
    for its start-up line, which names them."""
    log_path = os.path.join(work, f"rnnserve{len(processes.children)}.log")
    command = [binary, f"--model-repository={models}",
               "--grpc-address=127.0.0.1:0",
               "--metrics-address=" + ("127.0.0.1:0" if metrics else ""),
               "--warmup-steps=10,28", *flags]
    process = processes.start("rnnserve", command, log_path)
    found = {}

    def started():
        with open(log_path) as f:
            text = f.read()
        m = re.search(r"gRPC on port (\d+)", text)
        if m is None:
            return False
        found["grpc"] = int(m.group(1))
        mm = re.search(r"metrics on port (\d+)", text)
        found["metrics"] = int(mm.group(1)) if mm else None
        return True

    wait_until("rnnserve to start", started, START_TIMEOUT, processes)
    return Server(process, log_path, found["grpc"], found["metrics"])


def read_fashion_images(count):
    """The first `count` Fashion-MNIST test images, as a float32 NumPy array
    [count, 28, 28] scaled to [0, 1], as the bundled model was trained."""
    import numpy as np
    with gzip.open(FASHION_TEST_IMAGES, "rb") as f:
        magic, _, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 0x803 or rows != 28 or cols != 28:
            fail(f"{FASHION_TEST_IMAGES}: not an idx file of 28x28 images")
        data = np.frombuffer(f.read(count * 784), dtype=np.uint8)
    return data.reshape(count, 28, 28).astype(np.float32) / 255.0


def golden(source, name):
    """The tensors of tests/goldens/`name` (PyTorch's numbers)."""
    sys.path.insert(0, os.path.join(source, "tools"))
    import rnnserve_format
    tensors, _ = rnnserve_format.read_safetensors(
        os.path.join(source, "tests", "goldens", name))
    return tensors


def start_redis(processes, work):
    """A redis-server without persistence on a free loopback port, its
    folder under `work`; returns its redis:// address once it listens."""
    port = free_port()
    folder = os.path.join(work, "redis")
    os.makedirs(folder)
    processes.start("redis-server", [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir",
        folder, "--save", "", "--appendonly", "no", "--daemonize", "no",
        "--protected-mode", "no"], os.path.join(work, "redis.log"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"redis://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    fail("redis-server did not listen within 10 s")


def make_certificates(source, work):
    """A throwaway CA, server and client certificates in work/certs
    (tests/testing/make_test_certs.sh); returns the folder."""
    certs = os.path.join(work, "certs")
    subprocess.run(["sh", os.path.join(source, "tests", "testing",
                                       "make_test_certs.sh"), certs],
                   check=True, timeout=60)
    return certs


def write_private(path, text):
    """Writes `text` to a new file only its owner may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def repository_with_golden(source, work):
    """The bundled models and the golden case lstm_cls_1l, linked into one
    model repository under `work`."""
    repo = os.path.join(work, "models")
    os.makedirs(repo)
    for name in ("fashion_lstm", "sine_rnn"):
        os.symlink(os.path.join(source, "models", name),
                   os.path.join(repo, name))
    os.symlink(os.path.join(source, "tests", "goldens", "lstm_cls_1l"),
               os.path.join(repo, "lstm_cls_1l"))
    return repo
