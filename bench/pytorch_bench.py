#!/usr/bin/python3
"""PyTorch 1.13 eager on the shapes of bench/engine_bench.cc: the reference.

  pytorch_bench.py [--models DIR] [--repetitions 5] [--min-time 0.5] [--json]
                   [--filter REGEX]

One thread (torch.set_num_threads(1)), torch.inference_mode(), the modules of
tools/rnnserve_format.py loaded from the seed model folders, so the weights
are the served ones:

  Classify/batch:N         nn.LSTM, then nn.Linear on the last step, softmax;
                           N sequences of 28 steps per call
  ClassifyMixed/batch:64   64 sequences of 1 to 28 steps, packed
                           (pack_padded_sequence), each one's own last step
  Regress/steps:S/batch:N  nn.RNN, nn.Linear at every step; N sessions'
                           chunks of S steps, the hidden state carried

Inputs are uniform random with a fixed seed. Each repetition times calls for
at least --min-time seconds; prints the median items/s (sequences or chunks)
of the repetitions per shape, as a table or, with --json, one JSON object
{"benchmarks": [{"name", "items_per_second", "repetitions": [...]}], ...}.
Names match engine_bench's so that bench/compare.py can pair them.
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

# Debian's torch calls whichever libblas.so.3 the loader finds: the reference
# BLAS by default, or OpenBLAS (its pthread build) when LD_LIBRARY_PATH points
# at it; keep that one to one thread too. Set before numpy or torch load it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import rnnserve_format  # noqa: E402


def classify_case(module, steps, seed=1):
    """A callable running one Classify call of len(steps) sequences."""
    cfg = module.config
    rng = np.random.default_rng(seed)
    if len(set(steps)) == 1:
        x = torch.from_numpy(rng.random((len(steps), steps[0], cfg["input_size"]),
                                        dtype=np.float32))

        def run():
            r_out, _ = module.rnn(x)
            return torch.softmax(module.out(r_out[:, -1, :]), dim=1)
        return run

    # Mixed lengths: zero-padded, packed so each sequence stops at its length,
    # its last valid output picked.
    lengths = torch.tensor(steps)
    x = torch.zeros(len(steps), max(steps), cfg["input_size"])
    for i, s in enumerate(steps):
        x[i, :s] = torch.from_numpy(rng.random((s, cfg["input_size"]), dtype=np.float32))
    rows = torch.arange(len(steps))
    pack = torch.nn.utils.rnn.pack_padded_sequence
    unpack = torch.nn.utils.rnn.pad_packed_sequence

    def run_mixed():
        packed, _ = module.rnn(pack(x, lengths, batch_first=True, enforce_sorted=False))
        r_out, _ = unpack(packed, batch_first=True)
        return torch.softmax(module.out(r_out[rows, lengths - 1]), dim=1)
    return run_mixed


def regress_case(module, steps, sessions, seed=2):
    """A callable running one Regress call: each session's chunk continues
    from the state the previous call left."""
    cfg = module.config
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.random((sessions, steps, cfg["input_size"]), dtype=np.float32))
    box = [torch.zeros(cfg["num_layers"], sessions, cfg["hidden_size"])]

    def run():
        r_out, box[0] = module.rnn(x, box[0])
        return module.out(r_out)
    return run


def mixed_lengths(n):
    """Every length from 1 to 28, as engine_bench's ClassifyMixed spells it."""
    return [1 + (i * 11) % 28 for i in range(n)]


def cases(models_dir):
    lstm, _ = rnnserve_format.load_model_folder(os.path.join(models_dir, "fashion_lstm"))
    rnn, _ = rnnserve_format.load_model_folder(os.path.join(models_dir, "sine_rnn"))
    out = []
    for batch in (1, 16, 64, 256):
        out.append((f"Classify/batch:{batch}", batch, classify_case(lstm, [28] * batch)))
    out.append(("ClassifyMixed/batch:64", 64, classify_case(lstm, mixed_lengths(64))))
    for steps in (1, 10):
        for sessions in (1, 256):
            out.append((f"Regress/steps:{steps}/batch:{sessions}", sessions,
                        regress_case(rnn, steps, sessions)))
    return out


def measure(run, items, min_time):
    """items/s over calls for at least min_time seconds (after one warm call)."""
    run()
    calls = 0
    start = time.perf_counter()
    while True:
        run()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return calls * items / elapsed


def blas_library():
    """Path of the BLAS this process loaded (from /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if re.search(r"/lib(open)?blas[^/]*\.so", path):
                return os.path.realpath(path)
    return "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=os.path.join(HERE, "..", "models"))
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds each repetition of each shape runs at least")
    p.add_argument("--filter", default="", help="regex on benchmark names")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(1)
    results = []
    with torch.inference_mode():
        for name, items, run in cases(args.models):
            if args.filter and not re.search(args.filter, name):
                continue
            reps = [measure(run, items, args.min_time) for _ in range(args.repetitions)]
            results.append({"name": name, "items_per_second": statistics.median(reps),
                            "repetitions": reps})
    if args.json:
        json.dump({"context": {"torch": torch.__version__,
                               "threads": torch.get_num_threads(),
                               "blas": blas_library(),
                               "repetitions": args.repetitions,
                               "min_time": args.min_time},
                   "benchmarks": results}, sys.stdout, indent=1)
        print()
    else:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread, "
              f"median of {args.repetitions} x >= {args.min_time}s, "
              f"BLAS {blas_library()}")
        for r in results:
            print(f"{r['name']:28} {r['items_per_second']:14,.0f} items/s")


if __name__ == "__main__":
    main()
