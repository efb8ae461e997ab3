#!/usr/bin/python3
"""Trains rnnserve's seed models and writes their folders.

fashion_lstm  nn.LSTM(28, 64, batch_first=True) + nn.Linear(64, 10) on the
              last step: Fashion-MNIST images (pixel/255) read row by row,
              28 steps of 28 features. Adam; test accuracy on all 10,000
              test images is recorded in config.json "training".
sine_rnn      nn.RNN(1, 32, batch_first=True) + nn.Linear(32, 1) at every
              step: x = sin(t), target cos(t), t on a grid of step pi/10,
              trained in chunks of 10 steps with the hidden state carried
              (detached) from chunk to chunk, several streams of random
              starting phase. The MSE on a held-out 1000-step stream, run
              chunk by chunk from zero state, is recorded in "training".
word_language nn.Embedding over characters, a bidirectional nn.GRU, its final
              states (readout "final_state") into an MLP head: the language
              of one word, 9 languages, from Debian's word lists
              (tools/word_lists.py). Config "tokenizer" lists the characters.
              Held-out accuracy is recorded in "training".

Deterministic for a given --seed (one thread, seeded shuffles). About four
minutes on one core for the first two, twenty for word_language. Needs
Debian's dataset-fashion-mnist, and the word lists for word_language.

    /usr/bin/python3 tools/train_seed_models.py --out models/
"""

import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rnnserve_format as fmt  # noqa: E402
import word_lists  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """An idx file (gzip-compressed) as a numpy array of its own shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: {data.size} values for shape {dims}")
    return data.reshape(dims)


def load_fashion(split, data_dir=FASHION_DIR):
    """(images float32 (N, 28, 28) in [0, 1], labels int64 (N)); split is
    "train" or "t10k". Rows of an image are its time steps."""
    images = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)


def fashion_config(training):
    return {
        "format_version": fmt.FORMAT_VERSION,
        "version": "1",
        "cell": "lstm",
        "input_size": 28,
        "hidden_size": 64,
        "num_layers": 1,
        "bidirectional": False,
        "bias": True,
        "output_size": 10,
        "task": "classification",
        "labels": FASHION_LABELS,
        "description": "Fashion-MNIST classifier: a 28x28 image (pixel/255) read row by "
                       "row, 28 steps of 28 features; logits of the 10 classes.",
        "training": training,
    }


def evaluate_fashion(model, images, labels, batch=1000):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            logits = model(torch.from_numpy(images[i:i + batch]))
            correct += int((logits.argmax(1).numpy() == labels[i:i + batch]).sum())
    return correct / len(images)


def train_fashion(seed, epochs, batch_size, lr, log):
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    train_x, train_y = load_fashion("train")
    test_x, test_y = load_fashion("t10k")
    model = fmt.build_module(fashion_config({}))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # Halve the rate at each epoch after the first: a fast start, then settle.
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train_x))
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x, y = torch.from_numpy(train_x[idx]), torch.from_numpy(train_y[idx])
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(idx)
        schedule.step()
        model.eval()
        accuracy = evaluate_fashion(model, test_x, test_y)
        log(f"fashion_lstm epoch {epoch + 1}/{epochs}: train loss "
            f"{total / len(order):.4f}, test accuracy {accuracy:.4f} "
            f"({time.time() - start:.0f}s)")
    training = {
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist), 60000 train / 10000 test",
        "input": "pixel / 255, no normalisation; image rows as time steps",
        "optimizer": "Adam",
        "learning_rate": lr,
        "lr_schedule": "x0.5 after every epoch",
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "final_train_loss": round(total / len(order), 6),
        "test_accuracy": accuracy,
        "test_examples": len(test_x),
        "script": "tools/train_seed_models.py",
    }
    return model, training


def sine_config(training):
    return {
        "format_version": fmt.FORMAT_VERSION,
        "version": "1",
        "cell": "rnn_tanh",
        "input_size": 1,
        "hidden_size": 32,
        "num_layers": 1,
        "bidirectional": False,
        "bias": True,
        "output_size": 1,
        "task": "regression",
        "description": "Predicts cos(t) from a stream of sin(t) sampled every pi/10, one "
                       "output per step; the hidden state carries over between chunks.",
        "training": training,
    }


SINE_DT = math.pi / 10
SINE_CHUNK = 10


def sine_stream_mse(model, t0, steps, chunk=SINE_CHUNK):
    """MSE of cos(t) predicted over one stream run chunk by chunk from zero
    state, the state carried between chunks as the server does."""
    t = t0 + SINE_DT * np.arange(steps)
    x = torch.from_numpy(np.sin(t).astype(np.float32)).view(1, steps, 1)
    outputs, state = [], None
    with torch.no_grad():
        for i in range(0, steps, chunk):
            y, state = model(x[:, i:i + chunk], state)
            outputs.append(y)
    predicted = torch.cat(outputs, 1).view(-1).numpy().astype(np.float64)
    return float(np.mean((predicted - np.cos(t)) ** 2))


def train_sine(seed, episodes, streams, chunks, lr, log):
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    model = fmt.build_module(sine_config({}))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # A tenth of the rate for the last third: the loss settles instead of
    # bouncing around.
    schedule = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[episodes * 2 // 3 * chunks], gamma=0.1)
    loss_fn = torch.nn.MSELoss()
    offsets = SINE_DT * np.arange(SINE_CHUNK)
    for episode in range(episodes):
        # Each episode: `streams` streams of random phase, from zero state.
        t0 = rng.uniform(0, 2 * math.pi, size=(streams, 1))
        state = None
        total = 0.0
        for c in range(chunks):
            t = t0 + SINE_DT * SINE_CHUNK * c + offsets
            x = torch.from_numpy(np.sin(t).astype(np.float32)).unsqueeze(2)
            y = torch.from_numpy(np.cos(t).astype(np.float32)).unsqueeze(2)
            prediction, state = model(x, state)
            state = state.detach()  # Truncated BPTT: one chunk at a time.
            loss = loss_fn(prediction, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss)
        if (episode + 1) % 20 == 0 or episode == 0:
            log(f"sine_rnn episode {episode + 1}/{episodes}: mean chunk loss "
                f"{total / chunks:.6f}")
    model.eval()
    heldout_steps = 1000
    mse = sine_stream_mse(model, 0.0, heldout_steps)
    log(f"sine_rnn held-out stream MSE {mse:.6g}")
    training = {
        "data": "x = sin(t), target cos(t), t_k = t0 + k*pi/10",
        "chunk_steps": SINE_CHUNK,
        "state": "carried between chunks, detached (truncated BPTT per chunk)",
        "streams_per_episode": streams,
        "chunks_per_episode": chunks,
        "episodes": episodes,
        "start_phase": "t0 uniform in [0, 2*pi), zero initial state per episode",
        "optimizer": "Adam",
        "learning_rate": lr,
        "lr_schedule": "x0.1 after two thirds of the episodes",
        "seed": seed,
        "heldout": f"{heldout_steps} steps, t0 = 0, zero initial state, chunks of "
                   f"{SINE_CHUNK}, state carried",
        "heldout_mse": mse,
        "script": "tools/train_seed_models.py",
    }
    return model, training


WORD_EMBEDDING = 24
WORD_HIDDEN = 64
WORD_TRAIN_PER_LANGUAGE = 36000
WORD_HELDOUT_PER_LANGUAGE = 2000
WORD_MIN_CHAR_COUNT = 20


def word_language_config(tokens, training):
    return {
        "format_version": fmt.FORMAT_VERSION,
        "version": "1",
        "cell": "gru",
        "input_size": WORD_EMBEDDING,
        "hidden_size": WORD_HIDDEN,
        "num_layers": 1,
        "bidirectional": True,
        "bias": True,
        "output_size": len(word_lists.LABELS),
        "task": "classification",
        "readout": "final_state",
        "head": [{"linear": WORD_HIDDEN}, {"activation": "relu"}, {"dropout": 0.2},
                 {"linear": len(word_lists.LABELS)}],
        "embedding": {"num_embeddings": len(tokens), "embedding_dim": WORD_EMBEDDING},
        "tokenizer": {"type": "characters", "tokens": tokens, "unknown_id": 0,
                      "lowercase": True},
        "labels": word_lists.LABELS,
        "description": "Tells the language of one word, read character by character: "
                       "the logits of " + str(len(word_lists.LABELS)) + " languages.",
        "training": training,
    }


def _length_batches(encoded, batch_size, rng):
    """Batches of indices into `encoded` whose words all have one length
    (no padding), in a random order."""
    by_length = {}
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    batches = []
    for length in sorted(by_length):
        members = np.array(by_length[length])[rng.permutation(len(by_length[length]))]
        batches += [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def evaluate_words(model, encoded, labels, batch_size=512):
    """(accuracy, per-language accuracy) of `model` on encoded words."""
    correct = np.zeros(len(encoded), dtype=bool)
    with torch.no_grad():
        for idx in _length_batches(encoded, batch_size, np.random.RandomState(0)):
            x = torch.tensor([encoded[i] for i in idx], dtype=torch.int64)
            correct[idx] = model(x).argmax(1).numpy() == labels[idx]
    per_language = {name: float(correct[labels == k].mean())
                     for k, name in enumerate(word_lists.LABELS)}
    return float(correct.mean()), per_language


def train_word_language(seed, epochs, batch_size, lr, log):
    missing = word_lists.missing_packages()
    if missing:
        raise SystemExit("word_language needs Debian's word lists: apt-get install "
                         + " ".join(missing))
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    train, heldout = word_lists.load_splits(WORD_TRAIN_PER_LANGUAGE,
                                            WORD_HELDOUT_PER_LANGUAGE)
    tokens = word_lists.build_vocabulary([w for w, _ in train], WORD_MIN_CHAR_COUNT)
    train_x = [word_lists.encode(w, tokens) for w, _ in train]
    train_y = np.array([k for _, k in train], dtype=np.int64)
    test_x = [word_lists.encode(w, tokens) for w, _ in heldout]
    test_y = np.array([k for _, k in heldout], dtype=np.int64)
    model = fmt.build_module(word_language_config(tokens, {}))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in _length_batches(train_x, batch_size, rng):
            x = torch.tensor([train_x[i] for i in idx], dtype=torch.int64)
            loss = loss_fn(model(x), torch.from_numpy(train_y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(idx)
        schedule.step()
        model.eval()
        accuracy, _ = evaluate_words(model, test_x, test_y)
        log(f"word_language epoch {epoch + 1}/{epochs}: train loss "
            f"{total / len(train_x):.4f}, held-out accuracy {accuracy:.4f} "
            f"({time.time() - start:.0f}s)")
    accuracy, per_language = evaluate_words(model, test_x, test_y)
    training = {
        "dataset": "Debian word lists (" + ", ".join(word_lists.PACKAGES) + "), "
                   "lower-cased, letters only, 2 to 24 characters, words of more than "
                   "one list dropped; tools/word_lists.py",
        "train_words_per_language": WORD_TRAIN_PER_LANGUAGE,
        "heldout_words_per_language": WORD_HELDOUT_PER_LANGUAGE,
        "optimizer": "Adam",
        "learning_rate": lr,
        "lr_schedule": "x0.7 after every epoch",
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "final_train_loss": round(total / len(train_x), 6),
        "heldout_accuracy": accuracy,
        "heldout_accuracy_per_language": per_language,
        "script": "tools/train_seed_models.py",
    }
    return model, tokens, training


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="models",
                        help="folder receiving the model folders (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    parser.add_argument("--only", choices=("fashion_lstm", "sine_rnn", "word_language"),
                        help="train just one of the models")
    parser.add_argument("--word-epochs", type=int, default=4,
                        help="epochs over the word_language training words "
                             "(default: %(default)s)")
    parser.add_argument("--fashion-epochs", type=int, default=4,
                        help="epochs over the 60k training images (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; results are reproducible for a fixed "
                             "count (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)

    def log(message):
        print(message, flush=True)

    if args.only in (None, "fashion_lstm"):
        model, training = train_fashion(args.seed, args.fashion_epochs, 64, 0.01, log)
        folder = os.path.join(args.out, "fashion_lstm")
        fmt.write_model_folder(folder, fashion_config(training), model)
        reloaded, _ = fmt.load_model_folder(folder)
        test_x, test_y = load_fashion("t10k")
        accuracy = evaluate_fashion(reloaded, test_x, test_y)
        if accuracy != training["test_accuracy"]:
            raise SystemExit(f"{folder}: reloaded accuracy {accuracy} differs")
        log(f"wrote {folder}: test accuracy {accuracy:.4f}")
    if args.only in (None, "sine_rnn"):
        model, training = train_sine(args.seed, episodes=150, streams=16, chunks=20,
                                     lr=0.01, log=log)
        folder = os.path.join(args.out, "sine_rnn")
        fmt.write_model_folder(folder, sine_config(training), model)
        reloaded, _ = fmt.load_model_folder(folder)
        mse = sine_stream_mse(reloaded, 0.0, 1000)
        if mse != training["heldout_mse"]:
            raise SystemExit(f"{folder}: reloaded MSE {mse} differs")
        log(f"wrote {folder}: held-out MSE {mse:.6g}")
    if args.only in (None, "word_language"):
        model, tokens, training = train_word_language(args.seed, args.word_epochs, 128, 0.005,
                                                      log)
        folder = os.path.join(args.out, "word_language")
        fmt.write_model_folder(folder, word_language_config(tokens, training), model)
        reloaded, _ = fmt.load_model_folder(folder)
        _, heldout = word_lists.load_splits(WORD_TRAIN_PER_LANGUAGE,
                                            WORD_HELDOUT_PER_LANGUAGE)
        accuracy, _ = evaluate_words(reloaded,
                                     [word_lists.encode(w, tokens) for w, _ in heldout],
                                     np.array([k for _, k in heldout], dtype=np.int64))
        if accuracy != training["heldout_accuracy"]:
            raise SystemExit(f"{folder}: reloaded accuracy {accuracy} differs")
        log(f"wrote {folder}: held-out accuracy {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
