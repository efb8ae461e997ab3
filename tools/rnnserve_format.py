#!/usr/bin/python3
"""The rnnserve model folder format (v1), from the PyTorch side.

A model folder holds config.json and a safetensors weights file whose tensor
names are PyTorch's state_dict() names of a module with a recurrent layer
`rnn` (nn.LSTM / nn.GRU / nn.RNN, batch_first=True) and a linear head `out`.
docs/model-format.md is the specification; this module writes and reads it.

Contents:
  write_safetensors / read_safetensors   the file format (strict reader)
  normalize_config                       checks a config, fills defaults
  expected_tensor_shapes                 name -> shape for a config
  RecurrentModel, build_module           the PyTorch module for a config
  config_from_module                     infers cell and sizes from a module
  write_model_folder / load_model_folder the folder, both ways

Used by tools/export_model.py, tools/train_seed_models.py and
tools/make_goldens.py. Importing it needs numpy; the module helpers need torch.
"""

import json
import math
import os
import re
import struct
from collections import OrderedDict

import numpy as np

FORMAT_VERSION = 1
DEFAULT_WEIGHTS = "model.safetensors"
CONFIG_FILE = "config.json"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # The server refuses larger headers.

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
TASKS = ("classification", "regression")
READOUTS = ("last_output", "final_state", "mean", "max")
# Config "output_activation" of a stream (regression) model: applied to the
# head's outputs at every step.
OUTPUT_ACTIVATIONS = ("none", "sigmoid", "softmax")
# A Sequential head's activations, as config "head" names them.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
MAX_HEAD_LAYERS = 64
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

# Keys of config.json in the order they are written.
CONFIG_KEYS = ("format_version", "version", "cell", "input_size",
               "hidden_size", "num_layers", "bidirectional", "bias",
               "output_size", "task", "readout", "head", "labels", "weights",
               "description", "training",
               "output_activation", "embedding", "tokenizer")

_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

# safetensors dtype -> little-endian numpy dtype.
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


class FormatError(ValueError):
    """A file, config or module that does not follow the format."""


# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------

def _dtype_name(array):
    for name, dtype in _DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            return name
    raise FormatError(f"unsupported dtype {array.dtype} for safetensors")


def _to_numpy(value):
    """A torch tensor or array-like as a C-ordered numpy array."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch.
        value = value.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(np.asarray(value))


def encode_safetensors(tensors, metadata=None):
    """Returns the bytes of a safetensors file.

    tensors: mapping name -> numpy array or torch tensor, written in the
    mapping's order, packed contiguously. metadata: optional mapping of
    strings to strings, stored as "__metadata__". The header is padded with
    spaces so that the data buffer starts on an 8-byte boundary.
    """
    header = OrderedDict()
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise FormatError("__metadata__ must map strings to strings")
        header["__metadata__"] = OrderedDict(metadata)
    chunks = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise FormatError(f"bad tensor name {name!r}")
        array = _to_numpy(value)
        dtype_name = _dtype_name(array)
        data = array.astype(_DTYPES[dtype_name], copy=False).tobytes(order="C")
        header[name] = OrderedDict([
            ("dtype", dtype_name),
            ("shape", [int(d) for d in array.shape]),
            ("data_offsets", [offset, offset + len(data)]),
        ])
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    raw = text.encode("utf-8")
    raw += b" " * ((-(8 + len(raw))) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(chunks)


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` (see encode_safetensors) to `path`."""
    blob = encode_safetensors(tensors, metadata)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def _reject_duplicates(pairs):
    result = OrderedDict()
    for key, value in pairs:
        if key in result:
            raise FormatError(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def decode_safetensors(blob, source="<bytes>"):
    """Parses safetensors bytes strictly, as the server does.

    Returns (tensors, metadata): an OrderedDict name -> numpy array (in the
    header's order) and a dict of strings (empty when absent). Raises
    FormatError on a truncated file, a header over 100 MiB or past the end of
    the file, malformed JSON, unknown dtypes, offsets outside the buffer,
    sizes that do not match the shape, gaps or overlaps.
    """
    if len(blob) < 8:
        raise FormatError(f"{source}: truncated: {len(blob)} bytes, no header length")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > MAX_HEADER_BYTES:
        raise FormatError(f"{source}: header length {header_len} exceeds 100 MiB")
    if 8 + header_len > len(blob):
        raise FormatError(f"{source}: header length {header_len} runs past the "
                          f"end of the {len(blob)}-byte file")
    try:
        header = json.loads(blob[8:8 + header_len].decode("utf-8"),
                            object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{source}: malformed header JSON: {e}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{source}: header is not a JSON object")
    data = blob[8 + header_len:]
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise FormatError(f"{source}: __metadata__ must map strings to strings")
    spans = []
    entries = OrderedDict()
    for name, entry in header.items():
        where = f"{source}: tensor {name!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{where}: entry must have exactly dtype, shape, data_offsets")
        dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype_name not in _DTYPES:
            raise FormatError(f"{where}: unsupported dtype {dtype_name!r}")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise FormatError(f"{where}: shape must be a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise FormatError(f"{where}: data_offsets must be [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= len(data):
            raise FormatError(f"{where}: data_offsets {offsets} outside the "
                              f"{len(data)}-byte data buffer")
        dtype = _DTYPES[dtype_name]
        if end - begin != dtype.itemsize * math.prod(shape):
            raise FormatError(f"{where}: {end - begin} bytes for shape {shape} {dtype_name}")
        spans.append((begin, end, name))
        entries[name] = (dtype, shape, begin, end)
    position = 0
    for begin, end, name in sorted(spans):
        if begin < position:
            raise FormatError(f"{source}: tensor {name!r} overlaps another tensor")
        if begin > position:
            raise FormatError(f"{source}: gap in the data buffer before tensor {name!r}")
        position = end
    if position != len(data):
        raise FormatError(f"{source}: {len(data) - position} bytes at the end of the "
                          "data buffer belong to no tensor")
    tensors = OrderedDict()
    for name, (dtype, shape, begin, end) in entries.items():
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors, dict(metadata)


def read_safetensors(path):
    """Reads a safetensors file; see decode_safetensors."""
    with open(path, "rb") as f:
        blob = f.read()
    return decode_safetensors(blob, source=path)


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_model_name(name):
    """Raises FormatError unless `name` is a valid model (folder) name."""
    if not isinstance(name, str) or not _MODEL_NAME_RE.match(name) or set(name) == {"."}:
        raise FormatError(f"model name {name!r} must use only letters, digits, "
                          "'_', '-', '.' (and not be '.' or '..')")


def normalize_config(config):
    """Checks a config dict against the format; returns a copy with defaults.

    The result has every key of CONFIG_KEYS that has a default, in that order
    (labels, description, training only when present).
    """
    if not isinstance(config, dict):
        raise FormatError("config must be a JSON object")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise FormatError(f"config: unknown keys {unknown}")

    def need(key):
        if key not in config:
            raise FormatError(f"config: missing required key {key!r}")
        return config[key]

    def positive_int(key, default=None):
        value = config.get(key, default) if default is not None else need(key)
        if not _is_int(value) or value < 1:
            raise FormatError(f"config: {key!r} must be an integer >= 1, got {value!r}")
        return value

    def boolean(key, default):
        value = config.get(key, default)
        if not isinstance(value, bool):
            raise FormatError(f"config: {key!r} must be true or false, got {value!r}")
        return value

    out = OrderedDict()
    fv = need("format_version")
    if not _is_int(fv) or fv != FORMAT_VERSION:
        raise FormatError(f"config: 'format_version' must be {FORMAT_VERSION}, got {fv!r}")
    out["format_version"] = fv
    version = need("version")
    if not isinstance(version, str) or not version:
        raise FormatError("config: 'version' must be a non-empty string")
    out["version"] = version
    cell = need("cell")
    if cell not in CELLS:
        raise FormatError(f"config: 'cell' must be one of {list(CELLS)}, got {cell!r}")
    out["cell"] = cell
    out["input_size"] = positive_int("input_size")
    out["hidden_size"] = positive_int("hidden_size")
    out["num_layers"] = positive_int("num_layers", 1)
    out["bidirectional"] = boolean("bidirectional", False)
    out["bias"] = boolean("bias", True)
    out["output_size"] = positive_int("output_size")
    task = need("task")
    if task not in TASKS:
        raise FormatError(f"config: 'task' must be one of {list(TASKS)}, got {task!r}")
    out["task"] = task
    if out["bidirectional"] and task != "classification":
        raise FormatError("config: 'bidirectional' is only allowed with task classification")
    if "readout" in config:
        if task != "classification":
            raise FormatError("config: 'readout' is only allowed with task classification")
        if config["readout"] not in READOUTS:
            raise FormatError(f"config: 'readout' must be one of {list(READOUTS)}, "
                              f"got {config['readout']!r}")
        out["readout"] = config["readout"]
    if "output_activation" in config:
        if task != "regression":
            raise FormatError("config: 'output_activation' is only allowed with task "
                              "regression (classification applies softmax itself)")
        if config["output_activation"] not in OUTPUT_ACTIVATIONS:
            raise FormatError("config: 'output_activation' must be one of "
                              f"{list(OUTPUT_ACTIVATIONS)}, got {config['output_activation']!r}")
        out["output_activation"] = config["output_activation"]
    if "head" in config:
        out["head"] = _normalize_head(config["head"], out["output_size"])
    if "labels" in config:
        labels = config["labels"]
        if task != "classification" and out.get("output_activation", "none") == "none":
            raise FormatError("config: 'labels' is only allowed with task classification "
                              "or with an 'output_activation'")
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise FormatError("config: 'labels' must be an array of strings")
        if len(labels) != out["output_size"]:
            raise FormatError(f"config: 'labels' has {len(labels)} entries, "
                              f"output_size is {out['output_size']}")
        out["labels"] = list(labels)
    weights = config.get("weights", DEFAULT_WEIGHTS)
    if (not isinstance(weights, str) or not weights or weights in (".", "..")
            or "/" in weights or "\\" in weights or "\0" in weights):
        raise FormatError(f"config: 'weights' must be a plain file name, got {weights!r}")
    out["weights"] = weights
    if "description" in config:
        if not isinstance(config["description"], str):
            raise FormatError("config: 'description' must be a string")
        out["description"] = config["description"]
    if "training" in config:
        if not isinstance(config["training"], dict):
            raise FormatError("config: 'training' must be a JSON object")
        out["training"] = config["training"]
    if "embedding" in config:
        out["embedding"] = _normalize_embedding(config["embedding"], out["input_size"])
    if "tokenizer" in config:
        if "embedding" not in out:
            raise FormatError("config: 'tokenizer' is only allowed with an 'embedding'")
        out["tokenizer"] = _normalize_tokenizer(config["tokenizer"],
                                                out["embedding"]["num_embeddings"])
    return out


def _normalize_tokenizer(tokenizer, vocabulary):
    """Checks config "tokenizer" (how text becomes token ids); returns a copy."""
    if not isinstance(tokenizer, dict):
        raise FormatError("config: 'tokenizer' must be an object {type, tokens, unknown_id "
                          f"(optional), lowercase (optional)}}, got {tokenizer!r}")
    unknown = sorted(set(tokenizer) - {"type", "tokens", "unknown_id", "lowercase"})
    if unknown:
        raise FormatError(f"config: 'tokenizer' has unknown keys {unknown}")
    if tokenizer.get("type") != "characters":
        raise FormatError("config: 'tokenizer' 'type' must be \"characters\", got "
                          f"{tokenizer.get('type')!r}")
    out = OrderedDict([("type", "characters")])
    unknown_id = tokenizer.get("unknown_id")
    if unknown_id is not None and (not _is_int(unknown_id) or not 0 <= unknown_id < vocabulary):
        raise FormatError(f"config: 'tokenizer' 'unknown_id' must be an integer in "
                          f"[0, {vocabulary}), got {unknown_id!r}")
    tokens = tokenizer.get("tokens")
    if not isinstance(tokens, list) or len(tokens) != vocabulary:
        raise FormatError(f"config: 'tokenizer' 'tokens' must be an array of "
                          f"'num_embeddings' ({vocabulary}) strings")
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or (i != unknown_id and len(token) != 1):
            raise FormatError(f"config: 'tokenizer' 'tokens'[{i}] must be one character "
                              f"(any string at 'unknown_id'), got {token!r}")
    characters = [t for i, t in enumerate(tokens) if i != unknown_id]
    if len(set(characters)) != len(characters):
        raise FormatError("config: 'tokenizer' 'tokens' names a character twice")
    out["tokens"] = list(tokens)
    if unknown_id is not None:
        out["unknown_id"] = unknown_id
    lowercase = tokenizer.get("lowercase", False)
    if not isinstance(lowercase, bool):
        raise FormatError(f"config: 'tokenizer' 'lowercase' must be true or false, got "
                          f"{lowercase!r}")
    out["lowercase"] = lowercase
    return out


def _normalize_embedding(embedding, input_size):
    """Checks config "embedding" (an nn.Embedding before the rnn); returns a copy."""
    if not isinstance(embedding, dict):
        raise FormatError("config: 'embedding' must be an object {num_embeddings, "
                          f"embedding_dim, padding_idx (optional)}}, got {embedding!r}")
    unknown = sorted(set(embedding) - {"num_embeddings", "embedding_dim", "padding_idx"})
    if unknown:
        raise FormatError(f"config: 'embedding' has unknown keys {unknown}")
    out = OrderedDict()
    for key in ("num_embeddings", "embedding_dim"):
        value = embedding.get(key)
        if not _is_int(value) or value < 1:
            raise FormatError(f"config: 'embedding' {key!r} must be an integer >= 1, "
                              f"got {value!r}")
        out[key] = value
    if out["embedding_dim"] != input_size:
        raise FormatError(f"config: 'embedding' 'embedding_dim' {out['embedding_dim']} must "
                          f"equal 'input_size' {input_size}")
    if "padding_idx" in embedding:
        p = embedding["padding_idx"]
        if not _is_int(p) or not 0 <= p < out["num_embeddings"]:
            raise FormatError(f"config: 'embedding' 'padding_idx' must be an integer in "
                              f"[0, {out['num_embeddings']}), got {p!r}")
        out["padding_idx"] = p
    return out


def _normalize_head(head, output_size):
    """Checks config "head" (the modules of an nn.Sequential); returns a copy."""
    forms = ("{'linear': width}, {'activation': 'relu'|'tanh'|'sigmoid'|'gelu'} "
             "or {'dropout': p}")
    if not isinstance(head, list) or not head or len(head) > MAX_HEAD_LAYERS:
        raise FormatError(f"config: 'head' must be a list of 1 to {MAX_HEAD_LAYERS} "
                          f"modules, each {forms}")
    result, last_linear = [], None
    for i, entry in enumerate(head):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise FormatError(f"config: 'head'[{i}] must be {forms}, got {entry!r}")
        (key, value), = entry.items()
        if key == "linear":
            if not _is_int(value) or not 1 <= value <= 65536:
                raise FormatError(f"config: 'head'[{i}] 'linear' must be an integer "
                                  f"in [1, 65536], got {value!r}")
            last_linear = i
        elif key == "activation":
            if value not in ACTIVATIONS:
                raise FormatError(f"config: 'head'[{i}] 'activation' must be one of "
                                  f"{list(ACTIVATIONS)}, got {value!r}")
        elif key == "dropout":
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not 0 <= value < 1):
                raise FormatError(f"config: 'head'[{i}] 'dropout' must be a number in "
                                  f"[0, 1), got {value!r}")
        else:
            raise FormatError(f"config: 'head'[{i}] must be {forms}, got key {key!r}")
        result.append(OrderedDict([(key, value)]))
    if last_linear is None:
        raise FormatError("config: 'head' must hold at least one {'linear': width}")
    for i in range(last_linear + 1, len(head)):
        if "dropout" not in head[i]:
            raise FormatError(f"config: 'head'[{i}] follows the last linear layer; the "
                              "head must end with its linear layer of width output_size")
    if head[last_linear]["linear"] != output_size:
        raise FormatError(f"config: 'head'[{last_linear}], the last linear layer, has "
                          f"width {head[last_linear]['linear']}, expected output_size "
                          f"{output_size}")
    return result


def expected_tensor_shapes(config):
    """OrderedDict tensor name -> shape tuple, in PyTorch's state_dict order."""
    cfg = normalize_config(config)
    gates, hidden = GATES[cfg["cell"]], cfg["hidden_size"]
    directions = 2 if cfg["bidirectional"] else 1
    shapes = OrderedDict()
    if "embedding" in cfg:
        shapes["embedding.weight"] = (cfg["embedding"]["num_embeddings"], cfg["input_size"])
    for layer in range(cfg["num_layers"]):
        width = cfg["input_size"] if layer == 0 else directions * hidden
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            shapes["rnn.weight_ih" + suffix] = (gates * hidden, width)
            shapes["rnn.weight_hh" + suffix] = (gates * hidden, hidden)
            if cfg["bias"]:
                shapes["rnn.bias_ih" + suffix] = (gates * hidden,)
                shapes["rnn.bias_hh" + suffix] = (gates * hidden,)
    if "head" not in cfg:
        shapes["out.weight"] = (cfg["output_size"], directions * hidden)
        shapes["out.bias"] = (cfg["output_size"],)
        return shapes
    width = directions * hidden
    for i, entry in enumerate(cfg["head"]):
        if "linear" in entry:
            shapes[f"out.{i}.weight"] = (entry["linear"], width)
            shapes[f"out.{i}.bias"] = (entry["linear"],)
            width = entry["linear"]
    return shapes


def check_weights(config, tensors, source="weights"):
    """Raises FormatError unless `tensors` (name -> array) are exactly the
    tensors the config asks for: same names, shapes, float32, all finite."""
    expected = expected_tensor_shapes(config)
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise FormatError(f"{source}: missing tensors {missing}")
    extra = [n for n in tensors if n not in expected]
    if extra:
        raise FormatError(f"{source}: unexpected tensors {extra}")
    for name, shape in expected.items():
        array = _to_numpy(tensors[name])
        if array.dtype != np.float32:
            raise FormatError(f"{source}: tensor {name!r} is {array.dtype}, must be float32 (F32)")
        if tuple(array.shape) != tuple(shape):
            raise FormatError(f"{source}: tensor {name!r} has shape {list(array.shape)}, "
                              f"config wants {list(shape)}")
        if not np.all(np.isfinite(array)):
            raise FormatError(f"{source}: tensor {name!r} has non-finite values")


# ---------------------------------------------------------------------------
# PyTorch side
# ---------------------------------------------------------------------------

def _torch():
    import torch  # Imported late: the safetensors half needs only numpy.
    return torch


def make_rnn(cell, input_size, hidden_size, num_layers=1, bias=True,
             bidirectional=False):
    """The PyTorch recurrent layer for a cell name, batch_first=True."""
    nn = _torch().nn
    kwargs = dict(input_size=input_size, hidden_size=hidden_size,
                  num_layers=num_layers, bias=bias, batch_first=True,
                  bidirectional=bidirectional)
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    if cell == "gru":
        return nn.GRU(**kwargs)
    if cell in ("rnn_tanh", "rnn_relu"):
        return nn.RNN(nonlinearity=cell[4:], **kwargs)
    raise FormatError(f"unknown cell {cell!r}")


def make_head(head, in_features, output_size):
    """The `out` module: nn.Linear without a config "head", else the
    nn.Sequential it lists (nn.GELU in its exact erf form)."""
    nn = _torch().nn
    if head is None:
        return nn.Linear(in_features, output_size)
    modules, width = [], in_features
    for entry in head:
        (key, value), = entry.items()
        if key == "linear":
            modules.append(nn.Linear(width, value))
            width = value
        elif key == "dropout":
            modules.append(nn.Dropout(value))
        else:
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                            "gelu": nn.GELU}[value]())
    return nn.Sequential(*modules)


def apply_readout(r_out, state_n, readout, bidirectional):
    """What a classification head reads, for config "readout" (a batch of
    sequences all of their full length)."""
    torch = _torch()
    if readout in (None, "last_output"):
        return r_out[:, -1, :]
    if readout == "final_state":
        h = state_n if isinstance(state_n, torch.Tensor) else state_n[0]
        return torch.cat((h[-2], h[-1]), dim=1) if bidirectional else h[-1]
    if readout == "mean":
        return r_out.mean(dim=1)
    if readout == "max":
        return r_out.max(dim=1).values
    raise FormatError(f"unknown readout {readout!r}")


def apply_output_activation(outputs, activation):
    """A stream model's outputs after its config "output_activation":
    torch.sigmoid, torch.softmax over the last dimension, or as they are."""
    torch = _torch()
    if activation in (None, "none"):
        return outputs
    if activation == "sigmoid":
        return torch.sigmoid(outputs)
    if activation == "softmax":
        return torch.softmax(outputs, dim=-1)
    raise FormatError(f"unknown output_activation {activation!r}")


def _define_recurrent_model():
    torch = _torch()

    class RecurrentModel(torch.nn.Module):
        """The module a model folder describes: `rnn` then `out`.

        forward(x) with x of shape (batch, steps, input_size):
          classification: returns logits (batch, output_size) = out(readout),
            the readout r_out[:, -1, :] unless config "readout" says
            otherwise (apply_readout).
          regression: forward(x, state=None) returns (outputs, state_n) with
            outputs (batch, steps, output_size) = out(r_out), after config
            "output_activation" when there is one, and state_n the
            final state: h_n, or (h_n, c_n) for LSTM, each
            (num_layers * directions, batch, hidden).
        """

        def __init__(self, config):
            super().__init__()
            cfg = normalize_config(config)
            self.config = cfg
            self.task = cfg["task"]
            directions = 2 if cfg["bidirectional"] else 1
            if "embedding" in cfg:
                e = cfg["embedding"]
                self.embedding = torch.nn.Embedding(e["num_embeddings"], e["embedding_dim"],
                                                    padding_idx=e.get("padding_idx"))
            self.rnn = make_rnn(cfg["cell"], cfg["input_size"], cfg["hidden_size"],
                                cfg["num_layers"], cfg["bias"], cfg["bidirectional"])
            self.out = make_head(cfg.get("head"), directions * cfg["hidden_size"],
                                 cfg["output_size"])

        def embed(self, x):
            """Token ids (batch, steps) to rows of embedding.weight, if it has one."""
            return self.embedding(x) if hasattr(self, "embedding") else x

        def run(self, x, state=None):
            """(head applied at every step, final state), whatever the task."""
            x = self.embed(x)
            r_out, state_n = self.rnn(x, state)
            return self.out(r_out), state_n

        def forward(self, x, state=None):
            x = self.embed(x)
            r_out, state_n = self.rnn(x, state)
            if self.task == "classification":
                return self.out(apply_readout(r_out, state_n, self.config.get("readout"),
                                              self.config["bidirectional"]))
            outputs = apply_output_activation(self.out(r_out),
                                              self.config.get("output_activation"))
            return outputs, state_n

    return RecurrentModel


_recurrent_model_class = None


def recurrent_model_class():
    """The RecurrentModel class (defined on first use, needs torch)."""
    global _recurrent_model_class
    if _recurrent_model_class is None:
        _recurrent_model_class = _define_recurrent_model()
    return _recurrent_model_class


def build_module(config):
    """A RecurrentModel for `config` with PyTorch's default random init."""
    return recurrent_model_class()(config)


def config_from_module(module, task, output_size=None):
    """Partial config (cell, sizes, layers, bias, bidirectional, output_size)
    read off a module's `rnn` and `out` attributes."""
    nn = _torch().nn
    rnn, out = getattr(module, "rnn", None), getattr(module, "out", None)
    if rnn is None or out is None:
        raise FormatError("module must have attributes 'rnn' and 'out'")
    if isinstance(rnn, nn.LSTM):
        if getattr(rnn, "proj_size", 0):
            raise FormatError("LSTM with proj_size > 0 is not supported")
        cell = "lstm"
    elif isinstance(rnn, nn.GRU):
        cell = "gru"
    elif isinstance(rnn, nn.RNN):
        cell = "rnn_" + rnn.nonlinearity
    else:
        raise FormatError(f"module.rnn is {type(rnn).__name__}; need nn.LSTM, nn.GRU or nn.RNN")
    directions = 2 if rnn.bidirectional else 1
    head = head_from_module(out, directions * rnn.hidden_size)
    if head is None:
        out_features = out.out_features
    else:
        widths = [entry["linear"] for entry in head if "linear" in entry]
        if not widths:
            raise FormatError("module.out holds no nn.Linear")
        out_features = widths[-1]
    if output_size is not None and output_size != out_features:
        raise FormatError(f"output_size {output_size} != the head's output width "
                          f"{out_features}")
    config = OrderedDict([
        ("cell", cell), ("input_size", rnn.input_size), ("hidden_size", rnn.hidden_size),
        ("num_layers", rnn.num_layers), ("bidirectional", bool(rnn.bidirectional)),
        ("bias", bool(rnn.bias)), ("output_size", out_features), ("task", task),
    ])
    if head is not None:
        config["head"] = head
    embedding = getattr(module, "embedding", None)
    if embedding is not None:
        if not isinstance(embedding, nn.Embedding):
            raise FormatError(f"module.embedding is {type(embedding).__name__}; need "
                              "nn.Embedding")
        if embedding.embedding_dim != rnn.input_size:
            raise FormatError(f"module.embedding has embedding_dim {embedding.embedding_dim}; "
                              f"module.rnn reads input_size {rnn.input_size}")
        if embedding.max_norm is not None:
            raise FormatError("module.embedding has max_norm set (it rewrites rows at "
                              "lookup); not supported")
        config["embedding"] = OrderedDict([("num_embeddings", embedding.num_embeddings),
                                           ("embedding_dim", embedding.embedding_dim)])
        if embedding.padding_idx is not None:
            config["embedding"]["padding_idx"] = embedding.padding_idx
    return config


def head_from_module(out, in_features):
    """None for an nn.Linear `out`; the config "head" list for an
    nn.Sequential of Linear, ReLU, Tanh, Sigmoid, GELU and Dropout."""
    nn = _torch().nn
    if isinstance(out, nn.Linear):
        _check_linear("module.out", out, in_features)
        return None
    if not isinstance(out, nn.Sequential):
        raise FormatError(f"module.out is {type(out).__name__}; need nn.Linear or "
                          "nn.Sequential")
    head, width = [], in_features
    for i, layer in enumerate(out):
        if isinstance(layer, nn.Linear):
            _check_linear(f"module.out[{i}]", layer, width)
            head.append(OrderedDict([("linear", layer.out_features)]))
            width = layer.out_features
        elif isinstance(layer, nn.Dropout):
            head.append(OrderedDict([("dropout", float(layer.p))]))
        elif isinstance(layer, nn.GELU):
            if getattr(layer, "approximate", "none") != "none":
                raise FormatError(f"module.out[{i}] is nn.GELU(approximate="
                                  f"{layer.approximate!r}); only the exact form is supported")
            head.append(OrderedDict([("activation", "gelu")]))
        elif type(layer) in (nn.ReLU, nn.Tanh, nn.Sigmoid):
            head.append(OrderedDict([("activation", type(layer).__name__.lower())]))
        else:
            raise FormatError(f"module.out[{i}] is {type(layer).__name__}; a head may hold "
                              "Linear, ReLU, Tanh, Sigmoid, GELU and Dropout")
    return head


def _check_linear(where, layer, in_features):
    if layer.bias is None:
        raise FormatError(f"{where} must have a bias (nn.Linear(..., bias=True))")
    if layer.in_features != in_features:
        raise FormatError(f"{where} takes {layer.in_features} inputs; what it reads is "
                          f"{in_features} wide")


def module_tensors(module):
    """OrderedDict of the module's embedding.*, rnn.* and out.* tensors as
    float32 numpy."""
    tensors = OrderedDict()
    prefixes = ("embedding", "rnn", "out") if hasattr(module, "embedding") else ("rnn", "out")
    for prefix in prefixes:
        for name, value in getattr(module, prefix).state_dict().items():
            tensors[f"{prefix}.{name}"] = _to_numpy(value).astype(np.float32)
    return tensors


def write_model_folder(folder, config, tensors, metadata=None):
    """Writes config.json and the weights file into `folder` (created).

    config: dict (checked, defaults filled and written explicitly).
    tensors: name -> array/tensor, or a module with `rnn` and `out`.
    Tensors are written in PyTorch's state_dict order. Returns the
    normalized config.
    """
    check_model_name(os.path.basename(os.path.normpath(folder)))
    cfg = normalize_config(config)
    if not isinstance(tensors, dict):
        tensors = module_tensors(tensors)
    tensors = OrderedDict((k, _to_numpy(v)) for k, v in tensors.items())
    check_weights(cfg, tensors)
    ordered = OrderedDict((n, tensors[n]) for n in expected_tensor_shapes(cfg))
    os.makedirs(folder, exist_ok=True)
    meta = {"format": "pt", "producer": "rnnserve tools/rnnserve_format.py"}
    meta.update(metadata or {})
    write_safetensors(os.path.join(folder, cfg["weights"]), ordered, meta)
    tmp = os.path.join(folder, CONFIG_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, os.path.join(folder, CONFIG_FILE))
    return cfg


def read_model_folder(folder):
    """(normalized config, tensors) of a folder, checked like the server does."""
    check_model_name(os.path.basename(os.path.normpath(folder)))
    path = os.path.join(folder, CONFIG_FILE)
    with open(path, "rb") as f:
        try:
            config = json.loads(f.read().decode("utf-8"), object_pairs_hook=_reject_duplicates)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{path}: malformed JSON: {e}") from None
    try:
        cfg = normalize_config(config)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None
    weights_path = os.path.join(folder, cfg["weights"])
    tensors, _ = read_safetensors(weights_path)
    check_weights(cfg, tensors, source=weights_path)
    return cfg, tensors


def load_model_folder(folder):
    """A RecurrentModel (eval mode) with the folder's weights, and its config."""
    torch = _torch()
    cfg, tensors = read_model_folder(folder)
    module = build_module(cfg)
    state = OrderedDict((n, torch.from_numpy(a)) for n, a in tensors.items())
    module.load_state_dict(state, strict=True)
    module.eval()
    return module, cfg
