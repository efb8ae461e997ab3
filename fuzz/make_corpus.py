#!/usr/bin/python3
"""Writes the fuzzers' seed corpus, fuzz/corpus/<target>/, from real files.

  json                the bundled models' configs, a safetensors header and
                      a few documents with every kind of value
  safetensors         small weights and golden files of tests/goldens, and
                      tiny files with every dtype, metadata, a scalar and an
                      empty tensor
  model_config        every config.json of models/ and tests/goldens
  model_loader        config.json, the loader fuzzer's separator, weights:
                      the small seed and golden models, and tiny models of
                      each cell made here
  request_validation  ClassifyRequest and RegressRequest messages encoded by
                      Debian's protoc from text, for the fuzzer's fixed model
                      (input_size 3)

Deterministic: run it again and nothing changes. Files above 8 KB are left
out, since libFuzzer's default input size follows the largest seed. Needs
numpy and protoc (tools/setup.sh installs both).

  fuzz/make_corpus.py        # from the repository root or anywhere
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import rnnserve_format as fmt  # noqa: E402

CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED_BYTES = 8 * 1024
# Must match kFileSeparator in fuzz/model_loader_fuzzer.cc.
LOADER_SEPARATOR = b"\n\0weights\0\n"


def read(*path):
    with open(os.path.join(ROOT, *path), "rb") as f:
        return f.read()


def model_folders():
    """(config bytes, weights bytes, name) of every model folder we ship."""
    folders = [os.path.join("models", n)
               for n in sorted(os.listdir(os.path.join(ROOT, "models")))]
    goldens = os.path.join("tests", "goldens")
    folders += [os.path.join(goldens, n)
                for n in sorted(os.listdir(os.path.join(ROOT, goldens)))]
    for folder in folders:
        if not os.path.isfile(os.path.join(ROOT, folder, "config.json")):
            continue
        yield (read(folder, "config.json"),
               read(folder, "model.safetensors"), os.path.basename(folder))


def tiny_model(cell, task, layers=1, bidirectional=False, bias=True):
    """config.json and weights of a model with input 3, hidden 2, output 2."""
    config = {"format_version": 1, "version": "1", "cell": cell,
              "input_size": 3, "hidden_size": 2, "num_layers": layers,
              "bidirectional": bidirectional, "bias": bias, "output_size": 2,
              "task": task}
    if task == "classification":
        config["labels"] = ["no", "yes"]
    tensors = {}
    for i, (name, shape) in enumerate(
            fmt.expected_tensor_shapes(fmt.normalize_config(config)).items()):
        count = int(np.prod(shape))
        values = (np.arange(count, dtype=np.float32) * 0.125 - i) / 8
        tensors[name] = values.reshape(shape)
    text = json.dumps(config, indent=1).encode()
    return text, fmt.encode_safetensors(tensors)


def tiny_safetensors():
    """name -> bytes: every dtype, metadata, a scalar, an empty tensor."""
    seeds = {}
    dtypes = {"f64": np.float64, "f32": np.float32, "f16": np.float16,
              "i64": np.int64, "i32": np.int32, "i16": np.int16,
              "i8": np.int8, "u8": np.uint8, "bool": np.bool_}
    for name, dtype in dtypes.items():
        seeds[f"tiny_{name}"] = fmt.encode_safetensors(
            {"t": np.arange(6).astype(dtype).reshape(2, 3)})
    seeds["tiny_metadata"] = fmt.encode_safetensors(
        {"a": np.ones(2, np.float32)}, metadata={"format": "pt", "k": "v"})
    seeds["tiny_scalar_and_empty"] = fmt.encode_safetensors(
        {"scalar": np.float32(1.5), "empty": np.zeros((0, 4), np.float32),
         "b": np.ones((1, 2), np.float32)})
    header = b"{}"
    seeds["tiny_no_tensor"] = struct.pack("<Q", len(header)) + header
    return seeds


def header_json(blob):
    """The JSON header of safetensors bytes, padding stripped."""
    size = struct.unpack("<Q", blob[:8])[0]
    return blob[8:8 + size].rstrip(b" ")


JSON_DOCUMENTS = {
    "values": '{"a": [1, -0, 2.5e-3, 1E+2, true, false, null], "b": {}, '
              '"c": [], "d": "text"}',
    "escapes": r'["\"\\\/\b\f\n\r\t", "\u00e9\u20ac\ud83d\ude00", "é€😀"]',
    "nested": "[[[[[[[[1]]]]]]]]",
    "numbers": "[0, -1, 9223372036854775807, -9223372036854775808, "
               "9223372036854775808, 1.7976931348623157e308, 5e-324, 3.0]",
    "scalar": '"just a string"',
}

# Text-format requests; the fuzzer's model has input_size 3.
REQUESTS = {
    "classify_one": ("ClassifyRequest",
                     'model: "fuzz_model" top_k: 2 '
                     "sequences { steps: 2 values: [0.5, -1, 2, 0, 0.25, 3] }"),
    "classify_mixed": ("ClassifyRequest",
                       'model: "fuzz_model" '
                       "sequences { steps: 1 values: [1, 2, 3] } "
                       "sequences { steps: 3 values: [1, 2, 3, 4, 5, 6, 7, "
                       "8, 9] } sequences { steps: 0 }"),
    "classify_nan": ("ClassifyRequest",
                     "sequences { steps: 1 values: [1, nan, 3] }"),
    "classify_short": ("ClassifyRequest",
                       "sequences { steps: 4 values: [1, 2] }"),
    "regress_chunk": ("RegressRequest",
                      'model: "fuzz_model" session_token: "0123456789abcdef'
                      '0123456789abcdef" steps: 2 values: [0.1, 0.2, 0.3, '
                      "0.4, 0.5, 0.6]"),
    "regress_reset": ("RegressRequest",
                      'model: "fuzz_model" steps: 0 reset_state: true'),
    "regress_end": ("RegressRequest",
                    "steps: 1 values: [1, 2, 3] end_session: true"),
    "regress_inf": ("RegressRequest", "steps: 1 values: [1, inf, -inf]"),
}


def encode_request(message, text):
    result = subprocess.run(
        ["protoc", f"--encode=rnnserve.v1.{message}",
         f"-I{os.path.join(ROOT, 'proto')}", "rnnserve/v1/inference.proto"],
        input=text.encode(), capture_output=True, check=True, timeout=60)
    return result.stdout


def write_corpus(target, seeds):
    folder = os.path.join(CORPUS, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    seen = set()
    for name, blob in seeds:
        digest = hashlib.sha1(blob).hexdigest()
        if len(blob) > MAX_SEED_BYTES or digest in seen:
            continue
        seen.add(digest)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(blob)
    print(f"{target}: {len(seen)} seeds")


def main():
    folders = list(model_folders())
    tiny_models = {
        "tiny_lstm_cls": tiny_model("lstm", "classification"),
        "tiny_gru_cls_bi_2l": tiny_model("gru", "classification", 2, True),
        "tiny_rnn_tanh_reg_nobias": tiny_model("rnn_tanh", "regression",
                                               bias=False),
        "tiny_rnn_relu_reg_3l": tiny_model("rnn_relu", "regression", 3),
    }
    small_safetensors = tiny_safetensors()

    write_corpus("json", [(f"config_{n}.json", c) for c, _, n in folders[:2]]
                 + [("header_sine_rnn.json", header_json(folders[1][1]))]
                 + [(f"{n}.json", d.encode()) for n, d in
                    JSON_DOCUMENTS.items()])

    safetensors = [(f"{n}.safetensors", w) for _, w, n in folders]
    for golden in sorted(os.listdir(os.path.join(ROOT, "tests", "goldens"))):
        path = os.path.join("tests", "goldens", golden)
        if golden.endswith(".safetensors"):
            safetensors.append((golden, read(path)))
        elif os.path.isfile(os.path.join(ROOT, path, "golden.safetensors")):
            safetensors.append((f"{golden}_golden.safetensors",
                                read(path, "golden.safetensors")))
    safetensors += [(f"{n}.safetensors", b)
                    for n, b in sorted(small_safetensors.items())]
    write_corpus("safetensors", safetensors)

    write_corpus("model_config",
                 [(f"{n}.json", c) for c, _, n in folders]
                 + [(f"{n}.json", c) for n, (c, _) in tiny_models.items()])

    write_corpus("model_loader",
                 [(n, c + LOADER_SEPARATOR + w) for c, w, n in folders]
                 + [(n, c + LOADER_SEPARATOR + w)
                    for n, (c, w) in tiny_models.items()])

    write_corpus("request_validation",
                 [(n, encode_request(m, t)) for n, (m, t) in REQUESTS.items()])


if __name__ == "__main__":
    main()
