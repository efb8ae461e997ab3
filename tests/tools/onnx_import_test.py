#!/usr/bin/python3
"""tools/export_model.py --from-onnx against PyTorch and the real server.

  onnx_import_test.py --rnnserve BIN --source DIR

For several architectures (a 2-layer bidirectional LSTM classifier, a 3-layer
GRU classifier with batch_first=False, a 2-layer ReLU RNN regressor that also
outputs h_n, a 1-layer GRU regressor, a 2-layer LSTM without biases; with
nn.Sequential heads: a 2-layer LSTM with Linear/ReLU/Dropout/Linear on the
mean over the steps, a 2-layer bidirectional GRU (steps first) with
Linear/Tanh/Linear on cat(h_n[-2], h_n[-1]), an RNN with
Linear/GELU/Linear/Sigmoid/Linear on the max over the steps, also with GELU
as one opset-20 Gelu op, a GRU regressor with Linear/Tanh/Linear),
with token inputs (an nn.Embedding before the recurrent layers: an LSTM
classifier with padding_idx, a 2-layer bidirectional GRU classifier on
cat(h_n[-2], h_n[-1]) with an MLP head whose batch-first ids are transposed
for its steps-first GRU, a steps-first RNN regressor reading the batch-first
ids' rows transposed),
builds a random PyTorch model, torch.onnx.export()s it (opset 14, batch and steps dynamic), imports the file
with `export_model.py --from-onnx`, and checks that
- the tensors written are exactly the model's state_dict (names, shapes,
  every bit; a Sequential's indices renumbered without its dropout), and
  the config says the right cell, sizes, task, readout and head;
- rnnserve serving the imported folders answers Classify (sequences of mixed
  lengths) and RegressChunk (a stream in uneven chunks) with PyTorch's
  numbers, each sequence computed alone, within 1e-5 (token models: token_ids
  in both).
Then that graphs rnnserve cannot serve are refused with exit status 1 and a
message naming the node and its op type or attribute: an unknown op (made
with onnx.helper), a softmax or sigmoid after the head, a head on c_n or on
a first layer's h_n, a mean over the features, a sum over the steps, a tanh
GELU, LSTM clip, GRU linear_before_reset=0, an RNN with another activation,
an embedding table computed by a node rather than stored, token ids read by
something other than the lookup (a padding mask), --padding-idx without an
embedding.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
from live import (Processes, connected_channel, fail,  # noqa: E402
                  generate_stubs, start_rnnserve)

TOLERANCE = 1e-5  # See tests/engine/engine_golden_test.cc.
LENGTHS = [7, 1, 12, 3]
CHUNKS = [0, 4, 5, 11]  # A stream of 11 steps sent as [0, 4), [4, 5), [5, 11).


def check(condition, message):
    if not condition:
        fail(message)


# name: (cell, input, hidden, layers, bias, bidirectional, output, task,
#        batch_first, regression also outputs the final state)
CASES = {
    "onnx_lstm_2l_bi_cls": ("lstm", 5, 7, 2, True, True, 3, "classification", True, False),
    "onnx_gru_3l_cls": ("gru", 3, 6, 3, True, False, 4, "classification", False, False),
    "onnx_rnn_relu_2l_reg": ("rnn_relu", 2, 9, 2, True, False, 3, "regression", True, True),
    "onnx_gru_1l_reg": ("gru", 4, 5, 1, True, False, 2, "regression", True, False),
    "onnx_lstm_2l_nobias_cls": ("lstm", 6, 8, 2, False, False, 4, "classification", True,
                                False),
    "onnx_lstm_2l_mlp_mean": ("lstm", 4, 6, 2, True, False, 3, "classification", True, False),
    "onnx_gru_2l_bi_final_tanh": ("gru", 3, 5, 2, True, True, 2, "classification", False,
                                  False),
    "onnx_rnn_max_gelu": ("rnn_tanh", 3, 5, 1, True, False, 4, "classification", True, False),
    "onnx_gru_mlp_reg": ("gru", 3, 4, 1, True, False, 2, "regression", True, False),
    # Token inputs: input = the embedding's dimension E.
    "onnx_emb_lstm_cls": ("lstm", 4, 6, 1, True, False, 3, "classification", True, False),
    "onnx_emb_gru_2l_bi_final_mlp": ("gru", 5, 4, 2, True, True, 3, "classification", False,
                                     False),
    "onnx_emb_rnn_reg": ("rnn_tanh", 3, 5, 1, True, False, 2, "regression", False, False),
}
# Cases with an nn.Embedding before the rnn: name: (num_embeddings, padding_idx).
EMBEDDINGS = {
    "onnx_emb_lstm_cls": (13, 0),
    "onnx_emb_gru_2l_bi_final_mlp": (20, None),
    "onnx_emb_rnn_reg": (9, None),
}
# Token cases whose ids come batch-first and are transposed for a steps-first
# rnn, before the lookup (ids.t()) or after it (embedding(ids).transpose(0,
# 1)): the graph's input is batch-first although the rnn is not.
TRANSPOSED_IDS = {"onnx_emb_gru_2l_bi_final_mlp"}
TRANSPOSED_ROWS = {"onnx_emb_rnn_reg"}
# Cases with a readout other than the last step or an nn.Sequential head:
# name: (readout, the Sequential's modules as (kind, width or p)).
HEADS = {
    "onnx_lstm_2l_mlp_mean": ("mean", [("linear", 8), ("relu", None), ("dropout", 0.3),
                                       ("linear", 3)]),
    "onnx_gru_2l_bi_final_tanh": ("final_state", [("linear", 6), ("tanh", None),
                                                  ("linear", 2)]),
    "onnx_rnn_max_gelu": ("max", [("linear", 7), ("gelu", None), ("linear", 6),
                                  ("sigmoid", None), ("linear", 4)]),
    "onnx_gru_mlp_reg": ("last_output", [("linear", 6), ("tanh", None), ("linear", 2)]),
    "onnx_emb_gru_2l_bi_final_mlp": ("final_state", [("linear", 6), ("relu", None),
                                                     ("linear", 3)]),
}


def input_batch_first(name):
    """Whether the graph's input (values or token ids) is batch-first."""
    return CASES[name][8] or name in TRANSPOSED_IDS | TRANSPOSED_ROWS


def make_head(torch, width, modules):
    nn = torch.nn
    layers = []
    for kind, arg in modules:
        if kind == "linear":
            layers.append(nn.Linear(width, arg))
            width = arg
        elif kind == "dropout":
            layers.append(nn.Dropout(arg))
        else:
            layers.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                           "gelu": nn.GELU}[kind]())
    return nn.Sequential(*layers)


def readout_of(torch, readout, r_out, state, batch_first, bi):
    """What the head reads, as docs/model-format.md section 2 defines it."""
    steps = 1 if batch_first else 0
    if readout == "mean":
        return r_out.mean(dim=steps)
    if readout == "max":
        return r_out.max(dim=steps).values
    h_n = state[0] if isinstance(state, tuple) else state
    if readout == "final_state":
        return torch.cat((h_n[-2], h_n[-1]), dim=1) if bi else h_n[-1]
    return r_out[:, -1] if batch_first else r_out[-1]


def expected_state_dict(name, model):
    """PyTorch's state_dict under the names the import writes: Sequential
    indices renumbered over the modules left in an eval-mode export (no
    dropout)."""
    want = {k: v.numpy() for k, v in model.state_dict().items()}
    if name not in HEADS:
        return want
    kept = [i for i, (kind, _) in enumerate(HEADS[name][1]) if kind != "dropout"]
    renamed = {}
    for key, value in want.items():
        if key.startswith("out."):
            _, index, what = key.split(".")
            key = f"out.{kept.index(int(index))}.{what}"
        renamed[key] = value
    return renamed


def make_model(torch, name, seed):
    case = CASES[name]
    cell, inputs, hidden, layers, bias, bi, outputs, task, batch_first, with_state = case
    nn = torch.nn
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if name in EMBEDDINGS:
                vocabulary, padding = EMBEDDINGS[name]
                self.embedding = nn.Embedding(vocabulary, inputs, padding_idx=padding)
            kwargs = dict(input_size=inputs, hidden_size=hidden, num_layers=layers,
                          bias=bias, batch_first=batch_first, bidirectional=bi)
            if cell == "lstm":
                self.rnn = nn.LSTM(**kwargs)
            elif cell == "gru":
                self.rnn = nn.GRU(**kwargs)
            else:
                self.rnn = nn.RNN(nonlinearity=cell[4:], **kwargs)
            width = (2 if bi else 1) * hidden
            if name in HEADS:
                self.out = make_head(torch, width, HEADS[name][1])
            else:
                self.out = nn.Linear(width, outputs)

        def forward(self, x):
            if name in EMBEDDINGS:
                x = self.embedding(x.t() if name in TRANSPOSED_IDS else x)
                if name in TRANSPOSED_ROWS:
                    x = x.transpose(0, 1)
            r_out, state = self.rnn(x)
            if task == "classification":
                readout = HEADS[name][0] if name in HEADS else "last_output"
                return self.out(readout_of(torch, readout, r_out, state, batch_first, bi))
            if with_state:
                return self.out(r_out), state
            return self.out(r_out)

    model = Net().eval()
    with torch.no_grad():  # Biases away from zero, so that their order shows.
        for p in model.parameters():
            p.uniform_(-0.6, 0.6)
        padding = EMBEDDINGS.get(name, (0, None))[1]
        if padding is not None:  # As nn.Embedding keeps it, initialized and trained.
            model.embedding.weight[padding] = 0
    return model


def export_onnx(torch, model, case, path, name=None):
    _, inputs, _, _, _, _, _, task, batch_first, with_state = case
    x = torch.zeros((2, 5, inputs) if batch_first else (5, 2, inputs))
    if name in EMBEDDINGS:
        x = torch.ones((2, 5) if input_batch_first(name) else (5, 2), dtype=torch.long)
    batch, steps = (0, 1) if batch_first else (1, 0)
    axes = {"x": {batch: "batch", steps: "steps"}}
    if name in TRANSPOSED_IDS | TRANSPOSED_ROWS:
        axes["x"] = {0: "batch", 1: "steps"}
    names = ["y"]
    if task == "classification":
        axes["y"] = {0: "batch"}
    else:
        axes["y"] = {batch: "batch", steps: "steps"}
        if with_state:
            names.append("h_n")
    torch.onnx.export(model, (x,), path, opset_version=14, input_names=["x"],
                      output_names=names, dynamic_axes=axes)


def reference(torch, model, case, sequence, name=None):
    """PyTorch's outputs for one sequence (steps, input), or (steps) of token
    ids, alone."""
    batch_first, with_state = case[8], case[9]
    x = torch.from_numpy(sequence)
    x = x[None] if input_batch_first(name) else x[:, None]
    with torch.no_grad():
        y = model(x)
    if with_state:
        y = y[0]
    if case[7] == "classification":
        return y[0].numpy()
    return (y[0] if batch_first else y[:, 0]).numpy()


def run_export(source, args):
    return subprocess.run([sys.executable, os.path.join(source, "tools", "export_model.py"),
                           *args], capture_output=True, text=True, timeout=300)


def import_cases(torch, source, work, repo):
    """Exports and imports every case; returns {name: model}."""
    sys.path.insert(0, os.path.join(source, "tools"))
    import rnnserve_format as fmt
    models = {}
    for seed, (name, case) in enumerate(CASES.items()):
        model = make_model(torch, name, seed)
        path = os.path.join(work, name + ".onnx")
        export_onnx(torch, model, case, path, name)
        folder = os.path.join(repo, name)
        vocabulary, padding = EMBEDDINGS.get(name, (None, None))
        extra = [] if padding is None else ["--padding-idx", str(padding)]
        result = run_export(source, ["--from-onnx", path, folder, "--model-version", "7",
                                     *extra])
        check(result.returncode == 0, f"{name}: import failed:\n{result.stderr}")
        check_embedding_config(source, name, path, folder, work)
        config, tensors = fmt.read_model_folder(folder)
        want = expected_state_dict(name, model)
        check(list(tensors) == list(want),
              f"{name}: tensors {list(tensors)}, PyTorch has {list(want)}")
        for key, value in want.items():
            check(tensors[key].shape == value.shape and
                  np.array_equal(tensors[key], value),
                  f"{name}: tensor {key} differs from PyTorch's")
        cell, inputs, hidden, layers, bias, bi, outputs, task = case[:8]
        got = tuple(config[k] for k in ("cell", "input_size", "hidden_size", "num_layers",
                                        "bias", "bidirectional", "output_size", "task"))
        check(got == case[:8] and config["version"] == "7", f"{name}: config {config}")
        readout, modules = HEADS.get(name, ("last_output", None))
        check(config.get("readout", "last_output") == readout, f"{name}: config {config}")
        if modules is not None:
            kept = [m for m in modules if m[0] != "dropout"]
            head = [{"linear": n} if kind == "linear" else {"activation": kind}
                    for kind, n in kept]
            check(config.get("head") == head, f"{name}: head {config.get('head')}, want {head}")
        else:
            check("head" not in config, f"{name}: config {config}")
        models[name] = model
        print(f"import: {name}: {len(tensors)} tensors equal PyTorch's state_dict bit "
              f"for bit; {cell}, {layers} layer(s), {task}, readout {readout}, head "
              f"{json.dumps(config.get('head', 'Linear'))}")
    import_gelu_op(source, work, repo)
    models["onnx_rnn_max_gelu_op"] = models["onnx_rnn_max_gelu"]
    return models


def check_embedding_config(source, name, path, folder, work):
    """Config "embedding" as PyTorch's nn.Embedding has it (padding_idx as
    given with --padding-idx, which ONNX does not record); without the flag a
    padding row of zeros is pointed out."""
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if name not in EMBEDDINGS:
        check("embedding" not in config, f"{name}: config {config}")
        return
    vocabulary, padding = EMBEDDINGS[name]
    want = {"num_embeddings": vocabulary, "embedding_dim": CASES[name][1]}
    if padding is not None:
        want["padding_idx"] = padding
        result = run_export(source, ["--from-onnx", path, os.path.join(work, "no_padding")])
        check(result.returncode == 0 and f"embedding row(s) [{padding}] are all zeros" in
              result.stderr and "--padding-idx" in result.stderr,
              f"{name}: without --padding-idx the zero row is not pointed out:\n"
              f"{result.stderr}")
    check(config.get("embedding") == want, f"{name}: embedding {config.get('embedding')}, "
          f"want {want}")


def import_gelu_op(source, work, repo):
    """Opset 20 writes nn.GELU() as one Gelu op: the erf-form GELU nodes of
    onnx_rnn_max_gelu replaced by one (torch here writes opset <= 17), which
    must import to the same folder; served like the original."""
    import onnx
    from onnx import helper
    name = "onnx_rnn_max_gelu"
    model = onnx.load(os.path.join(work, name + ".onnx"))
    nodes = list(model.graph.node)
    div = next(i for i, n in enumerate(nodes) if n.op_type == "Div")
    mul = max(i for i, n in enumerate(nodes) if n.op_type == "Mul")
    gelu = helper.make_node("Gelu", [nodes[div].input[0]], [nodes[mul].output[0]],
                            name="/out/out.1/Gelu")
    del model.graph.node[:]
    model.graph.node.extend(nodes[:div] + [gelu] + nodes[mul + 1:])
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 20
    path = os.path.join(work, name + "_op.onnx")
    onnx.save(model, path)
    folder = os.path.join(repo, name + "_op")
    result = run_export(source, ["--from-onnx", path, folder, "--model-version", "7"])
    check(result.returncode == 0, f"{name}_op: import failed:\n{result.stderr}")
    for file in ("config.json", "model.safetensors"):
        with open(os.path.join(repo, name, file), "rb") as a, \
                open(os.path.join(folder, file), "rb") as b:
            check(a.read() == b.read(), f"{name}_op: {file} differs from {name}'s")
    CASES[name + "_op"] = CASES[name]
    print(f"import: {name}_op: a Gelu op (opset 20) imports to the same folder")


def check_served(torch, pb, stub, models):
    rng = np.random.default_rng(5)
    for name, model in models.items():
        case = CASES[name]
        inputs, task = case[1], case[7]
        vocabulary = EMBEDDINGS.get(name, (None,))[0]

        def draw(steps):
            if vocabulary is not None:  # Every id, the padding row's included.
                return rng.integers(0, vocabulary, steps).astype(np.int64)
            return rng.uniform(-1, 1, (steps, inputs)).astype(np.float32)

        def items(x):
            if vocabulary is not None:
                return dict(token_ids=x.tolist())
            return dict(values=x.reshape(-1))

        if vocabulary is not None:
            info = stub.GetModel(pb.GetModelRequest(model=name), timeout=30)
            check(info.input_kind == pb.INPUT_KIND_TOKEN_IDS and
                  info.vocabulary_size == vocabulary,
                  f"{name}: ModelInfo input_kind {info.input_kind}, vocabulary_size "
                  f"{info.vocabulary_size}, want token ids of {vocabulary}")
        if task == "classification":
            seqs = [draw(n) for n in LENGTHS]
            request = pb.ClassifyRequest(model=name, sequences=[
                pb.Sequence(steps=len(s), **items(s)) for s in seqs])
            reply = stub.Classify(request, timeout=30)
            check(reply.model_version == "7", f"{name}: version {reply.model_version}")
            for i, (s, r) in enumerate(zip(seqs, reply.results)):
                want = reference(torch, model, case, s, name)
                diff = np.max(np.abs(np.array(r.logits) - want))
                check(diff <= TOLERANCE, f"{name}: sequence {i} logits off by {diff}")
            print(f"serve: {name}: Classify of lengths {LENGTHS} equals PyTorch's")
            continue
        stream = draw(CHUNKS[-1])
        token, got = "", []
        for a, b in zip(CHUNKS, CHUNKS[1:]):
            reply = stub.RegressChunk(pb.RegressRequest(
                model=name, session_token=token, steps=b - a,
                end_session=b == CHUNKS[-1], **items(stream[a:b])), timeout=30)
            token = reply.session_token
            got.append(np.array(reply.outputs).reshape(b - a, -1))
        want = reference(torch, model, case, stream, name)
        diff = np.max(np.abs(np.concatenate(got) - want))
        check(diff <= TOLERANCE, f"{name}: RegressChunk outputs off by {diff}")
        print(f"serve: {name}: RegressChunk in chunks {CHUNKS} equals PyTorch's")


# Refusals ------------------------------------------------------------------

def expect_refused(source, work, model_proto, label, *needles):
    import onnx
    path = os.path.join(work, f"refused_{label}.onnx")
    onnx.save(model_proto, path)
    result = run_export(source, ["--from-onnx", path, os.path.join(work, "refused")])
    check(result.returncode == 1, f"{label}: exit status {result.returncode}, want 1:\n"
          f"{result.stdout}{result.stderr}")
    for needle in needles:
        check(needle in result.stderr, f"{label}: message lacks {needle!r}:\n{result.stderr}")
    check(not os.path.exists(os.path.join(work, "refused")), f"{label}: a folder was written")
    print(f"refuse: {label}: {result.stderr.strip().splitlines()[-1]}")


def check_refusals(torch, source, work):
    import onnx
    from onnx import TensorProto, helper
    # An op that is none of the supported ones, made by hand.
    graph = helper.make_graph(
        [helper.make_node("Foo", ["x"], ["y"], name="/rnn/Foo", domain="")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])])
    expect_refused(source, work, helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 14)]), "unknown_op",
        "node /rnn/Foo (op Foo) is not supported",
        "rnnserve imports LSTM/GRU/RNN stacks with a Linear or MLP head")

    # A softmax after the head: PyTorch's model, exported.
    class Softmaxed(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return torch.softmax(self.inner(x), dim=-1)

    case = CASES["onnx_gru_3l_cls"]
    path = os.path.join(work, "softmax.onnx")
    export_onnx(torch, Softmaxed(make_model(torch, "onnx_gru_3l_cls", 0)).eval(), case, path)
    expect_refused(source, work, onnx.load(path), "softmax", "(op Softmax) is not supported")

    # Heads rnnserve has no readout or head for: other models, exported.
    class OtherHead(torch.nn.Module):
        def __init__(self, pick, head):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
            self.out = head
            self.pick = pick

        def forward(self, x):
            return self.out(self.pick(*self.rnn(x)))

    nn = torch.nn
    for label, pick, head, needles in (
            # The LSTM's cell state c_n rather than h_n.
            ("head_on_c_n", lambda r_out, state: state[1][-1], nn.Linear(4, 2),
             ["(op Gather) is not supported", "final cell state c_n"]),
            # h_n of the first layer rather than the last.
            ("head_on_layer0_h_n", lambda r_out, state: state[0][0], nn.Linear(4, 2),
             ["(op Gemm) is not supported", "final_state readout is the last layer's"]),
            # A mean over the features rather than the steps.
            ("mean_of_features", lambda r_out, state: r_out.mean(dim=2, keepdim=True),
             nn.Linear(1, 2), ["(op ReduceMean) is not supported", "keepdims=0"]),
            ("sum_of_steps", lambda r_out, state: r_out.sum(dim=1), nn.Linear(4, 2),
             ["(op ReduceSum) is not supported"]),
            # An activation after the head's last linear layer.
            ("sigmoid_last", lambda r_out, state: r_out[:, -1],
             nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Sigmoid()),
             ["/out/out.3/Sigmoid (op Sigmoid) is not supported", "after the head's last "
              "linear layer"]),
            # The tanh approximation of GELU.
            ("gelu_tanh", lambda r_out, state: r_out[:, -1],
             nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate="tanh"), nn.Linear(3, 2)),
             ["is not supported"])):
        path = os.path.join(work, label + ".onnx")
        torch.onnx.export(OtherHead(pick, head).eval(), (torch.zeros(2, 5, 3),), path,
                          opset_version=14, input_names=["x"],
                          dynamic_axes={"x": {0: "batch", 1: "steps"}})
        expect_refused(source, work, onnx.load(path), label, *needles)

    def exported(name):
        path = os.path.join(work, name + ".onnx")  # Written by import_cases.
        return onnx.load(path)

    def recurrent_node(model, op):
        node = next(n for n in model.graph.node if n.op_type == op)
        return node

    model = exported("onnx_lstm_2l_bi_cls")
    node = recurrent_node(model, "LSTM")
    node.attribute.append(helper.make_attribute("clip", 3.0))
    expect_refused(source, work, model, "lstm_clip", f"node {node.name} (op LSTM)",
                   "attribute clip")

    model = exported("onnx_gru_1l_reg")
    node = recurrent_node(model, "GRU")
    for a in node.attribute:
        if a.name == "linear_before_reset":
            a.i = 0
    expect_refused(source, work, model, "gru_linear_before_reset",
                   f"node {node.name} (op GRU)", "linear_before_reset must be 1")

    check_embedding_refusals(torch, source, work, exported)

    model = exported("onnx_rnn_relu_2l_reg")
    node = recurrent_node(model, "RNN")
    for a in node.attribute:
        if a.name == "activations":
            a.strings[:] = [b"Sigmoid"]
    expect_refused(source, work, model, "rnn_sigmoid", f"node {node.name} (op RNN)",
                   "activations=['Sigmoid']")


def check_embedding_refusals(torch, source, work, exported):
    """Token-id graphs the import does not understand, refused by node and op."""
    from onnx import helper
    # The table computed by a node (here Mul by 1) rather than stored: the
    # Gather's data is not an initializer.
    model = exported("onnx_emb_lstm_cls")
    gather = next(n for n in model.graph.node if n.op_type == "Gather")
    table = gather.input[0]
    one = helper.make_node("Constant", [], ["one"], name="/embedding/One",
                           value=helper.make_tensor("v", 1, [], [1.0]))
    scale = helper.make_node("Mul", [table, "one"], ["scaled"], name="/embedding/Mul")
    gather.input[0] = "scaled"
    model.graph.node.insert(0, scale)
    model.graph.node.insert(0, one)
    expect_refused(source, work, model, "embedding_table_computed",
                   f"node {gather.name} (op Gather) is not supported",
                   "the embedding table looked up by the token ids, is not a constant")

    # The ids read by something besides the lookup: a padding mask.
    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(11, 4, padding_idx=0)
            self.rnn = torch.nn.LSTM(4, 5, batch_first=True)
            self.out = torch.nn.Linear(5, 3)

        def forward(self, x):
            rows = self.embedding(x) * (x != 0).unsqueeze(-1)
            return self.out(self.rnn(rows)[0][:, -1])

    path = os.path.join(work, "masked.onnx")
    torch.onnx.export(Masked().eval(), (torch.ones(2, 5, dtype=torch.long),), path,
                      opset_version=14, input_names=["x"],
                      dynamic_axes={"x": {0: "batch", 1: "steps"}})
    import onnx
    expect_refused(source, work, onnx.load(path), "ids_in_padding_mask",
                   "(op Equal) is not supported", "it reads the token ids")

    # --padding-idx for a graph without an embedding.
    result = run_export(source, ["--from-onnx", os.path.join(work, "onnx_gru_3l_cls.onnx"),
                                 os.path.join(work, "refused"), "--padding-idx", "0"])
    check(result.returncode == 1 and "--padding-idx: the ONNX graph has no embedding" in
          result.stderr, f"padding_idx_without_embedding: {result.returncode}\n"
          f"{result.stderr}")
    print("refuse: padding_idx_without_embedding: " + result.stderr.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    try:
        import onnx  # noqa: F401
    except ImportError:
        fail("the onnx module is missing: install Debian's python3-onnx (tools/setup.sh)")
    import torch
    torch.set_num_threads(1)
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="rnnserve_onnx_") as work:
        try:
            repo = os.path.join(work, "models")
            os.makedirs(repo)
            models = import_cases(torch, args.source, work, repo)
            check_refusals(torch, args.source, work)
            stubs = os.path.join(work, "stubs")
            os.makedirs(stubs)
            generate_stubs(os.path.join(args.source, "proto"), stubs)
            from rnnserve.v1 import inference_pb2 as pb
            from rnnserve.v1 import inference_pb2_grpc as pb_grpc
            server = start_rnnserve(processes, args.rnnserve, repo, work)
            channel = connected_channel(server.address)
            check_served(torch, pb, pb_grpc.InferenceStub(channel), models)
            channel.close()
        finally:
            processes.stop_all()
    print("onnx import: all checks passed")


if __name__ == "__main__":
    main()
