#!/usr/bin/python3
"""Writes the expected outputs that rnnserve's C++ tests compare against.

Everything here is computed by PyTorch in float32, every sequence on its own
(batch 1, exactly its own length), so a server that batches, pads or splits
must reproduce it. Deterministic: fixed seeds, one thread.

    /usr/bin/python3 tools/make_goldens.py --out tests/goldens

writes (see tests/goldens/README.md):
  <case>/config.json, <case>/model.safetensors   a model folder, random init
  <case>/golden.safetensors                      inputs and expected outputs
  fashion_lstm_test1000.safetensors              models/fashion_lstm on 1000
                                                 Fashion-MNIST test images
  sine_rnn_stream.safetensors                    models/sine_rnn on a 100-step
                                                 sin stream
  word_language_words.safetensors                models/word_language on 900
                                                 held-out words and a few more
                                                 (needs Debian's word lists:
                                                 see tools/word_lists.py)
"""

import argparse
import math
import os
import sys
import zlib
from collections import OrderedDict, namedtuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rnnserve_format as fmt  # noqa: E402
from train_seed_models import load_fashion, SINE_DT  # noqa: E402

Case = namedtuple("Case", "name cell input_size hidden_size num_layers "
                          "bidirectional task output_size bias labels readout head "
                          "output_activation embedding",
                  defaults=(None, None, None, None))


def _head(*modules):
    """Config "head" from "linear:16", "relu", "dropout:0.1" ... in order."""
    head = []
    for module in modules:
        name, _, arg = module.partition(":")
        if name == "linear":
            head.append(OrderedDict([("linear", int(arg))]))
        elif name == "dropout":
            head.append(OrderedDict([("dropout", float(arg))]))
        else:
            head.append(OrderedDict([("activation", name)]))
    return head


CASES = [
    Case("lstm_cls_1l", "lstm", 28, 64, 1, False, "classification", 10, True, None),
    Case("lstm_cls_2l_bi", "lstm", 5, 7, 2, True, "classification", 3, True, ["a", "b", "c"]),
    Case("lstm_cls_2l_nobias", "lstm", 8, 12, 2, False, "classification", 4, False, None),
    Case("lstm_reg_3l", "lstm", 4, 33, 3, False, "regression", 2, True, None),
    Case("gru_cls_1l_bi", "gru", 6, 33, 1, True, "classification", 4, True, None),
    # Non-ASCII label: the config is UTF-8 JSON.
    Case("gru_cls_3l", "gru", 3, 7, 3, False, "classification", 5, True,
         ["zero", "one", "two", "three", "fünf ☃"]),
    Case("gru_reg_3l_square", "gru", 16, 16, 3, False, "regression", 1, True, None),
    Case("rnn_tanh_reg_1l", "rnn_tanh", 1, 32, 1, False, "regression", 1, True, None),
    Case("rnn_tanh_cls_2l_bi", "rnn_tanh", 9, 7, 2, True, "classification", 3, True, None),
    Case("rnn_relu_reg_2l", "rnn_relu", 2, 33, 2, False, "regression", 3, True, None),
    Case("rnn_relu_cls_3l_bi", "rnn_relu", 4, 5, 3, True, "classification", 2, True, None),
    # MLP heads (nn.Sequential `out`) and readouts other than r_out[:, -1].
    Case("lstm_cls_2l_bi_mlp_final", "lstm", 5, 7, 2, True, "classification", 3, True, None,
         "final_state", _head("linear:16", "relu", "dropout:0.1", "linear:16", "relu",
                              "linear:3")),
    Case("lstm_cls_1l_final", "lstm", 4, 6, 1, False, "classification", 3, True, None,
         "final_state", None),
    Case("gru_cls_2l_mean_mlp", "gru", 6, 9, 2, False, "classification", 4, True, None,
         "mean", _head("linear:8", "tanh", "linear:8", "gelu", "linear:4")),
    Case("gru_cls_1l_bi_mean", "gru", 3, 5, 1, True, "classification", 2, True, None,
         "mean", _head("linear:2")),
    Case("rnn_tanh_cls_2l_max_mlp", "rnn_tanh", 4, 8, 2, False, "classification", 3, True,
         None, "max", _head("linear:6", "sigmoid", "linear:3")),
    Case("rnn_relu_cls_1l_bi_max", "rnn_relu", 3, 4, 1, True, "classification", 2, True,
         None, "max", None),
    Case("lstm_reg_2l_mlp", "lstm", 3, 6, 2, False, "regression", 2, True, None, None,
         _head("gelu", "linear:5", "relu", "linear:2", "dropout:0.5")),
    # Per-step classification on a stream (config "output_activation").
    Case("gru_reg_2l_softmax", "gru", 4, 8, 2, False, "regression", 5, True,
         ["sil", "yes", "no", "up", "down"], None, None, "softmax"),
    Case("lstm_reg_1l_sigmoid", "lstm", 3, 6, 1, False, "regression", 3, True,
         ["speech", "music", "noise"], None, None, "sigmoid"),
    # Token inputs: an nn.Embedding (vocabulary, padding_idx) before the rnn;
    # input_size is the embedding's width.
    Case("emb_lstm_cls_1l_pad", "lstm", 8, 10, 1, False, "classification", 4, True, None,
         None, None, embedding=(30, 0)),
    Case("emb_gru_cls_2l_bi", "gru", 6, 7, 2, True, "classification", 3, True, None,
         None, None, embedding=(40, None)),
    Case("emb_rnn_tanh_reg_1l", "rnn_tanh", 5, 9, 1, False, "regression", 2, True, None,
         None, None, embedding=(25, None)),
]

LENGTHS = [7, 1, 12, 12, 3]  # Mixed, with a single step and a duplicate.
MAX_ABS = 20.0  # Keeps an absolute tolerance of 1e-5 meaningful.


def case_seed(name):
    # From the name, so adding or reordering cases leaves the others alone.
    return zlib.crc32(name.encode("utf-8"))


def case_config(case):
    config = OrderedDict([
        ("format_version", fmt.FORMAT_VERSION),
        ("version", "golden-1"),
        ("cell", case.cell),
        ("input_size", case.input_size),
        ("hidden_size", case.hidden_size),
        ("num_layers", case.num_layers),
        ("bidirectional", case.bidirectional),
        ("bias", case.bias),
        ("output_size", case.output_size),
        ("task", case.task),
    ])
    if case.readout is not None:
        config["readout"] = case.readout
    if case.output_activation is not None:
        config["output_activation"] = case.output_activation
    if case.head is not None:
        config["head"] = case.head
    if case.labels is not None:
        config["labels"] = case.labels
    if case.embedding is not None:
        vocabulary, padding_idx = case.embedding
        config["embedding"] = OrderedDict([("num_embeddings", vocabulary),
                                           ("embedding_dim", case.input_size)])
        if padding_idx is not None:
            config["embedding"]["padding_idx"] = padding_idx
    config["description"] = (f"Golden test case {case.name}: PyTorch's default random "
                             "init, not a trained model.")
    config["training"] = {"init": "PyTorch default", "seed": case_seed(case.name),
                          "script": "tools/make_goldens.py"}
    return config


def check_modest(name, **arrays):
    for key, array in arrays.items():
        biggest = float(np.abs(array).max())
        if not math.isfinite(biggest) or biggest >= MAX_ABS:
            raise SystemExit(f"{name}: max |{key}| = {biggest}; rescale the init")


def as_state(h, c, index, lstm):
    """Sequence `index`'s slice of the initial state, as the rnn takes it."""
    h_i = h[:, index:index + 1].contiguous()
    if lstm:
        return (h_i, c[:, index:index + 1].contiguous())
    return h_i


def make_case(case, out_dir):
    seed = case_seed(case.name)
    torch.manual_seed(seed)
    config = case_config(case)
    module = fmt.build_module(config).eval()
    folder = os.path.join(out_dir, case.name)
    fmt.write_model_folder(folder, config, module)
    # Compute with the weights as read back, as the server will see them.
    module, _ = fmt.load_model_folder(folder)

    generator = torch.Generator().manual_seed(seed + 1)
    n, t_max = len(LENGTHS), max(LENGTHS)
    tensors = OrderedDict()
    tensors["lengths"] = np.array(LENGTHS, dtype=np.int64)
    if case.embedding is None:
        inputs = torch.rand(n, t_max, case.input_size, generator=generator) * 2 - 1
        for i, length in enumerate(LENGTHS):
            inputs[i, length:] = 0
        tensors["inputs"] = inputs.numpy()
    else:
        # Token ids over the whole vocabulary, its first and last id included;
        # with a padding_idx, it appears inside sequences too.
        vocabulary, padding_idx = case.embedding
        inputs = torch.randint(0, vocabulary, (n, t_max), generator=generator)
        inputs[0, 0], inputs[2, 1] = 0, vocabulary - 1
        if padding_idx is not None:
            inputs[0, 3] = inputs[3, 5] = padding_idx
        for i, length in enumerate(LENGTHS):
            inputs[i, length:] = 0
        tensors["tokens"] = inputs.numpy().astype(np.int64)
    lstm = case.cell == "lstm"
    with torch.no_grad():
        if case.task == "classification":
            logits = torch.cat([module(inputs[i:i + 1, :length])
                                for i, length in enumerate(LENGTHS)])
            tensors["logits"] = logits.numpy()
            tensors["probabilities"] = torch.softmax(logits, dim=1).numpy()
        else:
            directions = 2 if case.bidirectional else 1
            shape = (case.num_layers * directions, n, case.hidden_size)
            h0 = torch.rand(*shape, generator=generator) - 0.5
            c0 = torch.rand(*shape, generator=generator) - 0.5 if lstm else None
            outputs = torch.zeros(n, t_max, case.output_size)
            h_n = torch.zeros(shape)
            c_n = torch.zeros(shape)
            for i, length in enumerate(LENGTHS):
                y, state = module(inputs[i:i + 1, :length], as_state(h0, c0, i, lstm))
                outputs[i, :length] = y[0]
                if lstm:
                    h_n[:, i], c_n[:, i] = state[0][:, 0], state[1][:, 0]
                else:
                    h_n[:, i] = state[:, 0]
            tensors["h0"] = h0.numpy()
            if lstm:
                tensors["c0"] = c0.numpy()
            tensors["outputs"] = outputs.numpy()
            if case.output_activation is not None or case.embedding is not None:
                # What a new session (zero state) answers, for the service.
                zero = torch.zeros(n, t_max, case.output_size)
                for i, length in enumerate(LENGTHS):
                    zero[i, :length] = module(inputs[i:i + 1, :length])[0][0]
                tensors["outputs_from_zero"] = zero.numpy()
            tensors["h_n"] = h_n.numpy()
            if lstm:
                tensors["c_n"] = c_n.numpy()
    check_modest(case.name, **{k: v for k, v in tensors.items()
                               if k not in ("lengths", "tokens")})
    fmt.write_safetensors(os.path.join(folder, "golden.safetensors"), tensors,
                          {"case": case.name, "generator": "tools/make_goldens.py",
                           "seed": str(seed)})
    return folder


def make_fashion(models_dir, out_dir, count=1000):
    module, _ = fmt.load_model_folder(os.path.join(models_dir, "fashion_lstm"))
    images, labels = load_fashion("t10k")
    images, labels = images[:count], labels[:count]
    with torch.no_grad():
        logits = torch.cat([module(torch.from_numpy(images[i:i + 1]))
                            for i in range(count)])
    predictions = logits.argmax(dim=1).numpy().astype(np.int64)
    check_modest("fashion_lstm", logits=logits.numpy())
    accuracy = float(np.mean(predictions == labels))
    path = os.path.join(out_dir, f"fashion_lstm_test{count}.safetensors")
    fmt.write_safetensors(path, OrderedDict([
        ("logits", logits.numpy()),
        ("predictions", predictions),
        ("labels", labels.astype(np.int64)),
    ]), {"model": "models/fashion_lstm", "images": f"first {count} of t10k, pixel/255, "
         "rows as steps", "accuracy": repr(accuracy), "generator": "tools/make_goldens.py"})
    return path, accuracy


# Words for rnnctl classify --text in the tests and the README, beside the
# held-out ones: greetings and thanks, some with capitals and accents.
WORD_LANGUAGE_EXTRA = ["bonjour", "hello", "Danke", "gracias", "grazie", "bedankt",
                       "obrigado", "tack", "dziękuję", "Żółć", "Straße", "über"]


def make_word_language(models_dir, out_dir, per_language=100):
    """PyTorch's logits for the first held-out words of each language (never
    seen in training) and for WORD_LANGUAGE_EXTRA, each word run alone."""
    from train_seed_models import (WORD_HELDOUT_PER_LANGUAGE, WORD_TRAIN_PER_LANGUAGE)
    import word_lists
    folder = os.path.join(models_dir, "word_language")
    module, config = fmt.load_model_folder(folder)
    tokens = config["tokenizer"]["tokens"]
    _, heldout = word_lists.load_splits(WORD_TRAIN_PER_LANGUAGE, WORD_HELDOUT_PER_LANGUAGE)
    chosen = []
    for language in range(len(word_lists.LABELS)):
        chosen += [(w, k) for w, k in heldout if k == language][:per_language]
    words = [w for w, _ in chosen] + WORD_LANGUAGE_EXTRA
    labels = [k for _, k in chosen] + [-1] * len(WORD_LANGUAGE_EXTRA)
    encoded = [word_lists.encode(w, tokens) for w in words]
    t_max = max(len(ids) for ids in encoded)
    ids = np.zeros((len(words), t_max), dtype=np.int64)
    for i, row in enumerate(encoded):
        ids[i, :len(row)] = row
    with torch.no_grad():
        logits = torch.cat([module(torch.tensor([row])) for row in encoded])
    predictions = logits.argmax(dim=1).numpy().astype(np.int64)
    n = len(chosen)
    accuracy = float(np.mean(predictions[:n] == np.array(labels[:n])))
    path = os.path.join(out_dir, "word_language_words.safetensors")
    fmt.write_safetensors(path, OrderedDict([
        ("tokens", ids),
        ("lengths", np.array([len(row) for row in encoded], dtype=np.int64)),
        ("labels", np.array(labels, dtype=np.int64)),
        ("logits", logits.numpy()),
        ("predictions", predictions),
    ]), {"model": "models/word_language",
         "words": "\n".join(words),
         "heldout": f"the first {per_language} held-out words of each language "
                    "(tools/word_lists.py), then the extra words (label -1)",
         "accuracy": repr(accuracy), "generator": "tools/make_goldens.py"})
    extra = {w: word_lists.LABELS[p] for w, p in zip(words[n:], predictions[n:])}
    return path, accuracy, extra


def make_sine(models_dir, out_dir, steps=100):
    module, _ = fmt.load_model_folder(os.path.join(models_dir, "sine_rnn"))
    t = SINE_DT * np.arange(steps)
    x = torch.from_numpy(np.sin(t).astype(np.float32)).view(1, steps, 1)
    with torch.no_grad():
        outputs, h_n = module(x)
        # The same stream in chunks of 10 with the state carried must agree.
        state, chunks = None, []
        for i in range(0, steps, 10):
            y, state = module(x[:, i:i + 10], state)
            chunks.append(y)
    chunked = torch.cat(chunks, 1)
    if float((chunked - outputs).abs().max()) > 1e-6 or float((state - h_n).abs().max()) > 1e-6:
        raise SystemExit("sine_rnn: chunked and whole-stream outputs disagree")
    check_modest("sine_rnn", outputs=outputs.numpy(), h_n=h_n.numpy())
    mse = float(np.mean((outputs.view(-1).numpy().astype(np.float64) - np.cos(t)) ** 2))
    path = os.path.join(out_dir, "sine_rnn_stream.safetensors")
    fmt.write_safetensors(path, OrderedDict([
        ("inputs", x.numpy()),
        ("outputs", outputs.numpy()),
        ("h_n", h_n.numpy()),
    ]), {"model": "models/sine_rnn", "stream": f"x = sin(k*pi/10), k = 0..{steps - 1}, "
         "zero initial state", "mse_vs_cos": repr(mse), "generator": "tools/make_goldens.py"})
    return path, mse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="tests/goldens",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--models", default="models",
                        help="folder holding fashion_lstm/, sine_rnn/ and word_language/ "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)
    for case in CASES:
        print("wrote", make_case(case, args.out))
    path, accuracy = make_fashion(args.models, args.out)
    print(f"wrote {path} (accuracy on these images {accuracy:.3f})")
    path, mse = make_sine(args.models, args.out)
    print(f"wrote {path} (MSE against cos {mse:.6g})")
    path, accuracy, extra = make_word_language(args.models, args.out)
    print(f"wrote {path} (accuracy on the held-out words {accuracy:.3f}; {extra})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
