"""`rnnctl classify --text` against the real rnnserve serving the shipped
models, as the README shows it.

- Every word of the golden file's extra words (greetings, capitals, Polish
  and German letters) and 45 held-out words, five per language, classified
  with `rnnctl classify --model word_language --text WORD`: the printed top
  class is PyTorch's prediction, its probability PyTorch's softmax, and three
  classes are listed. So the C++ tokenizer (UTF-8, lower case, unknown
  characters) agrees with tools/word_lists.py's encoding that PyTorch saw.
- `rnnctl models` shows word_language reading token ids, and its detail view
  the tokenizer.
- --text on a model without a tokenizer is refused naming --text.
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "testing"))
from live import Processes, fail, start_rnnserve  # noqa: E402

# "0   <true>   French   0.9712   | then Italian 0.0201, Spanish 0.0050"
LINE = re.compile(r"^0\s+(\S+)\s+([0-9.]+)\s+\| then (\S+) ([0-9.]+), (\S+) ([0-9.]+)$")


def softmax(row):
    top = max(row)
    e = [math.exp(v - top) for v in row]
    return [v / sum(e) for v in e]


def run(args, work, processes):
    sys.path.insert(0, os.path.join(args.source, "tools"))
    import rnnserve_format
    tensors, metadata = rnnserve_format.read_safetensors(os.path.join(
        args.source, "tests", "goldens", "word_language_words.safetensors"))
    config, _ = rnnserve_format.read_model_folder(
        os.path.join(args.source, "models", "word_language"))
    labels = config["labels"]
    words = metadata["words"].split("\n")
    classes = len(labels)
    gold = tensors["labels"].tolist()
    chosen = [i for i, k in enumerate(gold) if k == -1]
    for language in range(classes):
        chosen += [i for i, k in enumerate(gold) if k == language][:5]

    server = start_rnnserve(processes, args.rnnserve,
                            os.path.join(args.source, "models"), work)

    def rnnctl(*flags):
        done = subprocess.run([args.rnnctl, *flags, f"--server={server.address}"],
                              capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout + done.stderr

    for i in chosen:
        code, out = rnnctl("classify", "--model", "word_language", "--text", words[i])
        lines = [m for m in map(LINE.match, out.splitlines()) if m]
        if code != 0 or len(lines) != 1:
            fail(f"--text {words[i]!r}: exit {code}, output:\n{out}")
        m = lines[0]
        row = tensors["logits"][i].tolist()
        probabilities = softmax(row)
        ranked = sorted(range(classes), key=lambda k: -probabilities[k])
        printed = [(m.group(1), float(m.group(2))), (m.group(3), float(m.group(4))),
                   (m.group(5), float(m.group(6)))]
        if printed[0][0] != labels[ranked[0]]:
            fail(f"--text {words[i]!r}: top {printed[0][0]}, PyTorch's "
                 f"{labels[ranked[0]]}\n{out}")
        for name, probability in printed:
            k = labels.index(name)
            if abs(probability - probabilities[k]) > 1e-4:
                fail(f"--text {words[i]!r}: {name} {probability}, PyTorch's "
                     f"{probabilities[k]:.6f}\n{out}")
    print(f"rnnctl --text: {len(chosen)} words ranked as PyTorch ranks them")

    code, out = rnnctl("models")
    row = [line for line in out.splitlines() if line.startswith("word_language")]
    if code != 0 or not row or "token ids" not in row[0]:
        fail(f"rnnctl models should show word_language reading token ids:\n{out}")
    code, out = rnnctl("models", "word_language")
    want = (f'characters ({len(config["tokenizer"]["tokens"])} tokens, unknown "<unk>", '
            "lower-cased)")
    if code != 0 or want not in out:
        fail(f"rnnctl models word_language should show its tokenizer, {want}:\n{out}")
    code, out = rnnctl("classify", "--model", "fashion_lstm", "--text", "hello")
    if code == 0 or "--text" not in out or "no tokenizer" not in out:
        fail(f"--text on fashion_lstm should be refused naming --text:\n{out}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--rnnctl", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="word_language_cli_")
    processes = Processes()
    try:
        run(args, work, processes)
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print("word_language rnnctl test passed")


if __name__ == "__main__":
    main()
