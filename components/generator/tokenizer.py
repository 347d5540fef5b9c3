"""The generator's sub-word tokeniser: BPE over characters, with byte fallback.

Merges are learnt over characters rather than bytes, so a Chinese character is at most one
token and usually less; a character never seen in training falls back to its UTF-8 bytes
(`<0xE4>`...), so every text round-trips exactly. Spaces become `▁` inside tokens, which
keeps runs of spaces and a leading space. Placeholders (`[EMAIL]`, `{{Order Number}}`)
are single tokens. Saved as one `tokenizer.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from components.text import PII_PLACEHOLDERS, PLACEHOLDER_PATTERN

PAD, UNK, BOS, EOS, SEP = "<pad>", "<unk>", "<s>", "</s>", "<sep>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, SEP)
PAD_ID, UNK_ID, BOS_ID, EOS_ID, SEP_ID = range(len(SPECIAL_TOKENS))
BYTE_TOKENS = tuple(f"<0x{value:02X}>" for value in range(256))
SPACE = "▁"
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class TokenizerSettings:
    vocab_size: int = 8000  # all tokens: special, bytes, placeholders and merges
    min_frequency: int = 2  # a pair seen fewer times is never merged
    max_token_length: int = 16  # characters per token


class SubwordTokenizer:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], settings: TokenizerSettings | None = None) -> SubwordTokenizer:
        settings = settings or TokenizerSettings()
        texts = list(texts)
        placeholders = sorted({*PII_PLACEHOLDERS, *(m for t in texts for m in PLACEHOLDER_PATTERN.findall(t))})
        reserved = len(SPECIAL_TOKENS) + len(BYTE_TOKENS) + len(placeholders)
        if settings.vocab_size <= reserved:
            raise ValueError(f"tokenizer vocab_size {settings.vocab_size} is too small: {reserved} ids are "
                             "taken by special, byte and placeholder tokens; raise `vocab_size`")
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, add_prefix_space=False)
        tokenizer.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()])
        # Byte tokens are reserved through `special_tokens` so they get ids, then turned back
        # into ordinary vocabulary entries below: as special tokens they would be matched in
        # raw text and dropped when decoding.
        trainer = trainers.BpeTrainer(vocab_size=settings.vocab_size - len(placeholders),
                                      min_frequency=settings.min_frequency, show_progress=False,
                                      special_tokens=[*SPECIAL_TOKENS, *BYTE_TOKENS],
                                      max_token_length=settings.max_token_length)
        tokenizer.train_from_iterator((PLACEHOLDER_PATTERN.sub(" ", t) for t in texts), trainer)
        spec = json.loads(tokenizer.to_str())
        spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in SPECIAL_TOKENS]
        spec["model"]["byte_fallback"] = True
        tokenizer = Tokenizer.from_str(json.dumps(spec))
        tokenizer.add_tokens([AddedToken(p, single_word=False, normalized=False) for p in placeholders])
        return cls(tokenizer)

    def to_str(self) -> str:
        return self.tokenizer.to_str()

    @classmethod
    def from_str(cls, text: str) -> SubwordTokenizer:
        return cls(Tokenizer.from_str(text))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def id_to_token(self, token_id: int) -> str | None:
        return self.tokenizer.id_to_token(token_id)

    def save(self, folder: Path) -> None:
        self.tokenizer.save(str(Path(folder) / TOKENIZER_FILE))

    @classmethod
    def load(cls, folder: Path) -> SubwordTokenizer:
        path = Path(folder) / TOKENIZER_FILE
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # the Rust side raises a bare Exception on a bad file
            raise ValueError(f"{path}: not a readable tokenizer file ({error})") from error
