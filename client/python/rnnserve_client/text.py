"""Tokenizer: text to token ids with a model's tokenizer (ModelInfo.tokenizer),
as `rnnctl classify --text` and `rnnctl stream --text` encode it.

A "characters" tokenizer gives each character of the text one step: the id
i whose token is that character (after lower-casing, with `lowercase`), or
`unknown_id` for a character the tokens do not hold; without an unknown_id
such a character is refused, naming it and its position.

Lower-casing is Python's str.lower(), character by character, except for a
character whose lower case is more than one character (only İ, U+0130,
whose lower case is "i" and a combining dot): it stays as it is. rnnctl
lower-cases the ASCII, Latin-1 and Latin Extended-A letters only; for those
the two agree exactly. Python also lower-cases the letters of other scripts
(Greek, Cyrillic, Armenian, ..., and Latin beyond U+017F), which rnnctl
leaves as they are: a model whose tokens hold such letters in upper case
encodes them differently in the two clients.

Plain values; thread-safe.
"""
import dataclasses
from typing import List, Optional

import numpy as np


@dataclasses.dataclass
class Tokenizer:
    """A model's tokenizer (the proto's Tokenizer)."""
    type: str  # "characters": one token per character.
    # tokens[i] is id i's character; the entry at unknown_id is a name for
    # "any other character" (such as "<unk>"), not a character.
    tokens: List[str]
    # The id of a character that tokens does not hold; None: such a
    # character cannot be encoded.
    unknown_id: Optional[int] = None
    lowercase: bool = False  # Lower-case the text before the lookup.

    @classmethod
    def from_proto(cls, t):
        return cls(type=t.type, tokens=list(t.tokens),
                   unknown_id=t.unknown_id if t.HasField("unknown_id")
                   else None, lowercase=t.lowercase)

    def encode(self, text: str, what: str = "text") -> np.ndarray:
        """The ids of `text`'s characters, int64 [characters]. Raises
        ValueError, naming `what`, for an empty text, a character that is
        not in the tokens when there is no unknown_id (naming it and its
        position, from 0), a lone surrogate, or a type other than
        "characters"."""
        if self.type != "characters":
            raise ValueError(f"{what}: the model's tokenizer has type "
                             f"{self.type!r}; only 'characters' is known")
        if not isinstance(text, str):
            raise ValueError(f"{what}: expected a str, got "
                             f"{type(text).__name__}")
        if not text:
            raise ValueError(f"{what}: empty; give at least one character")
        ids = {t: i for i, t in enumerate(self.tokens)
               if i != self.unknown_id}
        out = np.empty(len(text), dtype=np.int64)
        for position, character in enumerate(text):
            if 0xD800 <= ord(character) <= 0xDFFF:
                raise ValueError(
                    f"{what}: character {position} is the lone surrogate "
                    f"U+{ord(character):04X}, not a Unicode character")
            key = lower(character) if self.lowercase else character
            if key in ids:
                out[position] = ids[key]
            elif self.unknown_id is not None:
                out[position] = self.unknown_id
            else:
                raise ValueError(
                    f"{what}: character {position} {character!r} is not in "
                    f"the model's tokens, and the tokenizer has no "
                    f"unknown_id")
        return out


def lower(character: str) -> str:
    """One character's lower case (see the module's notes): str.lower(),
    unless that is more than one character."""
    folded = character.lower()
    return folded if len(folded) == 1 else character
