"""The word lists the word_language model learns from, and its tokenizer.

Debian packages one word list per language under /usr/share/dict (wamerican,
wngerman, wfrench, ...). This module reads them the same way for training
(tools/train_seed_models.py), for the goldens (tools/make_goldens.py) and for
the held-out accuracy test, so that all three see the same words:

- every entry is lower-cased (str.lower) and kept only if it is 2 to 24
  letters long, all of them alphabetic (no apostrophes, hyphens or digits);
- a word found in more than one list is dropped: its language is ambiguous;
- each language's remaining words are put in a fixed order (sorted, then
  shuffled with a seed of their own) and cut into a training part and a
  held-out part, so the split does not depend on the other languages.

Characters are the tokens: a word is the sequence of its characters' ids.
"""

import os

import numpy as np

DICT_DIR = "/usr/share/dict"

# (label, file under DICT_DIR, encoding, Debian package)
LANGUAGES = [
    ("English", "american-english", "utf-8", "wamerican"),
    ("German", "ngerman", "utf-8", "wngerman"),
    ("French", "french", "utf-8", "wfrench"),
    ("Spanish", "spanish", "utf-8", "wspanish"),
    ("Italian", "italian", "utf-8", "witalian"),
    ("Dutch", "dutch", "utf-8", "wdutch"),
    ("Portuguese", "portuguese", "utf-8", "wportuguese"),
    ("Swedish", "swedish", "latin-1", "wswedish"),
    ("Polish", "polish", "utf-8", "wpolish"),
]
LABELS = [language[0] for language in LANGUAGES]
PACKAGES = [language[3] for language in LANGUAGES]

MIN_LENGTH = 2
MAX_LENGTH = 24
UNKNOWN = "<unk>"  # Token 0: any character the vocabulary does not hold.
SPLIT_SEED = 20261130


def missing_packages(dict_dir=DICT_DIR):
    """The Debian packages whose word list is not installed."""
    return [package for _, name, _, package in LANGUAGES
            if not os.path.exists(os.path.join(dict_dir, name))]


def _read_words(path, encoding):
    words = set()
    with open(path, encoding=encoding) as f:
        for line in f:
            word = line.strip().lower()
            if MIN_LENGTH <= len(word) <= MAX_LENGTH and word.isalpha():
                words.add(word)
    return words


def load_splits(train_per_language, heldout_per_language, dict_dir=DICT_DIR):
    """(train, heldout): lists of (word, language index), per language at
    most the given counts. The held-out words are never in training."""
    per_language = [_read_words(os.path.join(dict_dir, name), encoding)
                    for _, name, encoding, _ in LANGUAGES]
    seen = {}
    for words in per_language:
        for word in words:
            seen[word] = seen.get(word, 0) + 1
    train, heldout = [], []
    for index, words in enumerate(per_language):
        unique = sorted(word for word in words if seen[word] == 1)
        order = np.random.RandomState(SPLIT_SEED + index).permutation(len(unique))
        chosen = [unique[i] for i in order]
        heldout += [(word, index) for word in chosen[:heldout_per_language]]
        rest = chosen[heldout_per_language:heldout_per_language + train_per_language]
        train += [(word, index) for word in rest]
    return train, heldout


def build_vocabulary(words, min_count):
    """Token list: UNKNOWN, then every character seen at least min_count
    times in `words`, by code point."""
    counts = {}
    for word in words:
        for ch in word:
            counts[ch] = counts.get(ch, 0) + 1
    return [UNKNOWN] + sorted(ch for ch, n in counts.items() if n >= min_count)


def encode(word, tokens):
    """The ids of a word's characters (lower-cased first); 0 for a
    character the vocabulary does not hold."""
    index = {token: i for i, token in enumerate(tokens)}
    return [index.get(ch, 0) for ch in word.lower()]
