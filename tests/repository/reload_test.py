#!/usr/bin/python3
"""Model versions replaced while the server serves, under load.

  reload_test.py --rnnserve BIN --source DIR

Two rnnserve servers, each on a model repository of its own made here in
PyTorch: a classification LSTM (clf_lstm: 8 inputs, hidden 32, 2 layers, 4
classes) and a regression GRU (reg_gru: 1 input, hidden 16, 1 output), each
version random weights of its own seed. A version is written into a folder
whose name starts with '.' (which the server skips) and renamed into place.
- "poll": --model-control-mode=poll, --repository-poll-interval=300ms; each
  model is replaced by writing its next version and nothing else.
- "manual": --model-control-mode=none; a new version written there stays
  unserved (checked) until a SIGHUP, or a Repository.LoadModel call with an
  admin token, brings it in.
Each model is replaced 10 times: 4 by polling, 3 by SIGHUP and 3 by
LoadModel. All along, 64 Classify callers (32 per server) and 200
streaming sessions (100 per server; half RegressChunk calls carrying the
token, half Regress streams), each several chunks spread over time, none
naming a version, run without a pause. Before each replacement the test
opens a session of its own on the version about to be replaced.

Checked:
- no call fails;
- every Classify answer equals PyTorch's logits (1e-4, abs and rel) of the
  version the answer names, and a call started after the test saw a new
  version READY is answered by it or a newer one;
- every session's outputs, over all its chunks, equal one PyTorch pass over
  its whole input with the version its first answer named; every later
  answer names the same version, first_step runs on without a gap;
- a replaced version that still has sessions is DRAINING, with sessions > 0,
  in GetModel and in RepositoryIndex, and answers its own session; once
  sessions end, every replaced version is UNLOADED;
- while the poll server watches, a version whose weights are half written
  is FAILED in RepositoryIndex, rnnserve_model_loads_total{outcome="failed"}
  grows, health stays SERVING and every answer meanwhile comes from the old
  version; once the file is completed, the new version serves.
Prints the calls, sessions and replacements made and how long each version
took from its trigger to READY.
"""
import argparse
import asyncio
import collections
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from live import (Processes, connected_aio_channel, connected_channel,  # noqa: E402
                  fail, generate_stubs, http_get, start_rnnserve,
                  write_private)
import rnnserve_format as fmt  # noqa: E402

CLF = "clf_lstm"
REG = "reg_gru"
SPECS = {
    CLF: dict(cell="lstm", input_size=8, hidden_size=32, num_layers=2,
              output_size=4, task="classification"),
    REG: dict(cell="gru", input_size=1, hidden_size=16, num_layers=1,
              output_size=1, task="regression"),
}
HEALTH_SERVICE = "rnnserve.v1.Inference"
POLL_INTERVAL_S = 0.3
CALLERS_PER_SERVER = 32    # Classify callers: 64 in all.
SESSIONS_PER_SERVER = 100  # Concurrent sessions: 200 in all.
POLL_REPLACEMENTS = 4      # Per model, then 3 by SIGHUP and 3 by LoadModel:
MANUAL_WAYS = ("sighup", "api", "sighup", "api", "sighup", "api")  # 10.
QUIET_S = 1.0   # Mode none: a written version must stay unserved this long.
DWELL_S = 1.5   # Between replacements, so that sessions span them.
CALL_TIMEOUT = 30
WAIT_TIMEOUT = 30
TOLERANCE = 1e-4


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


# ---------------------------------------------------------------------------
# The repository and its PyTorch twins
# ---------------------------------------------------------------------------

class Repository:
    """A model repository folder and the PyTorch module of every version
    written into it, to compute what the server must answer."""

    def __init__(self, root, seed_base):
        self.root = root
        self.seed_base = seed_base
        self.modules = {}  # (model, version) -> RecurrentModel, eval mode.
        self.newest = {}   # model -> newest version written.
        for model in SPECS:
            os.makedirs(os.path.join(root, model))

    def _make(self, model, version):
        import torch
        seed = self.seed_base + 100 * list(SPECS).index(model) + version
        torch.manual_seed(seed)
        config = dict(SPECS[model], format_version=1, version=str(version),
                      description=f"reload_test seed {seed}")
        module = fmt.build_module(config).eval()
        self.modules[(model, version)] = module
        return config, module

    def write(self, model, version, half_weights=False):
        """Writes version `version` of `model` into a '.' folder, renamed
        into place. With half_weights, its weights file holds only its first
        half; returns the missing bytes then (see complete())."""
        config, module = self._make(model, version)
        staging = os.path.join(self.root, model, f".staging-{version}")
        fmt.write_model_folder(staging, config, module)
        rest = None
        if half_weights:
            path = os.path.join(staging, fmt.DEFAULT_WEIGHTS)
            with open(path, "rb") as f:
                blob = f.read()
            with open(path, "wb") as f:
                f.write(blob[:len(blob) // 2])
            rest = blob[len(blob) // 2:]
        os.rename(staging, self.version_dir(model, version))
        self.newest[model] = version
        return rest

    def complete(self, model, version, rest):
        with open(os.path.join(self.version_dir(model, version),
                               fmt.DEFAULT_WEIGHTS), "ab") as f:
            f.write(rest)

    def version_dir(self, model, version):
        return os.path.join(self.root, model, str(version))


# ---------------------------------------------------------------------------
# The load: Classify callers and streaming sessions (asyncio, one thread)
# ---------------------------------------------------------------------------

ClassifyRecord = collections.namedtuple(
    "ClassifyRecord", "start end version inputs logits")


class SessionRecord:
    def __init__(self, kind, start):
        self.kind = kind
        self.start = start
        self.inputs = []     # One array per chunk, [steps].
        self.answers = []    # (model_version, first_step, outputs, ended).
        self.token = ""


class Target:
    """One server under test, with what was sent to it and answered."""

    def __init__(self, name, repo, server, pb, pb_grpc, admin_token):
        self.name = name
        self.repo = repo
        self.server = server
        self.pb = pb
        self.metadata = (("authorization", f"Bearer {admin_token}"),)
        channel = connected_channel(server.address)
        self.inference = pb_grpc.InferenceStub(channel)
        self.repository = pb_grpc.RepositoryStub(channel)
        self.channel = channel
        self.classified = []   # ClassifyRecord, appended by the load.
        self.sessions = []     # SessionRecord, complete ones.
        self.errors = []       # Failed calls, as text.
        self.ready_at = []     # (model, version, monotonic time seen READY).


def chunk_plan(rng):
    return [rng.uniform(-1.0, 1.0, size=rng.integers(3, 9)).astype("float32")
            for _ in range(rng.integers(3, 7))]


async def classify_caller(target, stub, seed, stop):
    import grpc
    import numpy as np
    rng = np.random.default_rng(seed)
    pb = target.pb
    while not stop.is_set():
        inputs = [rng.uniform(-1.0, 1.0, size=(int(steps), 8))
                  .astype("float32")
                  for steps in rng.choice([2, 5, 9], size=rng.integers(1, 4))]
        request = pb.ClassifyRequest(model=CLF, sequences=[
            pb.Sequence(steps=x.shape[0], values=x.ravel().tolist())
            for x in inputs])
        start = time.monotonic()
        try:
            response = await stub.Classify(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as e:
            target.errors.append(f"Classify: {e.code().name} {e.details()}")
            await asyncio.sleep(0.1)
            continue
        target.classified.append(ClassifyRecord(
            start, time.monotonic(), response.model_version, inputs,
            [list(r.logits) for r in response.results]))
        await asyncio.sleep(rng.uniform(0.01, 0.06))


async def chunk_session(target, stub, rng):
    """One session of RegressChunk calls, its token carried by the client."""
    pb = target.pb
    record = SessionRecord("RegressChunk", time.monotonic())
    plan = chunk_plan(rng)
    for i, x in enumerate(plan):
        last = i == len(plan) - 1
        response = await stub.RegressChunk(pb.RegressRequest(
            model=REG, session_token=record.token, steps=len(x),
            values=x.tolist(), end_session=last), timeout=CALL_TIMEOUT)
        record.token = response.session_token
        record.inputs.append(x)
        record.answers.append((response.model_version, response.first_step,
                               list(response.outputs), response.session_ended))
        if not last:
            await asyncio.sleep(rng.uniform(0.1, 0.6))
    return record


async def stream_session(target, stub, rng):
    """One session on one Regress stream, a chunk at a time."""
    import grpc
    pb = target.pb
    record = SessionRecord("Regress", time.monotonic())
    plan = chunk_plan(rng)
    call = stub.Regress(timeout=CALL_TIMEOUT)
    for i, x in enumerate(plan):
        last = i == len(plan) - 1
        await call.write(pb.RegressRequest(
            model=REG if i == 0 else "", steps=len(x), values=x.tolist(),
            end_session=last))
        response = await call.read()
        check(response is not grpc.aio.EOF and response is not None,
              "a Regress stream ended early")
        if i == 0:
            record.token = response.session_token
        record.inputs.append(x)
        record.answers.append((response.model_version, response.first_step,
                               list(response.outputs), response.session_ended))
        if not last:
            await asyncio.sleep(rng.uniform(0.1, 0.6))
    await call.done_writing()
    code = await call.code()
    check(code.name == "OK", f"a Regress stream ended with {code.name}")
    return record


async def session_worker(target, stub, seed, stop):
    import grpc
    import numpy as np
    rng = np.random.default_rng(seed)
    run = stream_session if seed % 2 else chunk_session
    while not stop.is_set():
        try:
            target.sessions.append(await run(target, stub, rng))
        except grpc.aio.AioRpcError as e:
            target.errors.append(f"{run.__name__}: {e.code().name} "
                                 f"{e.details()}")
            await asyncio.sleep(0.1)
        except TestFailure as e:
            target.errors.append(str(e))


class Load:
    """Runs the callers and sessions of every target in a thread of its own
    until stop() (which waits for open sessions to end)."""

    def __init__(self, targets, pb_grpc):
        self.targets = targets
        self.pb_grpc = pb_grpc
        self.stop_event = threading.Event()
        self.crash = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            asyncio.run(self._main())
        except BaseException as e:  # Reported by stop().
            self.crash = repr(e)

    async def _main(self):
        jobs = []
        for n, target in enumerate(self.targets):
            channel = await connected_aio_channel(target.server.address)
            stub = self.pb_grpc.InferenceStub(channel)
            for i in range(CALLERS_PER_SERVER):
                jobs.append(classify_caller(target, stub, 1000 * n + i,
                                            self.stop_event))
            for i in range(SESSIONS_PER_SERVER):
                jobs.append(session_worker(target, stub, 5000 + 1000 * n + i,
                                           self.stop_event))
        await asyncio.gather(*jobs)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=60)

    def check_stopped(self):
        check(not self.thread.is_alive(), "the load did not stop in 60 s")
        check(self.crash is None, f"the load crashed: {self.crash}")


# ---------------------------------------------------------------------------
# Watching the server
# ---------------------------------------------------------------------------

def state_name(pb, value):
    return pb.VersionState.Name(value)


def repository_index(target):
    """{model: {version: VersionStatus}} from RepositoryIndex."""
    response = target.repository.RepositoryIndex(
        target.pb.RepositoryIndexRequest(), metadata=target.metadata,
        timeout=CALL_TIMEOUT)
    return {m.name: {v.version: v for v in m.versions}
            for m in response.models}


def model_versions(target, model):
    """(newest ready version, {version: ModelInfo}) from GetModel."""
    info = target.inference.GetModel(target.pb.GetModelRequest(model=model),
                                     timeout=CALL_TIMEOUT)
    return info.version, {v.version: v for v in info.versions}


class Monitor:
    """Records every state each version is seen in, every 0.2 s, from
    RepositoryIndex and GetModel."""

    def __init__(self, targets):
        self.targets = targets
        self.seen = collections.defaultdict(set)   # (target, model, ver).
        self.draining = collections.defaultdict(int)  # Most sessions seen.
        self.errors = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_event.wait(0.2):
            for t in self.targets:
                try:
                    self.observe(t)
                except Exception as e:  # noqa: BLE001 - reported later.
                    self.errors.append(f"{t.name}: {e!r}")

    def observe(self, target):
        pb = target.pb
        for model, versions in repository_index(target).items():
            for version, status in versions.items():
                key = (target.name, model, version)
                self.seen[key].add(state_name(pb, status.state))
                if status.state == pb.VERSION_STATE_DRAINING:
                    self.draining[key] = max(self.draining[key],
                                             status.sessions)
        for model in SPECS:
            _, infos = model_versions(target, model)
            for version, info in infos.items():
                self.seen[(target.name, model, version)].add(
                    "GetModel:" + state_name(pb, info.state))

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)


def wait_for(what, predicate, processes, timeout=WAIT_TIMEOUT, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TestFailure(f"timed out after {timeout} s waiting for {what}")


def wait_ready(target, model, version, processes, failed_before=False):
    """Waits until `version` is READY and answers calls that name none;
    returns when the test saw it so. A FAILED load fails the test, unless
    failed_before (it stays FAILED until the server tries again)."""
    pb = target.pb

    def ready():
        status = repository_index(target).get(model, {}).get(str(version))
        if status is not None and status.state == pb.VERSION_STATE_FAILED \
                and not failed_before:
            raise TestFailure(f"{target.name}: {model} version {version} "
                              f"FAILED: {status.reason}")
        if status is None or status.state != pb.VERSION_STATE_READY:
            return False
        return model_versions(target, model)[0] == str(version)

    wait_for(f"{target.name} {model} version {version} READY", ready,
             processes)
    seen = time.monotonic()
    target.ready_at.append((model, version, seen))
    return seen


def health(target, health_pb2, health_grpc):
    stub = health_grpc.HealthStub(target.channel)
    response = stub.Check(
        health_pb2.HealthCheckRequest(service=HEALTH_SERVICE), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def failed_loads(target, model):
    """rnnserve_model_loads_total{outcome="failed"} of `model`."""
    _, text = http_get(
        f"http://127.0.0.1:{target.server.metrics_port}/metrics")
    total = 0.0
    for m in re.finditer(r'^rnnserve_model_loads_total\{([^}]*)\} (\S+)$',
                         text, re.M):
        if 'outcome="failed"' in m.group(1) and f'model="{model}"' in \
                m.group(1):
            total += float(m.group(2))
    return total


# ---------------------------------------------------------------------------
# Replacements
# ---------------------------------------------------------------------------

class PinnedSession:
    """A session the test opens on the serving version before replacing it:
    that version must then drain, not vanish, and keep answering it."""

    def __init__(self, target, rng):
        self.target = target
        self.rng = rng
        self.record = SessionRecord("pinned", time.monotonic())
        self.send(end=False)
        self.version = self.record.answers[0][0]

    def send(self, end):
        pb = self.target.pb
        x = self.rng.uniform(-1.0, 1.0, size=5).astype("float32")
        response = self.target.inference.RegressChunk(pb.RegressRequest(
            model=REG, session_token=self.record.token, steps=5,
            values=x.tolist(), end_session=end), timeout=CALL_TIMEOUT)
        self.record.token = response.session_token
        self.record.inputs.append(x)
        self.record.answers.append((response.model_version,
                                    response.first_step,
                                    list(response.outputs),
                                    response.session_ended))

    def end(self):
        self.send(end=True)
        self.target.sessions.append(self.record)


def check_draining(target, pinned):
    """The pinned session's version, just replaced, drains."""
    pb = target.pb
    version = pinned.version
    status = repository_index(target)[REG].get(version)
    check(status is not None and status.state == pb.VERSION_STATE_DRAINING
          and status.sessions > 0,
          f"{target.name}: replaced {REG} version {version} with a session "
          f"open is {status} in RepositoryIndex, not DRAINING with sessions")
    _, infos = model_versions(target, REG)
    info = infos.get(version)
    check(info is not None and info.state == pb.VERSION_STATE_DRAINING
          and info.sessions > 0,
          f"{target.name}: replaced {REG} version {version} with a session "
          f"open is not DRAINING with sessions in GetModel: {info}")
    return status.sessions


Replacement = collections.namedtuple(
    "Replacement", "server model old new way seconds draining_sessions")


def replace(target, way, processes, rng, log):
    """Writes the next version of both models and brings them in `way`:
    poll (nothing to do but wait), sighup or api (LoadModel)."""
    repo = target.repo
    pinned = PinnedSession(target, rng)
    olds = {m: repo.newest[m] for m in SPECS}
    check(pinned.version == str(olds[REG]),
          f"{target.name}: a new session went to {REG} version "
          f"{pinned.version}, not the newest, {olds[REG]}")
    for model in SPECS:
        repo.write(model, olds[model] + 1)
    triggered = time.monotonic()
    if way != "poll":
        time.sleep(QUIET_S)
        index = repository_index(target)
        for model in SPECS:
            newest, _ = model_versions(target, model)
            check(str(olds[model] + 1) not in index.get(model, {})
                  and newest == str(olds[model]),
                  f"{target.name} (mode none): {model} version "
                  f"{olds[model] + 1} was taken up before any SIGHUP or "
                  f"LoadModel ({QUIET_S} s after it was written)")
    seconds = {}
    if way == "sighup":
        triggered = time.monotonic()
        target.server.process.send_signal(signal.SIGHUP)
    for model in SPECS:
        new = olds[model] + 1
        if way == "api":
            triggered = time.monotonic()
            response = target.repository.LoadModel(
                target.pb.LoadModelRequest(model=model),
                metadata=target.metadata, timeout=CALL_TIMEOUT)
            states = {v.version: v.state for v in response.model.versions}
            check(states.get(str(new)) == target.pb.VERSION_STATE_READY,
                  f"{target.name}: LoadModel({model}) returned before "
                  f"version {new} was READY: {response.model}")
            for other in SPECS:
                check(other == model or other in seconds or
                      model_versions(target, other)[0] == str(olds[other]),
                      f"{target.name}: LoadModel({model}) brought in a new "
                      f"version of {other} too")
        seconds[model] = wait_ready(target, model, new, processes) - triggered
    draining = check_draining(target, pinned)
    pinned.end()
    check(pinned.record.answers[-1][0] == pinned.version,
          f"{target.name}: a session on draining version {pinned.version} "
          f"was answered by {pinned.record.answers[-1][0]}")
    for model in SPECS:
        log.append(Replacement(target.name, model, olds[model],
                               olds[model] + 1, way, seconds[model],
                               draining if model == REG else None))
    time.sleep(DWELL_S)


def truncated_version(target, processes, health_pb2, health_grpc, log):
    """A half-written version fails to load and leaves the old one serving;
    once completed it serves. Returns figures to print."""
    pb = target.pb
    repo = target.repo
    old = repo.newest[CLF]
    new = old + 1
    failed_before = failed_loads(target, CLF)
    start = time.monotonic()
    rest = repo.write(CLF, new, half_weights=True)

    def failed():
        status = repository_index(target).get(CLF, {}).get(str(new))
        return (status if status is not None
                and status.state == pb.VERSION_STATE_FAILED else None)

    status = wait_for(f"{CLF} version {new} (half written) FAILED", failed,
                      processes)
    check(re.search(rf"{CLF} version {new} .*fail", target.server.log()),
          f"the server's log does not say that {CLF} version {new} failed")
    check(failed_loads(target, CLF) > failed_before,
          "rnnserve_model_loads_total{outcome=\"failed\"} did not grow "
          f"after {CLF} version {new} failed")
    for _ in range(4):  # A few more intervals: still FAILED, still serving.
        check(health(target, health_pb2, health_grpc) == "SERVING",
              "health is not SERVING while a version is FAILED")
        check(model_versions(target, CLF)[0] == str(old),
              f"{CLF} version {old} stopped answering after {new} failed")
        time.sleep(POLL_INTERVAL_S)
    check(failed() is not None, f"{CLF} version {new} left FAILED while its "
          "weights stayed half written")
    completed = time.monotonic()
    repo.complete(CLF, new, rest)
    ready = wait_ready(target, CLF, new, processes, failed_before=True)
    log.append(Replacement(target.name, CLF, old, new, "poll after a failed "
                           "load", ready - completed, None))
    window = [r for r in target.classified if start <= r.start
              and r.end <= completed]
    wrong = [r.version for r in window if r.version != str(old)]
    check(window and not wrong,
          f"while {CLF} version {new} was half written, {len(window)} calls "
          f"answered, by versions {sorted(set(wrong))} other than {old}")
    return dict(reason=status.reason, calls=len(window),
                failed_for=completed - start, ready_after=ready - completed,
                failed_loads=failed_loads(target, CLF) - failed_before)


def check_unloaded(target, monitor, log, processes):
    """Once sessions ended, no version drains and every replaced one is
    UNLOADED (or no longer listed, after having been seen UNLOADED)."""
    pb = target.pb
    replaced = {(r.model, str(r.old)) for r in log if r.server == target.name}

    def settled():
        monitor.observe(target)
        index = repository_index(target)
        for model, version in replaced:
            status = index.get(model, {}).get(version)
            if status is not None and \
                    status.state != pb.VERSION_STATE_UNLOADED:
                return False
        return True

    wait_for(f"{target.name}: replaced versions UNLOADED", settled,
             processes, timeout=20, step=0.2)
    for model in SPECS:
        _, infos = model_versions(target, model)
        for version, info in infos.items():
            check(info.state != pb.VERSION_STATE_DRAINING,
                  f"{target.name}: {model} version {version} still DRAINING "
                  "in GetModel after every session ended")
    for model, version in replaced:
        check("VERSION_STATE_UNLOADED" in monitor.seen[
            (target.name, model, version)],
            f"{target.name}: {model} version {version} never seen UNLOADED")


# ---------------------------------------------------------------------------
# PyTorch's answers
# ---------------------------------------------------------------------------

def close(got, want):
    import numpy as np
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, float("inf")
    diff = np.abs(got - want)
    return bool(np.all(diff <= TOLERANCE + TOLERANCE * np.abs(want))), \
        float(diff.max(initial=0.0))


def verify_classify(target):
    """Every answer against PyTorch, batched by version and length."""
    import numpy as np
    import torch
    groups = collections.defaultdict(list)  # (version, steps) -> [(x, got)].
    for r in target.classified:
        check(len(r.logits) == len(r.inputs),
              f"{target.name}: a Classify answer has {len(r.logits)} results "
              f"for {len(r.inputs)} sequences")
        for x, got in zip(r.inputs, r.logits):
            groups[(r.version, x.shape[0])].append((x, got))
    worst = 0.0
    for (version, _), items in groups.items():
        module = target.repo.modules.get((CLF, int(version)))
        check(module is not None, f"{target.name}: a Classify answer names "
              f"version {version!r}, which the test never wrote")
        with torch.no_grad():
            want = module(torch.from_numpy(np.stack([x for x, _ in items])))
        ok, diff = close([g for _, g in items], want.numpy())
        worst = max(worst, diff)
        check(ok, f"{target.name}: Classify answers of {CLF} version "
              f"{version} differ from PyTorch by up to {diff}")
    return worst


def verify_sessions(target):
    import numpy as np
    import torch
    worst = 0.0
    for s in target.sessions:
        versions = {a[0] for a in s.answers}
        check(len(versions) == 1, f"{target.name}: a {s.kind} session was "
              f"answered by versions {sorted(versions)}")
        steps = [len(x) for x in s.inputs]
        firsts = [a[1] for a in s.answers]
        check(firsts == [sum(steps[:i]) for i in range(len(steps))],
              f"{target.name}: a {s.kind} session's first_step ran {firsts} "
              f"for chunks of {steps}")
        check(s.answers[-1][3] and s.token,
              f"{target.name}: a {s.kind} session did not end, or had no "
              "token")
        version = s.answers[0][0]
        module = target.repo.modules.get((REG, int(version)))
        check(module is not None, f"{target.name}: a session names version "
              f"{version!r}, which the test never wrote")
        x = torch.from_numpy(np.concatenate(s.inputs)).reshape(1, -1, 1)
        with torch.no_grad():
            want, _ = module(x)
        got = [v for a in s.answers for v in a[2]]
        ok, diff = close(got, want.reshape(-1).numpy())
        worst = max(worst, diff)
        check(ok, f"{target.name}: a {s.kind} session on {REG} version "
              f"{version} differs from PyTorch by up to {diff}")
    return worst


def verify_newest(target):
    """A call started after a version was seen READY is not answered by an
    older one (calls naming no version go to the newest READY)."""
    ready = collections.defaultdict(list)
    for model, version, seen in target.ready_at:
        ready[model].append((seen, version))
    starts = [(CLF, r.start, r.version) for r in target.classified]
    starts += [(REG, s.start, s.answers[0][0]) for s in target.sessions
               if s.kind != "pinned"]
    for model, start, version in starts:
        floor = max((v for seen, v in ready[model] if seen < start),
                    default=0)
        check(int(version) >= floor,
              f"{target.name}: a {model} call started after version {floor} "
              f"was READY was answered by version {version}")


# ---------------------------------------------------------------------------

def start_target(name, processes, args, work, pb, pb_grpc, flags, seed):
    repo = Repository(os.path.join(work, f"repo_{name}"), seed)
    for model in SPECS:
        repo.write(model, 1)
    token = secrets.token_hex(16)
    tokens = os.path.join(work, f"admin_tokens_{name}")
    write_private(tokens, token + "\n")
    server = start_rnnserve(
        processes, args.rnnserve, repo.root, work,
        ["--compute-threads=1", "--shutdown-grace=2s", "--drain-delay=0s",
         "--warmup-steps=2,9", f"--admin-tokens-file={tokens}", *flags])
    return Target(name, repo, server, pb, pb_grpc, token)


def report(targets, log, truncated, worst, started):
    calls = sum(len(t.classified) for t in targets)
    sequences = sum(len(r.inputs) for t in targets for r in t.classified)
    sessions = collections.Counter(s.kind for t in targets for s in t.sessions)
    chunks = sum(len(s.inputs) for t in targets for s in t.sessions)
    print(f"reload: {calls} Classify calls ({sequences} sequences), "
          f"{sum(sessions.values())} sessions {dict(sessions)} "
          f"({chunks} chunks), no call failed; worst difference from "
          f"PyTorch {worst:.2e}")
    for model in SPECS:
        ways = collections.Counter(r.way for r in log if r.model == model)
        print(f"reload: {model} replaced {sum(ways.values())} times "
              f"{dict(ways)}")
    for r in log:
        extra = (f", version {r.old} DRAINING with {r.draining_sessions} "
                 "session(s)" if r.draining_sessions is not None else "")
        print(f"reload:   {r.server} {r.model} {r.old} -> {r.new} by "
              f"{r.way}: READY after {r.seconds:.2f} s{extra}")
    print(f"reload: half-written {CLF} version FAILED ({truncated['reason']})"
          f" for {truncated['failed_for']:.1f} s, "
          f"{truncated['failed_loads']:g} failed load(s) counted, "
          f"{truncated['calls']} calls meanwhile all from the old version; "
          "completed, READY after "
          f"{truncated['ready_after']:.2f} s")
    for t in targets:
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
        times = sorted(float(v) * scale[unit] for v, unit in re.findall(
            r"loaded and warmed up in ([0-9.]+)(us|ms|s)\b", t.server.log()))
        if times:
            print(f"reload: {t.name} server's log: {len(times)} versions "
                  f"loaded and warmed up in {times[0]:.1f} to "
                  f"{times[-1]:.1f} ms (median {times[len(times) // 2]:.1f})")
    print(f"reload: took {time.monotonic() - started:.0f} s")


def run(args, work, processes):
    import numpy as np
    started = time.monotonic()
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs)
    generate_stubs(os.path.join(args.source, "proto"), stubs)
    from rnnserve.v1 import inference_pb2 as pb
    from rnnserve.v1 import inference_pb2_grpc as pb_grpc
    import health_pb2
    import health_pb2_grpc
    poll = start_target(
        "poll", processes, args, work, pb, pb_grpc,
        ["--model-control-mode=poll",
         f"--repository-poll-interval={int(POLL_INTERVAL_S * 1000)}ms"], 100)
    manual = start_target("manual", processes, args, work, pb, pb_grpc,
                          ["--model-control-mode=none"], 200000)
    targets = [poll, manual]
    for t in targets:
        for model in SPECS:
            wait_ready(t, model, 1, processes)
    monitor = Monitor(targets)
    load = Load(targets, pb_grpc)
    try:
        rng = np.random.default_rng(7)
        log = []
        time.sleep(DWELL_S)
        for _ in range(POLL_REPLACEMENTS):
            replace(poll, "poll", processes, rng, log)
        for way in MANUAL_WAYS:
            replace(manual, way, processes, rng, log)
        truncated = truncated_version(poll, processes, health_pb2,
                                      health_pb2_grpc, log)
        time.sleep(DWELL_S)
    finally:  # On failure too, while the servers still answer.
        load.stop()
        monitor.stop()
    load.check_stopped()
    for t in targets:
        check(not t.errors, f"{t.name}: {len(t.errors)} calls failed, e.g. "
              f"{t.errors[:5]}")
        check_unloaded(t, monitor, log, processes)
    check(not monitor.errors, f"watching the servers failed: "
          f"{monitor.errors[:5]}")
    drained = [k for k, n in monitor.draining.items() if n > 0]
    check(drained, "no version was ever seen DRAINING with sessions")
    worst = 0.0
    for t in targets:
        worst = max(worst, verify_classify(t), verify_sessions(t))
        verify_newest(t)
    report(targets, log, truncated, worst, started)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    work = tempfile.mkdtemp(prefix="rnnserve_reload_")
    processes = Processes()
    try:
        run(args, work, processes)
    except TestFailure as e:
        for name, _, log_path in processes.children:
            with open(log_path) as f:
                print(f"--- {name} log {log_path} (end):\n"
                      + f.read()[-3000:], file=sys.stderr)
        fail(str(e))
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
