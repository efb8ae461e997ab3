#!/usr/bin/python3
"""The Python client package (client/python) against a real rnnserve.

  client_test.py --rnnserve BIN --source DIR

Installs rnnserve_client with pip into a temporary folder (no downloads:
--no-deps --no-build-isolation --no-index, Debian's grpcio, protobuf and
numpy; the gRPC modules generated at build time from proto/), then:
- server A (mutual TLS, a bearer token, in-memory sessions, the bundled
  models and two golden cases): models(); classify of Fashion-MNIST images
  and of mixed-length sequences equal PyTorch's goldens; the sine stream,
  on a Regress stream and with RegressChunk, in uneven chunks, and resumed
  by token, equals PyTorch's golden; a chunk resent from the same position
  is replayed, not applied again; every typed error for its case;
  token-input models (the emb_* goldens): ModelInfo's input kind and
  vocabulary, classify(token_ids=) of mixed lengths and a session sent
  token ids in uneven chunks equal PyTorch's; the per-step softmax golden
  (gru_reg_2l_softmax): ModelInfo's output activation and send_chunk
  (top_k=) step tops equal the golden's probabilities, best first; text:
  two of the emb_* goldens copied with a "tokenizer" in their config,
  ModelInfo.tokenizer, encode_text's ids checked by hand, classify(text=)
  and Session.send(text=) equal their token ids' answers and PyTorch's,
  and the refusals (no tokenizer, an unknown character) name the text;
- server B (plain, sessions in a real redis-server, a fixed port): a
  session survives SIGKILL and restart of the server mid-stream, and one
  whose answer is lost after the chunk was applied (a proxy drops it) gets
  it replayed; both equal the golden. Then the session bound gives
  ResourceExhausted.
Expected numbers come from the PyTorch goldens in tests/goldens.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
from live import (FASHION_TEST_IMAGES, Processes, fail, free_port,  # noqa: E402
                  golden, make_certificates, read_fashion_images,
                  repository_with_golden, start_redis, start_rnnserve,
                  write_private)
from cut_proxy import CutProxy  # noqa: E402

TOLERANCE = 1e-5  # See tests/engine/engine_golden_test.cc.
LOGIT_TOLERANCE = 5e-5  # Fashion logits reach ~20: see fashion_test.cc.


def check(condition, message):
    if not condition:
        fail(message)


def install_package(source, work):
    """pip-installs a copy of client/python into work/site and imports it.
    The copy is built away from the repository, finding the proto through
    RNNSERVE_PROTO_DIR, so the checkout stays clean."""
    src = os.path.join(work, "client_src")
    shutil.copytree(os.path.join(source, "client", "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                  "_pb", "__pycache__"))
    site = os.path.join(work, "site")
    env = dict(os.environ, RNNSERVE_PROTO_DIR=os.path.join(source, "proto"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run(
        ["/usr/bin/python3", "-m", "pip", "install", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", site, src],
        env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        fail(f"pip install client/python failed:\n{result.stdout}"
             f"{result.stderr}")
    check(os.path.isfile(os.path.join(site, "rnnserve_client", "_pb",
                                      "inference_pb2_grpc.py")),
          "the installed package lacks its generated gRPC modules")
    sys.path.insert(0, site)
    import rnnserve_client
    check(rnnserve_client.__file__.startswith(site),
          f"imported {rnnserve_client.__file__}, not the installed package")
    print(f"install: pip installed rnnserve_client into {site}")
    return rnnserve_client


def sine(source):
    t = golden(source, "sine_rnn_stream.safetensors")
    return t["inputs"].reshape(100, 1), t["outputs"].reshape(100, 1)


def worst(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# Server A: TLS, token, memory store.

def check_models(rc, client):
    models = {m.name: m for m in client.models()}
    check(set(models) == {"fashion_lstm", "sine_rnn", "lstm_cls_1l",
                          *TOKEN_GOLDENS, STEP_GOLDEN, *TEXT_MODELS},
          f"models(): {sorted(models)}")
    check(models["lstm_cls_1l"].input_kind == "values" and
          models["lstm_cls_1l"].vocabulary_size == 0 and
          models["lstm_cls_1l"].readout == "last_output" and
          models["lstm_cls_1l"].head == [] and
          models["lstm_cls_1l"].output_activation == "",
          f"lstm_cls_1l: {models['lstm_cls_1l']}")
    for name, (vocabulary, task) in TOKEN_GOLDENS.items():
        m = models[name]
        check((m.input_kind, m.vocabulary_size, m.task) ==
              ("token_ids", vocabulary, task), f"{name}: {m}")
    m = models[STEP_GOLDEN]
    check((m.input_kind, m.output_activation, m.readout, m.labels) ==
          ("values", "softmax", "", ["sil", "yes", "no", "up", "down"]),
          f"{STEP_GOLDEN}: {m}")
    f = models["fashion_lstm"]
    check((f.task, f.cell, f.input_size, f.output_size, len(f.labels)) ==
          ("classification", "lstm", 28, 10, 10), f"fashion_lstm: {f}")
    s = models["sine_rnn"]
    check((s.task, s.cell, s.input_size, s.output_size) ==
          ("regression", "rnn_tanh", 1, 1), f"sine_rnn: {s}")
    print("models: every model with its task, cell, sizes, input kind, "
          "vocabulary, readout, head and output activation")


def check_classify(rc, client, source):
    if not os.path.exists(FASHION_TEST_IMAGES):
        if os.environ.get("RNNSERVE_ALLOW_MISSING_DATASETS") == "1":
            print(f"classify: SKIPPED Fashion-MNIST ({FASHION_TEST_IMAGES} missing)")
        else:
            fail(f"{FASHION_TEST_IMAGES} missing: install dataset-fashion-mnist")
    else:
        g = golden(source, "fashion_lstm_test1000.safetensors")
        images = read_fashion_images(64)
        results = client.classify("fashion_lstm", images, top_k=3)
        check(len(results) == 64, f"{len(results)} results for 64 images")
        for i, r in enumerate(results):
            check(r.top_class == g["predictions"][i],
                  f"image {i}: class {r.top_class}, PyTorch "
                  f"{g['predictions'][i]}")
            check(worst(r.logits, g["logits"][i]) <= LOGIT_TOLERANCE,
                  f"image {i}: logits off by {worst(r.logits, g['logits'][i])}")
            check(len(r.top) == 3 and r.top[0].probability >=
                  r.top[1].probability >= r.top[2].probability,
                  f"image {i}: top {r.top}")
            check(abs(float(r.probabilities.sum()) - 1) < 1e-4 and
                  r.top[0].label != "", f"image {i}: {r}")
        print(f"classify: 64 Fashion-MNIST images as one 3-D array equal "
              f"PyTorch's (e.g. '{results[0].top[0].label}')")

    # Mixed lengths: the golden case's five sequences of lengths
    # [7, 1, 12, 12, 3], each computed alone by PyTorch.
    g = golden(source, os.path.join("lstm_cls_1l", "golden.safetensors"))
    seqs = [g["inputs"][i, :n] for i, n in enumerate(g["lengths"])]
    results = client.classify("lstm_cls_1l", seqs, top_k=20)
    for i, r in enumerate(results):
        check(worst(r.logits, g["logits"][i]) <= TOLERANCE and
              worst(r.probabilities, g["probabilities"][i]) <= TOLERANCE,
              f"mixed lengths, sequence {i}: off by "
              f"{worst(r.logits, g['logits'][i])}")
        check(r.top_class == int(np.argmax(g["logits"][i])) and
              len(r.top) == 10, f"sequence {i}: top {r.top}")
    print(f"classify: {len(seqs)} sequences of lengths "
          f"{list(g['lengths'])} equal PyTorch's")


# Goldens with token inputs (tests/goldens/README.md): name: (vocabulary,
# task); and the per-step softmax golden.
TOKEN_GOLDENS = {"emb_lstm_cls_1l_pad": (30, "classification"),
                 "emb_gru_cls_2l_bi": (40, "classification"),
                 "emb_rnn_tanh_reg_1l": (25, "regression")}
STEP_GOLDEN = "gru_reg_2l_softmax"


def link_goldens(source, repo):
    for name in [*TOKEN_GOLDENS, STEP_GOLDEN]:
        os.symlink(os.path.join(source, "tests", "goldens", name),
                   os.path.join(repo, name))


def check_tokens(rc, client, source):
    """Token ids: classify(token_ids=) and a session's send(token_ids=)."""
    for name in ("emb_lstm_cls_1l_pad", "emb_gru_cls_2l_bi"):
        g = golden(source, os.path.join(name, "golden.safetensors"))
        ids = [g["tokens"][i, :n] for i, n in enumerate(g["lengths"])]
        # Plain lists of ints for one call, the arrays for the other.
        for given in (ids, [list(map(int, a)) for a in ids]):
            results = client.classify(name, token_ids=given, top_k=2)
            for i, r in enumerate(results):
                check(worst(r.logits, g["logits"][i]) <= TOLERANCE and
                      worst(r.probabilities, g["probabilities"][i]) <=
                      TOLERANCE, f"{name}: sequence {i} off by "
                      f"{worst(r.logits, g['logits'][i])}")
                check(r.top_class == int(np.argmax(g["logits"][i])) and
                      len(r.top) == 2, f"{name}: sequence {i}: {r.top}")
        # One [count, steps] array: the sequences of the longest length.
        full = g["tokens"][g["lengths"] == g["tokens"].shape[1]]
        results = client.classify(name, token_ids=full)
        want = g["logits"][g["lengths"] == g["tokens"].shape[1]]
        check(len(results) == len(full) > 0 and
              all(worst(r.logits, w) <= TOLERANCE
                  for r, w in zip(results, want)), f"{name}: a 2-D array")
        print(f"tokens: classify(token_ids=) of {name}, lengths "
              f"{list(g['lengths'])}, equals PyTorch's")
    name = "emb_rnn_tanh_reg_1l"
    g = golden(source, os.path.join(name, "golden.safetensors"))
    for i, n in enumerate(g["lengths"]):
        ids, want = g["tokens"][i, :n], g["outputs_from_zero"][i, :n]
        cuts = sorted({0, n // 3, n // 2, n})
        with client.session(name, unary=i % 2 == 1) as s:
            got = np.concatenate([s.send(token_ids=ids[a:b])
                                  for a, b in zip(cuts, cuts[1:])])
            check(s.position == n, f"{name}: position {s.position}")
        check(got.shape == want.shape and worst(got, want) <= TOLERANCE,
              f"{name}: sequence {i} off by {worst(got, want)}")
    with client.session(name) as s:
        got = np.concatenate(list(s.stream(np.split(g["tokens"][2], 3),
                                           tokens=True)))
    check(worst(got, g["outputs_from_zero"][2]) <= TOLERANCE,
          f"{name}: stream(tokens=True) off")
    print(f"tokens: {name} sessions sent token ids in uneven chunks (stream "
          "and RegressChunk) equal PyTorch's")
    expect(rc, rc.InvalidArgument, "values for a token-input model",
           lambda: client.classify("emb_gru_cls_2l_bi", [np.zeros((3, 6))]))
    e = expect(rc, rc.InvalidArgument, "a token id outside the vocabulary",
               lambda: client.classify("emb_gru_cls_2l_bi",
                                       token_ids=[[1, 40]]))
    check("token_ids" in str(e), f"the message does not name token_ids: {e}")
    expect(rc, rc.InvalidArgument, "token ids for a values model",
           lambda: client.classify("lstm_cls_1l", token_ids=[[1, 2]]))
    for what, action in (
            ("both sequences and token_ids", lambda: client.classify(
                "emb_gru_cls_2l_bi", [np.zeros((1, 6))], token_ids=[[1]])),
            ("float token ids", lambda: client.classify(
                "emb_gru_cls_2l_bi", token_ids=[[1.5, 2.0]])),
            ("a 1-D sequence of values", lambda: client.classify(
                "emb_gru_cls_2l_bi", [[1, 2, 3]])),
            ("a chunk of both", lambda: client.session(name).send(
                np.zeros((1, 5)), token_ids=[1]))):
        try:
            action()
        except ValueError as e:
            print(f"errors: {what} -> ValueError: {e}")
        else:
            fail(f"{what}: no ValueError")


# Token goldens copied with a tokenizer: name: (golden, tokens). Id 0 is
# the unknown id; lowercase.
CLS_TOKENS = ["<unk>", *"abcdefghijklmnopqrstuvwxyz", "é", "ł", "ß", "ñ",
              "ö", "ç", "à", "ü", "ó", "ź", "ż", "ą", " "]  # 40
REG_TOKENS = ["<unk>", *"abcdefghijklmnopqrst", "é", "ł", "ß", " "]  # 25
TEXT_MODELS = {"emb_text_cls": ("emb_gru_cls_2l_bi", CLS_TOKENS),
               "emb_text_reg": ("emb_rnn_tanh_reg_1l", REG_TOKENS)}


def write_text_models(source, repo):
    """Copies of two token goldens with a "tokenizer" in their config."""
    for name, (golden_name, tokens) in TEXT_MODELS.items():
        folder = os.path.join(repo, name)
        shutil.copytree(os.path.join(source, "tests", "goldens", golden_name),
                        folder)
        path = os.path.join(folder, "config.json")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        config["tokenizer"] = {"type": "characters", "tokens": tokens,
                               "unknown_id": 0, "lowercase": True}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)


def golden_text(ids, tokens):
    """The text whose ids are `ids`, in mixed case: id 0 (the unknown id)
    as "?", letters upper-case at even steps (but ß, whose upper case is
    two letters)."""
    out = []
    for t, i in enumerate(ids):
        c = "?" if i == 0 else tokens[i]
        out.append(c.upper() if t % 2 == 0 and len(c.upper()) == 1 else c)
    return "".join(out)


def check_text(rc, client, source):
    """text=: ModelInfo.tokenizer, encode_text, classify(text=) and
    Session.send(text=) against their token ids and PyTorch's goldens."""
    m = client.model("emb_text_cls")
    check(m.tokenizer == rc.Tokenizer("characters", CLS_TOKENS, 0, True),
          f"emb_text_cls: tokenizer {m.tokenizer}")
    check(client.model("emb_gru_cls_2l_bi").tokenizer is None,
          "a model without a tokenizer has one")
    # By hand: b=2 o=15 n=14 j=10 u=21 r=18, "," and "!" unknown (0),
    # space=39, Ł -> ł=28, ó=35, d=4, ź=36.
    ids = client.encode_text("emb_text_cls", "Bonjour, Łódź!")
    check(ids.dtype == np.int64 and list(ids) ==
          [2, 15, 14, 10, 15, 21, 18, 0, 39, 28, 35, 4, 36, 0],
          f"encode_text: {list(ids)}")
    print(f"text: encode_text('Bonjour, Łódź!') is {list(ids)}, as "
          "checked by hand (lower-cased, ',' and '!' the unknown id 0)")
    texts = ["Bonjour, Łódź!", "hello"]
    by_text = client.classify("emb_text_cls", text=texts, top_k=3)
    by_ids = client.classify("emb_text_cls", top_k=3, token_ids=[
        ids, [8, 5, 12, 12, 15]])
    check(len(by_text) == 2 and all(
        np.array_equal(a.logits, b.logits) and a.top == b.top
        for a, b in zip(by_text, by_ids)), "classify(text=) differs from "
          "classify(token_ids=) of its ids")
    for name, (golden_name, tokens) in TEXT_MODELS.items():
        g = golden(source, os.path.join(golden_name, "golden.safetensors"))
        texts = [golden_text(g["tokens"][i, :n], tokens)
                 for i, n in enumerate(g["lengths"])]
        if name == "emb_text_cls":
            results = client.classify(name, text=texts, top_k=3)
            for i, r in enumerate(results):
                check(worst(r.logits, g["logits"][i]) <= TOLERANCE,
                      f"{name}: text {texts[i]!r} off by "
                      f"{worst(r.logits, g['logits'][i])}")
            print(f"text: classify(text=) of {len(texts)} texts spelling "
                  f"{golden_name}'s sequences (e.g. {texts[0]!r}) equals "
                  "PyTorch's logits")
            continue
        for i, text in enumerate(texts):
            n = len(text)
            cuts = sorted({0, n // 3, n // 2, n})
            with client.session(name, unary=i % 2 == 1) as s:
                got = np.concatenate([s.send(text=text[a:b])
                                      for a, b in zip(cuts, cuts[1:])])
            want = g["outputs_from_zero"][i, :n]
            check(worst(got, want) <= TOLERANCE,
                  f"{name}: text {text!r} off by {worst(got, want)}")
        with client.session(name) as s:
            got = np.concatenate(list(s.stream(
                [texts[2][:5], texts[2][5:]], text=True)))
        check(worst(got, g["outputs_from_zero"][2]) <= TOLERANCE,
              f"{name}: stream(text=True) off")
        print(f"text: {name} sessions sent text in uneven chunks (stream and "
              f"RegressChunk) equal PyTorch's (e.g. {texts[0]!r})")
    for what, needle, action in (
            ("text for a model without a tokenizer", "has no tokenizer",
             lambda: client.classify("emb_gru_cls_2l_bi", text=["ab"])),
            ("text for a values model", "it reads values",
             lambda: client.classify("lstm_cls_1l", text=["ab"])),
            ("send(text=) without a tokenizer", "give its token ids",
             lambda: client.session("emb_rnn_tanh_reg_1l").send(text="ab")),
            ("an unknown character without unknown_id", "character 2 'c'",
             lambda: rc.Tokenizer("characters", ["a", "b"]).encode("abc")),
            ("an empty text", "text[1]: empty",
             lambda: client.classify("emb_text_cls", text=["a", ""])),
            ("one str for classify", "give text=[...]",
             lambda: client.classify("emb_text_cls", text="ab")),
            ("text and token_ids", "give one of",
             lambda: client.classify("emb_text_cls", text=["a"],
                                     token_ids=[[1]]))):
        try:
            action()
        except ValueError as e:
            check(needle in str(e), f"{what}: {e!r} lacks {needle!r}")
            print(f"errors: {what} -> ValueError: {e}")
        else:
            fail(f"{what}: no ValueError")


def check_step_top(rc, client, source):
    """send_chunk(top_k=) of the per-step softmax golden: each step's best
    classes are the golden's probabilities, best first, with the labels."""
    g = golden(source, os.path.join(STEP_GOLDEN, "golden.safetensors"))
    labels = client.model(STEP_GOLDEN).labels
    for i, n in enumerate(g["lengths"]):
        x, want = g["inputs"][i, :n], g["outputs_from_zero"][i, :n]
        cuts = sorted({0, n // 2, n})
        with client.session(STEP_GOLDEN, unary=i % 2 == 0) as s:
            chunks = [s.send_chunk(x[a:b], top_k=3)
                      for a, b in zip(cuts, cuts[1:])]
        got = np.concatenate([c.outputs for c in chunks])
        tops = [t for c in chunks for t in c.step_top]
        check(worst(got, want) <= TOLERANCE and len(tops) == n and
              [c.first_step for c in chunks] == cuts[:-1],
              f"{STEP_GOLDEN}: sequence {i} off by {worst(got, want)}")
        for t, top in enumerate(tops):
            order = np.argsort(-want[t], kind="stable")[:3]
            check([c.index for c in top] == list(order) and
                  [c.label for c in top] == [labels[j] for j in order] and
                  worst([c.probability for c in top], want[t][order]) <=
                  TOLERANCE, f"{STEP_GOLDEN}: sequence {i} step {t}: {top}")
    with client.session(STEP_GOLDEN) as s:
        plain = s.send_chunk(g["inputs"][0, :3])
    check(plain.step_top == [] and plain.outputs.shape == (3, 5),
          f"without top_k: {plain.step_top}")
    print(f"step top: {STEP_GOLDEN} send_chunk(top_k=3) lists each step's "
          "best classes with PyTorch's probabilities, best first")
    expect(rc, rc.InvalidArgument, "top_k for a model without an output "
           "activation", lambda: client.session("sine_rnn").send_chunk(
               np.zeros((1, 1)), top_k=1))


def check_streams(rc, client, source):
    x, want = sine(source)
    # A Regress stream, chunks of 10, through stream().
    with client.session("sine_rnn") as s:
        got = np.concatenate(list(s.stream(np.split(x, 10))))
        check(s.position == 100 and s.token, f"position {s.position}")
    check(s.ended and worst(got, want) <= TOLERANCE,
          f"sine stream off by {worst(got, want)}")
    # RegressChunk, uneven chunks, resumed by token on a new Session.
    cuts = [0, 7, 20, 21, 40, 77, 100]
    first = client.session("sine_rnn", unary=True)
    outs = [first.send(x[a:b]) for a, b in zip(cuts[:3], cuts[1:4])]
    first.close()
    resumed = client.session("sine_rnn", token=first.token)
    check(resumed.position == 21, f"resumed at {resumed.position}, not 21")
    outs += [resumed.send(x[a:b]) for a, b in zip(cuts[3:], cuts[4:])]
    got = np.concatenate(outs)
    check(got.shape == (100, 1) and worst(got, want) <= TOLERANCE,
          f"uneven resumed chunks off by {worst(got, want)}")
    # reset() starts over: the same outputs again.
    resumed.reset()
    check(resumed.position == 0, f"after reset: {resumed.position}")
    again = resumed.send(x[:30])
    check(worst(again, want[:30]) <= TOLERANCE, "after reset: other outputs")
    resumed.end()
    check(resumed.retries == 0 and resumed.replays == 0,
          "retries without failures")
    print("streams: sine on a stream (10x10) and with RegressChunk in uneven "
          "chunks, resumed by token, and after reset, equal PyTorch's")


def check_replay(rc, client, source):
    """A chunk resent from the same expected_first_step is answered again,
    not applied again (the raw call, as the Session's retry sends it)."""
    from rnnserve_client._pb import inference_pb2 as pb
    x, want = sine(source)
    md = client.metadata

    def chunk(at, token):
        return pb.RegressRequest(model="sine_rnn", session_token=token,
                                 steps=10, values=x[at:at + 10].reshape(-1),
                                 expected_first_step=at)
    a = client.stub.RegressChunk(chunk(0, ""), metadata=md, timeout=30)
    token = a.session_token
    b = client.stub.RegressChunk(chunk(10, token), metadata=md, timeout=30)
    again = client.stub.RegressChunk(chunk(10, token), metadata=md,
                                     timeout=30)
    check(not b.replayed and again.replayed and again.first_step == 10 and
          list(again.outputs) == list(b.outputs),
          f"resend: replayed={again.replayed} first_step={again.first_step}")
    s = client.session("sine_rnn", token=token)
    check(s.position == 20, f"after a replay the session is at {s.position}")
    got = np.concatenate([a.outputs, b.outputs, s.send(x[20:]).reshape(-1)])
    check(worst(got, want.reshape(-1)) <= TOLERANCE, "replayed stream off")
    s.end()
    print("replay: a chunk resent from its position came back replayed with "
          "the same outputs, and the session did not move")


def expect(rc, error, what, action):
    try:
        action()
    except rc.RnnserveError as e:
        check(type(e) is error, f"{what}: {type(e).__name__} ({e}), not "
              f"{error.__name__}")
        print(f"errors: {what} -> {error.__name__}: {e}")
        return e
    fail(f"{what}: no error")


def check_errors(rc, client, address, tls):
    expect(rc, rc.InvalidArgument, "27 inputs for an input size of 28",
           lambda: client.classify("fashion_lstm", [np.zeros((28, 27))]))
    e = expect(rc, rc.NotFound, "an unknown model",
               lambda: client.classify("no_such_model", [np.zeros((2, 28))]))
    check("no_such_model" in str(e), f"the message: {e}")
    expect(rc, rc.FailedPrecondition, "Classify on a regression model",
           lambda: client.classify("sine_rnn", [np.zeros((2, 1))]))
    expect(rc, rc.SessionNotFound, "an unknown session token",
           lambda: client.session("sine_rnn", token=secrets.token_urlsafe(32)))
    expect(rc, rc.Unauthenticated, "no bearer token",
           lambda: rc.Client(address, tls=tls).models())
    expect(rc, rc.Unauthenticated, "a wrong bearer token",
           lambda: rc.Client(address, tls=tls,
                             token=secrets.token_urlsafe(32)).models())

    # Take-over: a second Session presents the token of one holding a
    # stream; the first one's next chunk is refused, not retried.
    x = np.ones((10, 1), dtype=np.float32)
    holder = client.session("sine_rnn")
    holder.send(x)
    thief = client.session("sine_rnn", token=holder.token)
    thief.send(x)
    expect(rc, rc.SessionTakenOver, "a stream whose session was taken over",
           lambda: holder.send(x))
    check(holder.retries == 0, "a take-over was retried")

    # Position mismatch: two RegressChunk sessions on one token. (The stale
    # chunk differs from the other's: the same chunk from the same position
    # would be a retry, answered by a replay.)
    u1 = client.session("sine_rnn", unary=True)
    u1.send(x)
    u2 = client.session("sine_rnn", token=u1.token, unary=True)
    u2.send(x)
    e = expect(rc, rc.PositionMismatch, "a chunk sent from a stale position",
               lambda: u1.send(2 * x))
    check(e.position == 20, f"PositionMismatch.position {e.position}, not 20")
    check(u1.sync() == 20 and u1.send(x).shape == (10, 1) and
          u1.position == 30, "sync() then send after a mismatch")
    u1.end()
    expect(rc, rc.SessionNotFound, "an ended session",
           lambda: u2.send(x))

    dead = f"127.0.0.1:{free_port()}"
    quick = rc.RetryPolicy(max_attempts=3, initial_backoff=0.05,
                           max_backoff=0.1)
    started = time.monotonic()
    expect(rc, rc.Unavailable, "no server",
           lambda: rc.Client(dead, retry=quick, timeout=5).models())
    check(time.monotonic() - started < 30, "retries not bounded")
    # A listener that never answers: TCP connects, HTTP/2 never does.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        silent = rc.Client(f"127.0.0.1:{mute.getsockname()[1]}",
                           timeout=0.3, retry=quick)
        expect(rc, rc.DeadlineExceeded, "a server that does not answer",
               lambda: silent.models())
        expect(rc, rc.DeadlineExceeded,
               "a server that does not answer, on a stream",
               lambda: silent.session("sine_rnn").send(x))
        silent.close()
    expect(rc, rc.Unavailable, "no server, in a session",
           lambda: rc.Client(dead, retry=quick, timeout=5)
           .session("sine_rnn").send(x))


# Server B: plain, Redis sessions, restarted on its fixed port.

def kill(processes, server):
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    processes.children = [c for c in processes.children
                          if c[1] is not server.process]


def check_restart(rc, source, processes, start):
    """SIGKILL and restart mid-session: the session goes on, exactly."""
    x, want = sine(source)
    server = start()
    patient = rc.RetryPolicy(max_attempts=100, initial_backoff=0.05,
                             max_backoff=0.5)
    client = rc.Client(server.address, retry=patient, timeout=10)
    session = client.session("sine_rnn")
    outs = [session.send(c) for c in np.split(x[:50], 5)]
    kill(processes, server)
    restarted = {}
    thread = threading.Thread(target=lambda: restarted.update(s=start()))
    thread.start()
    try:
        outs += [session.send(c) for c in np.split(x[50:], 5)]
    finally:
        thread.join()
    got = np.concatenate(outs)
    check(session.retries > 0, "no retry: was the server really killed?")
    check(session.position == 100 and worst(got, want) <= TOLERANCE,
          f"after the restart: position {session.position}, off by "
          f"{worst(got, want)}")
    print(f"restart: SIGKILL mid-session, restart on the same port; the "
          f"session resumed after {session.retries} retries and the 100 "
          f"outputs equal PyTorch's")
    return restarted["s"], session


def check_lost_answer(rc, source, server, unary):
    x, want = sine(source)
    proxy = CutProxy(server.grpc_port)
    client = rc.Client(proxy.address, timeout=10, retry=rc.RetryPolicy(
        max_attempts=20, initial_backoff=0.05, max_backoff=0.5))
    session = client.session("sine_rnn", unary=unary)
    outs = [session.send(x[:30])]
    proxy.arm()
    outs += [session.send(x[30:60])]
    outs += [session.send(x[60:])]
    got = np.concatenate(outs)
    check(proxy.cuts == 1, f"the proxy cut {proxy.cuts} answers")
    check(session.replays == 1 and session.retries >= 1,
          f"replays {session.replays}, retries {session.retries}")
    check(session.position == 100 and worst(got, want) <= TOLERANCE,
          f"lost answer: off by {worst(got, want)}")
    session.end()
    client.close()
    proxy.close()
    print(f"lost answer ({'RegressChunk' if unary else 'stream'}): the "
          "chunk's answer was dropped after it was applied; the retry got "
          "it replayed and the outputs equal PyTorch's")


def check_full(rc, server, held):
    client = rc.Client(server.address)
    x = np.zeros((1, 1), dtype=np.float32)
    sessions = []
    try:
        for _ in range(10):
            s = client.session("sine_rnn", unary=True)
            s.send(x)
            sessions.append(s)
    except rc.ResourceExhausted as e:
        print(f"errors: the session bound -> ResourceExhausted: {e}")
    else:
        fail("10 sessions over a bound of 3: no ResourceExhausted")
    check(len(sessions) == 2, f"{len(sessions)} sessions beside the held one")
    for s in sessions + [held]:
        s.end()


def check_retry_policy(rc):
    policy = rc.RetryPolicy(initial_backoff=0.1, max_backoff=1.0,
                            multiplier=2.0)
    for attempt, bound in ((1, 0.1), (2, 0.2), (4, 0.8), (5, 1.0), (30, 1.0)):
        delays = [policy.delay(attempt) for _ in range(200)]
        check(min(delays) >= bound / 2 and max(delays) <= bound and
              len(set(delays)) > 1,
              f"retry {attempt}: delays in [{min(delays)}, {max(delays)}], "
              f"not jittered in [{bound / 2}, {bound}]")
    print("retry: jittered exponential backoff, capped at max_backoff")


def check_example(source, site, server):
    """client/python/examples/sine_stream.py runs, and its figure is the
    golden's."""
    x, want = sine(source)
    t = np.arange(100, dtype=np.float32) * np.float32(np.pi / 10)
    mse = float(np.mean((want.reshape(-1) - np.cos(t)) ** 2))
    result = subprocess.run(
        ["/usr/bin/python3", os.path.join(source, "client", "python",
                                          "examples", "sine_stream.py"),
         "--server", server.address],
        env=dict(os.environ, PYTHONPATH=site), capture_output=True,
        text=True, timeout=120)
    out = result.stdout + result.stderr
    check(result.returncode == 0, f"sine_stream.py: exit "
          f"{result.returncode}:\n{out}")
    for line in ("resumed the session at step 50", "100 steps; 0 retries",
                 f"MSE against cos(t): {mse:.4f}"):
        check(line in out, f"sine_stream.py does not print '{line}':\n{out}")
    print(f"example: sine_stream.py streams, resumes, and prints PyTorch's "
          f"MSE {mse:.4f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    args.source = os.path.abspath(args.source)
    work = tempfile.mkdtemp(prefix="rnnserve_pyclient_")
    processes = Processes()
    try:
        rc = install_package(args.source, work)
        check_retry_policy(rc)
        repo = repository_with_golden(args.source, work)
        link_goldens(args.source, repo)
        write_text_models(args.source, repo)
        certs = make_certificates(args.source, work)
        token = secrets.token_urlsafe(32)
        tokens_file = os.path.join(work, "tokens")
        write_private(tokens_file, f"{token}\n")
        common = ["--compute-threads=1", "--shutdown-grace=2s",
                  "--drain-delay=0s"]
        a = start_rnnserve(processes, args.rnnserve, repo, work, common + [
            f"--tls-cert={certs}/server.pem", f"--tls-key={certs}/server.key",
            f"--tls-client-ca={certs}/ca.pem",
            f"--auth-tokens-file={tokens_file}"], metrics=False)
        tls = rc.TlsConfig(ca=f"{certs}/ca.pem", cert=f"{certs}/client.pem",
                           key=f"{certs}/client.key")
        client = rc.Client(a.address, tls=tls, token=token)
        check_models(rc, client)
        check_classify(rc, client, args.source)
        check_streams(rc, client, args.source)
        check_replay(rc, client, args.source)
        check_tokens(rc, client, args.source)
        check_text(rc, client, args.source)
        check_step_top(rc, client, args.source)
        check_errors(rc, client, a.address, tls)
        client.close()

        redis = start_redis(processes, work)
        port = free_port()

        def start_b():
            return start_rnnserve(processes, args.rnnserve, repo, work,
                                  common + [f"--grpc-address=127.0.0.1:{port}",
                                            f"--session-store={redis}",
                                            "--max-sessions=3"],
                                  metrics=False)
        b, held = check_restart(rc, args.source, processes, start_b)
        check_lost_answer(rc, args.source, b, unary=True)
        check_lost_answer(rc, args.source, b, unary=False)
        check_full(rc, b, held)
        check_example(args.source, os.path.join(work, "site"), b)
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
