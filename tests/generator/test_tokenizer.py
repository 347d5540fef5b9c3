"""The generator's tokenizer on English, Chinese and placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.corpus import Pair, read_chatterbot
from components.generator.tokenizer import SubwordTokenizer, TokenizerSettings
from tests.conftest import PROJECT

CHATTERBOT_ZH = PROJECT.parent / "shared" / "datasets" / "chatterbot_corpus" / "chatterbot_corpus" / "data" / "chinese"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def chinese_texts() -> list[str]:
    texts = []
    for path in sorted(CHATTERBOT_ZH.glob("*.yml")):
        for record in read_chatterbot(path):
            if isinstance(record, Pair):
                texts += [record.question, record.answer]
    assert len(texts) > 500
    return sorted(set(texts))


def test_chinese_round_trips_exactly_with_at_most_one_token_per_character(chinese_texts: list[str]) -> None:
    training = chinese_texts[: len(chinese_texts) * 4 // 5]
    tokenizer = SubwordTokenizer.train(training, TokenizerSettings(vocab_size=4000))
    for text in chinese_texts:  # held-out texts too: unseen characters fall back to bytes
        assert tokenizer.decode(tokenizer.encode(text)) == text
    characters = sum(len(HAN.findall(text)) for text in chinese_texts)
    tokens = sum(len(tokenizer.encode(text)) for text in chinese_texts)
    assert tokens / characters <= 1.0


def test_placeholders_are_single_tokens_and_spacing_survives(tmp_path: Path) -> None:
    texts = ["Your order {{Order Number}} ships today.", "Write to [EMAIL] please", "hello  world\n"] * 5
    tokenizer = SubwordTokenizer.train(texts, TokenizerSettings(vocab_size=400))
    for placeholder in ("{{Order Number}}", "[EMAIL]", "[ORDER_ID]"):
        assert placeholder in tokenizer.tokens(f"see {placeholder} now")
    awkward = "  two leading spaces, tabs\tand 罕见字 and emoji 🙂 "
    assert tokenizer.decode(tokenizer.encode(awkward)) == awkward
    tokenizer.save(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    assert SubwordTokenizer.load(tmp_path).encode(awkward) == tokenizer.encode(awkward)


def test_too_small_a_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        SubwordTokenizer.train(["some text"], TokenizerSettings(vocab_size=100))
