#!/usr/bin/python3
"""Exports a PyTorch recurrent model to an rnnserve model folder (format v1).

The input is a module with attributes `rnn` (nn.LSTM, nn.GRU or nn.RNN) and
`out` (nn.Linear, or an nn.Sequential of Linear, ReLU, Tanh, Sigmoid, GELU and
Dropout: an MLP head), or the state_dict of such a module. A state_dict does
not hold a Sequential head's activations: --head names its modules. Cell, sizes, layers,
bias and direction are read off the module or inferred from the state_dict's
tensor names and shapes; what neither can tell (task, labels, version) comes
from arguments. The exporter checks the config against the weights, writes
the folder, reads it back and compares outputs with the original.

From Python:
    from export_model import export_model
    export_model(model, "models/my_lstm", task="classification",
                 labels=[...], version="3")

From the shell:
    /usr/bin/python3 tools/export_model.py model_state.pt models/my_lstm \\
        --task classification --model-version 3
    # out = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.2),
    #                     nn.Linear(64, 10)), classifying from h_n:
    /usr/bin/python3 tools/export_model.py model_state.pt models/my_lstm \\
        --task classification --head linear,relu,dropout:0.2,linear \\
        --readout final_state
    /usr/bin/python3 tools/export_model.py --from-onnx model.onnx models/my_lstm
"""

import argparse
import json
import os
import re
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rnnserve_format as fmt  # noqa: E402

_RNN_NAME_RE = re.compile(r"^rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_GATES_TO_CELL = {4: "lstm", 3: "gru"}
_HEAD_NAME_RE = re.compile(r"^out\.(\d+)\.(weight|bias)$")


def parse_head_spec(spec):
    """The modules of an nn.Sequential head from "linear,relu,dropout:0.2,linear"
    (linear, relu, tanh, sigmoid, gelu, dropout[:p]), one per module in order,
    as a list of names and dropout probabilities."""
    modules = []
    for part in spec.split(","):
        name, _, arg = part.strip().partition(":")
        if name == "dropout":
            try:
                modules.append(("dropout", float(arg) if arg else 0.0))
            except ValueError:
                raise fmt.FormatError(f"--head: bad dropout probability {arg!r}") from None
        elif name in ("linear",) + fmt.ACTIVATIONS and not arg:
            modules.append((name, None))
        else:
            raise fmt.FormatError(f"--head: unknown module {part!r}; expected linear, "
                                  f"{', '.join(fmt.ACTIVATIONS)} or dropout[:p]")
    return modules


def _head_from_state_dict(state_dict, head):
    """Config "head" for a state_dict's out.{i}.* tensors and the modules
    `head` names (parse_head_spec's list, or its string)."""
    indices = sorted({int(m.group(1)) for m in map(_HEAD_NAME_RE.match, state_dict) if m})
    if head is None:
        raise fmt.FormatError(
            f"state_dict holds an nn.Sequential head (linear layers at indices {indices}), "
            "whose activations a state_dict does not record: name its modules with "
            "--head, e.g. --head linear,relu,linear")
    if isinstance(head, str):
        head = parse_head_spec(head)
    linears = [i for i, (name, _) in enumerate(head) if name == "linear"]
    if linears != indices:
        raise fmt.FormatError(f"--head puts linear layers at indices {linears}; the "
                              f"state_dict has out.{{i}}.weight for i in {indices}")
    result = []
    for i, (name, arg) in enumerate(head):
        if name == "linear":
            result.append(OrderedDict([("linear", int(state_dict[f"out.{i}.weight"].shape[0]))]))
        elif name == "dropout":
            result.append(OrderedDict([("dropout", arg)]))
        else:
            result.append(OrderedDict([("activation", name)]))
    return result


def config_from_state_dict(state_dict, cell=None, head=None):
    """Infers cell, sizes, layers, bias and direction from tensor shapes.

    A Sequential head (out.{i}.weight) needs `head`, its modules in order
    (parse_head_spec); a single Linear head (out.weight) must not have it.

    A vanilla RNN's nonlinearity is not in its weights: for one-gate weights
    `cell` must say "rnn_tanh" or "rnn_relu". When `cell` is given it must
    agree with the shapes.
    """
    if "rnn.weight_ih_l0" not in state_dict or "rnn.weight_hh_l0" not in state_dict:
        raise fmt.FormatError("state_dict has no rnn.weight_ih_l0 / rnn.weight_hh_l0: "
                              "is the recurrent layer named 'rnn'?")
    sequential = None
    if "out.weight" in state_dict:
        if head is not None:
            raise fmt.FormatError("state_dict has a single nn.Linear head (out.weight); "
                                  "--head is for an nn.Sequential one (out.0.weight, ...)")
    elif any(map(_HEAD_NAME_RE.match, state_dict)):
        sequential = _head_from_state_dict(state_dict, head)
    else:
        raise fmt.FormatError("state_dict has no out.weight or out.0.weight: is the "
                              "head named 'out'?")
    if any(k.startswith("rnn.weight_hr") for k in state_dict):
        raise fmt.FormatError("LSTM with proj_size > 0 (rnn.weight_hr_*) is not supported")
    w_ih, w_hh = state_dict["rnn.weight_ih_l0"], state_dict["rnn.weight_hh_l0"]
    if len(w_hh.shape) != 2 or len(w_ih.shape) != 2:
        raise fmt.FormatError("rnn.weight_ih_l0 and rnn.weight_hh_l0 must be 2-D")
    hidden = int(w_hh.shape[1])
    if hidden < 1 or w_hh.shape[0] % hidden:
        raise fmt.FormatError(f"rnn.weight_hh_l0 shape {list(w_hh.shape)} is not (gates*H, H)")
    gates = w_hh.shape[0] // hidden
    if gates == 1:
        if cell not in ("rnn_tanh", "rnn_relu"):
            raise fmt.FormatError("one-gate weights are a vanilla RNN, whose nonlinearity "
                                  "is not stored in a state_dict: pass cell rnn_tanh or rnn_relu")
    elif gates in _GATES_TO_CELL:
        if cell is not None and cell != _GATES_TO_CELL[gates]:
            raise fmt.FormatError(f"weights have {gates} gates ({_GATES_TO_CELL[gates]}), "
                                  f"not {cell}")
        cell = _GATES_TO_CELL[gates]
    else:
        raise fmt.FormatError(f"rnn.weight_hh_l0 has {gates} gate blocks; "
                              "expected 4 (LSTM), 3 (GRU) or 1 (RNN)")
    layers = set()
    for name in state_dict:
        match = _RNN_NAME_RE.match(name)
        if match:
            layers.add(int(match.group(2)))
    num_layers = max(layers) + 1
    if sequential is None:
        output_size = int(state_dict["out.weight"].shape[0])
    else:
        output_size = [e["linear"] for e in sequential if "linear" in e][-1]
    config = OrderedDict([
        ("cell", cell),
        ("input_size", int(w_ih.shape[1])),
        ("hidden_size", hidden),
        ("num_layers", num_layers),
        ("bidirectional", "rnn.weight_ih_l0_reverse" in state_dict),
        ("bias", "rnn.bias_ih_l0" in state_dict),
        ("output_size", output_size),
    ])
    if sequential is not None:
        config["head"] = sequential
    if "embedding.weight" in state_dict:
        table = state_dict["embedding.weight"]
        if len(table.shape) != 2 or int(table.shape[1]) != config["input_size"]:
            raise fmt.FormatError(f"embedding.weight shape {list(table.shape)} is not "
                                  f"(num_embeddings, input_size {config['input_size']})")
        config["embedding"] = OrderedDict([("num_embeddings", int(table.shape[0])),
                                           ("embedding_dim", int(table.shape[1]))])
    return config


def _reference_outputs(rnn, out, x, task, readout=None, activation=None):
    """Outputs of the original rnn and out layers, whatever their batch_first."""
    # Evaluation mode for the comparison (no dropout), restored afterwards.
    modes = (rnn.training, out.training)
    rnn.eval()
    out.eval()
    try:
        return _reference_run(rnn, out, x, task, readout, activation)
    finally:
        rnn.train(modes[0])
        out.train(modes[1])


def _reference_run(rnn, out, x, task, readout, activation=None):
    with torch.no_grad():
        r_out, state = rnn(x if rnn.batch_first else x.transpose(0, 1))
        if not rnn.batch_first:
            r_out = r_out.transpose(0, 1)
        if task == "classification":
            return [out(fmt.apply_readout(r_out, state, readout, rnn.bidirectional))]
        h = state if isinstance(state, torch.Tensor) else state[0]
        result = [fmt.apply_output_activation(out(r_out), activation), h]
        if not isinstance(state, torch.Tensor):
            result.append(state[1])
        return result


def _folder_outputs(module, x, task):
    with torch.no_grad():
        if task == "classification":
            return [module(x)]
        outputs, state = module(x)
        if isinstance(state, torch.Tensor):
            return [outputs, state]
        return [outputs, state[0], state[1]]


def _rebuild_embedding(config, tensors):
    """An nn.Embedding holding embedding.weight, or None without one."""
    if "embedding" not in config:
        return None
    e = config["embedding"]
    embedding = torch.nn.Embedding(e["num_embeddings"], e["embedding_dim"],
                                   padding_idx=e.get("padding_idx"))
    embedding.load_state_dict({"weight": torch.as_tensor(tensors["embedding.weight"])})
    return embedding.eval()


def _rebuild_original(config, tensors):
    """Plain PyTorch layers holding the given tensors, built independently
    of RecurrentModel, to check the folder against."""
    rnn = fmt.make_rnn(config["cell"], config["input_size"], config["hidden_size"],
                       config["num_layers"], config["bias"], config["bidirectional"])
    directions = 2 if config["bidirectional"] else 1
    out = fmt.make_head(config.get("head"), directions * config["hidden_size"],
                        config["output_size"])
    rnn.load_state_dict({k[4:]: torch.as_tensor(v) for k, v in tensors.items()
                         if k.startswith("rnn.")}, strict=True)
    out.load_state_dict({k[4:]: torch.as_tensor(v) for k, v in tensors.items()
                         if k.startswith("out.")}, strict=True)
    return rnn.eval(), out.eval()


def round_trip(folder, tensors, rnn, out, config, seed=0, atol=1e-6, embedding=None):
    """Reads `folder` back and checks it against the original.

    Every tensor must be bit-identical to `tensors`, and the outputs (logits,
    or per-step outputs and final states) of the reloaded module must match
    those of `rnn`/`out` on random sequences of several lengths. Returns the
    largest absolute difference seen.
    """
    loaded, loaded_cfg = fmt.load_model_folder(folder)
    if loaded_cfg != config:
        raise fmt.FormatError(f"{folder}: config read back differs from the one written")
    _, read = fmt.read_model_folder(folder)
    for name, value in tensors.items():
        if not np.array_equal(read[name], np.asarray(value, dtype=np.float32)):
            raise fmt.FormatError(f"{folder}: tensor {name} differs after the round trip")
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for steps in (1, 3, 17):
        if "embedding" in config:
            # Token ids; the original's rows looked up by its own nn.Embedding.
            vocabulary = config["embedding"]["num_embeddings"]
            x = torch.randint(0, vocabulary, (4, steps), generator=generator)
            with torch.no_grad():
                rows = embedding(x)
        else:
            x = torch.rand(4, steps, config["input_size"], generator=generator) * 2 - 1
            rows = x
        want = _reference_outputs(rnn, out, rows, config["task"], config.get("readout"),
                                  config.get("output_activation"))
        got = _folder_outputs(loaded, x, config["task"])
        for a, b in zip(want, got):
            diff = float((a - b).abs().max())
            worst = max(worst, diff)
            if not diff <= atol:
                raise fmt.FormatError(f"{folder}: outputs differ by {diff} after the round trip")
    return worst


def export_model(source, folder, task, version="1", labels=None, cell=None,
                 description=None, training=None, weights=fmt.DEFAULT_WEIGHTS,
                 metadata=None, check=True, readout=None, head=None,
                 output_activation=None, padding_idx=None, tokenizer=None):
    """Writes the rnnserve model folder `folder` for `source`.

    source: an nn.Module with `rnn` and `out` (and optionally an nn.Embedding
      `embedding` before rnn), or a state_dict (mapping of "rnn.*", "out.*"
      and optionally "embedding.weight" to tensors).
    task: "classification" or "regression". version: string reported to
      clients. labels: optional class names (classification, or regression
      with an output_activation).
    cell: needed only for a vanilla RNN given as a state_dict ("rnn_tanh" or
      "rnn_relu"); otherwise, if given, it must match.
    description, training: optional config entries. weights: weights file name.
    metadata: optional string->string map stored in the safetensors header.
    check: read the folder back and compare with the original (recommended).
    readout: classification only: what the head reads, "last_output" (the
      default, r_out[:, -1]), "final_state" (h_n of the last layer, both
      directions), "mean" or "max" (over the steps of r_out); written to the
      config only when given.
    head: a state_dict's nn.Sequential head only: its modules in order, as
      "linear,relu,dropout:0.2,linear" or parse_head_spec's list. A module's
      Sequential head is read off the module.
    output_activation: regression only: "none", "sigmoid" or "softmax",
      applied to the head's outputs at every step; written only when given.
    padding_idx: a state_dict with embedding.weight only: the nn.Embedding's
      padding_idx, recorded in the config (it does not change the outputs).
    tokenizer: a model with an embedding only: config "tokenizer", how
      clients turn text into its ids ({"type": "characters", "tokens": [...],
      "unknown_id": U, "lowercase": B}); written as given, after checking.

    Returns the config written. Raises rnnserve_format.FormatError (a
    ValueError) on anything that does not fit the format.
    """
    if isinstance(source, torch.nn.Module):
        partial = fmt.config_from_module(source, task)
        if cell is not None and cell != partial["cell"]:
            raise fmt.FormatError(f"module is {partial['cell']}, not {cell}")
        extra = [k for k in source.state_dict()
                 if not (k.startswith("rnn.") or k.startswith("out.")
                         or k == "embedding.weight")]
        if extra:
            raise fmt.FormatError(f"module has parameters outside rnn and out: {extra}; "
                                  "the server would ignore them")
        if head is not None:
            raise fmt.FormatError("head is read off the module; pass it for a state_dict only")
        if padding_idx is not None:
            raise fmt.FormatError("padding_idx is read off the module; pass it for a "
                                  "state_dict only")
        tensors = fmt.module_tensors(source)
        rnn, out = source.rnn, source.out
        embedding = getattr(source, "embedding", None)
    elif isinstance(source, dict):
        partial = config_from_state_dict(source, cell, head)
        if padding_idx is not None:
            if "embedding" not in partial:
                raise fmt.FormatError("padding_idx needs embedding.weight in the state_dict")
            partial["embedding"]["padding_idx"] = padding_idx
        tensors = OrderedDict()
        for name, value in source.items():
            array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if array.dtype.kind != "f":
                raise fmt.FormatError(f"tensor {name} has dtype {array.dtype}; need floats")
            tensors[name] = np.ascontiguousarray(array, dtype=np.float32)
        rnn = out = None
    else:
        raise TypeError("source must be an nn.Module or a state_dict")

    config = OrderedDict([("format_version", fmt.FORMAT_VERSION), ("version", version)])
    config.update(partial)
    config["task"] = task
    if readout is not None:
        config["readout"] = readout
    if output_activation is not None:
        config["output_activation"] = output_activation
    if labels is not None:
        config["labels"] = list(labels)
    config["weights"] = weights
    if description is not None:
        config["description"] = description
    if training is not None:
        config["training"] = training
    if tokenizer is not None:
        config["tokenizer"] = tokenizer
    config = fmt.normalize_config(config)
    fmt.check_weights(config, tensors, source="source model")
    if rnn is None:
        rnn, out = _rebuild_original(config, tensors)
        embedding = _rebuild_embedding(config, tensors)

    written = fmt.write_model_folder(folder, config, tensors, metadata)
    if check:
        round_trip(folder, tensors, rnn, out, written, embedding=embedding)
    return written


def _load_source(path, strip_prefix):
    # weights_only is not in torch 1.13's default; the file is the user's own.
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        if strip_prefix:
            raise fmt.FormatError("--strip-prefix applies to state_dict files only")
        return obj
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise fmt.FormatError(f"{path}: holds a {type(obj).__name__}, not a module or state_dict")
    if strip_prefix:
        obj = OrderedDict((k[len(strip_prefix):] if k.startswith(strip_prefix) else k, v)
                          for k, v in obj.items())
    return obj


def _note_padding_row(tensors, padding_idx):
    """ONNX does not record an nn.Embedding's padding_idx; an all-zero row of
    the table (nn.Embedding zeroes the padding row and training leaves it) is
    only a hint, so the user is told and decides with --padding-idx."""
    table = tensors.get("embedding.weight")
    if table is None:
        if padding_idx is not None:
            raise fmt.FormatError("--padding-idx: the ONNX graph has no embedding lookup "
                                  "(a Gather on a constant table with the token ids)")
        return
    if padding_idx is None:
        zero = [int(i) for i in np.flatnonzero(~np.any(table, axis=1))]
        if zero:
            print(f"export_model: note: embedding row(s) {zero[:5]} are all zeros; ONNX "
                  "does not record padding_idx: if one is the nn.Embedding's, pass "
                  "--padding-idx to record it", file=sys.stderr)


def _load_onnx(path, task, cell, readout, head, padding_idx=None):
    """(tensors, task, cell, readout, head) of an ONNX model; task, cell and
    readout, if given, must agree with the graph; the head comes from it.
    padding_idx, if given, needs an embedding in the graph."""
    import onnx_import
    if head is not None:
        raise fmt.FormatError("--head is read off the ONNX graph; do not give it")
    partial, tensors = onnx_import.import_onnx(path)
    _note_padding_row(tensors, padding_idx)
    graph_readout = partial["readout"]
    if readout is not None and readout != (graph_readout or "last_output"):
        raise fmt.FormatError(f"{path}: --readout {readout}, but the graph reads "
                              f"{graph_readout or 'last_output'}")
    for name, given in (("task", task), ("cell", cell)):
        if given is not None and given != partial[name]:
            raise fmt.FormatError(f"{path}: --{name} {given}, but the graph is "
                                  f"{partial[name]}")
    return (tensors, partial["task"], partial["cell"], readout or graph_readout,
            partial["head"])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The folder's name is the model's name (letters, digits, '_', '-', '.'). "
               "See docs/model-format.md for the format. Exit status 0 on success, "
               "1 if the model does not fit the format, 2 on bad arguments.")
    parser.add_argument("source", nargs="?",
                        help="file written by torch.save(): a state_dict (torch.save("
                             "model.state_dict()), optionally inside a checkpoint dict "
                             "under 'state_dict', 'model_state_dict' or 'model') or a whole "
                             "pickled module (its class must be importable). Names must be "
                             "rnn.* and out.*")
    parser.add_argument("folder", help="output model folder; created, files in it replaced")
    parser.add_argument("--task", choices=fmt.TASKS,
                        help="classification: head on the readout (see --readout); "
                             "regression: head on every step (required, except with "
                             "--from-onnx, where the graph tells and it must agree)")
    parser.add_argument("--readout", choices=fmt.READOUTS,
                        help="classification only: what the head reads. last_output: "
                             "r_out[:, -1, :] (the default when omitted); final_state: h_n "
                             "of the last layer (bidirectional: cat(h_n[-2], h_n[-1])); "
                             "mean / max: mean or elementwise max of r_out over the steps. "
                             "With --from-onnx the graph tells, and it must agree")
    parser.add_argument("--output-activation", choices=fmt.OUTPUT_ACTIVATIONS,
                        help="regression only: applied to the head's outputs at every "
                             "step. none (the default when omitted); sigmoid: "
                             "torch.sigmoid per output; softmax: torch.softmax over the "
                             "step's outputs (per-step class probabilities; --labels may "
                             "then name the classes)")
    parser.add_argument("--head",
                        help="for a state_dict whose head is an nn.Sequential (out.0.weight, "
                             "...): its modules in order, comma-separated, from linear, relu, "
                             "tanh, sigmoid, gelu (exact erf form) and dropout[:p] (ignored "
                             "when serving); e.g. linear,relu,dropout:0.2,linear for "
                             "Sequential(Linear, ReLU, Dropout(0.2), Linear). Widths come from "
                             "the tensors. A pickled module's head is read off the module, "
                             "an ONNX graph's off the graph")
    parser.add_argument("--model-version", default="1",
                        help="config 'version', the model version reported to clients "
                             "(default: %(default)s)")
    parser.add_argument("--cell", choices=fmt.CELLS,
                        help="recurrent cell; inferred from the weights except a vanilla "
                             "RNN's nonlinearity in a state_dict, where it is required "
                             "(rnn_tanh or rnn_relu). If given it must match")
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("--labels", help="comma-separated class names, one per output "
                                         "(classification, or regression with "
                                         "--output-activation)")
    labels.add_argument("--labels-file", help="file with one class name per line")
    parser.add_argument("--description", help="config 'description' (optional)")
    parser.add_argument("--training-json",
                        help="JSON object stored as config 'training' (free-form notes: "
                             "dataset, epochs, accuracy...), or @file to read it from a file")
    parser.add_argument("--weights", default=fmt.DEFAULT_WEIGHTS,
                        help="weights file name inside the folder (default: %(default)s)")
    parser.add_argument("--strip-prefix", default="",
                        help="remove this prefix from state_dict names first, e.g. "
                             "'module.' for a DataParallel checkpoint")
    parser.add_argument("--from-onnx", metavar="MODEL.onnx",
                        help="read the model from an ONNX file (as torch.onnx.export "
                             "writes it: optionally an nn.Embedding, LSTM/GRU/RNN layers "
                             "and a Linear or MLP head) instead of SOURCE; anything else is "
                             "refused naming the node")
    parser.add_argument("--padding-idx", type=int,
                        help="a state_dict with embedding.weight, or an ONNX graph with an "
                             "embedding lookup: the nn.Embedding's padding_idx, recorded in "
                             "the config (a module's is read off it; ONNX does not record it)")
    parser.add_argument("--tokenizer", metavar="JSON_FILE",
                        help="a model with an embedding: a JSON file holding config "
                             "\"tokenizer\" (type \"characters\", tokens, unknown_id, "
                             "lowercase), so that clients can send text; see "
                             "docs/model-format.md")
    parser.add_argument("--no-check", action="store_true",
                        help="skip reading the folder back and comparing outputs")
    args = parser.parse_args(argv)
    if (args.source is None) == (args.from_onnx is None):
        parser.error("give either SOURCE or --from-onnx MODEL.onnx")
    if args.task is None and args.from_onnx is None:
        parser.error("the following arguments are required: --task")

    label_list = None
    if args.labels is not None:
        label_list = args.labels.split(",")
    elif args.labels_file is not None:
        with open(args.labels_file, encoding="utf-8") as f:
            label_list = [line.rstrip("\n") for line in f if line.strip()]
    training = None
    if args.training_json is not None:
        text = args.training_json
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        training = json.loads(text)
    tokenizer = None
    if args.tokenizer is not None:
        with open(args.tokenizer, encoding="utf-8") as f:
            tokenizer = json.load(f)
    try:
        if args.from_onnx is not None:
            source, args.task, args.cell, args.readout, args.head = _load_onnx(
                args.from_onnx, args.task, args.cell, args.readout, args.head,
                args.padding_idx)
        else:
            source = _load_source(args.source, args.strip_prefix)
        config = export_model(source, args.folder, args.task, version=args.model_version,
                              labels=label_list, cell=args.cell,
                              description=args.description, training=training,
                              weights=args.weights, check=not args.no_check,
                              readout=args.readout, head=args.head,
                              output_activation=args.output_activation,
                              padding_idx=args.padding_idx, tokenizer=tokenizer)
    except fmt.FormatError as e:
        print(f"export_model: {e}", file=sys.stderr)
        return 1
    shapes = fmt.expected_tensor_shapes(config)
    print(f"wrote {args.folder}: {config['cell']} {config['num_layers']} layer(s), "
          f"hidden {config['hidden_size']}, {config['task']}, {len(shapes)} tensors"
          + ("" if args.no_check else ", round trip OK"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
