"""WordEmbeddingFeaturizer: trained and pretrained vectors, saved inside the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.featurizers import WordEmbeddingFeaturizer
from components.word_vectors import VectorsFileError
from tests.featurizers.checks import CHINESE, ENGLISH, Component, check_featurizer, features, tokenised

SMALL = {"dimensions": 16, "epochs": 5}


@pytest.mark.parametrize("config", [
    {"algorithm": "word2vec", "pooling": "mean"},
    {"algorithm": "word2vec", "architecture": "cbow", "pooling": "max"},
    {"algorithm": "fasttext", "pooling": "sif", "bucket": 2000},
], ids=["word2vec-mean", "cbow-max", "fasttext-sif"])
def test_trained_vectors_pass_the_featurizer_checks(tmp_path: Path, config: dict) -> None:
    check_featurizer(lambda: Component(WordEmbeddingFeaturizer, tmp_path, {**SMALL, **config}), 16)


def write_vectors(path: Path, kind: str, words: list[str], dimensions: int = 8) -> Path:
    rng = np.random.default_rng(0)
    vectors = {word: rng.normal(size=dimensions).astype(np.float32) for word in words}
    if kind == "keyed_vectors":
        from gensim.models import KeyedVectors

        keyed = KeyedVectors(dimensions)
        keyed.add_vectors(list(vectors), np.stack(list(vectors.values())))
        keyed.save(str(path))
        return path
    lines = [f"{w} " + " ".join(f"{x:.5f}" for x in v) for w, v in vectors.items()]
    header = [] if kind == "glove" else [f"{len(vectors)} {dimensions}"]
    path.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    return path


VOCABULARY = sorted({w.lower() for text, _ in ENGLISH for w in text.split()} | {"parcel", "unused", "spare"})


@pytest.mark.parametrize("kind", ["word2vec_text", "glove", "keyed_vectors"])
def test_pretrained_vectors_pass_the_checks_and_survive_deletion(tmp_path: Path, kind: str) -> None:
    source = write_vectors(tmp_path / f"vectors.{'kv' if kind == 'keyed_vectors' else 'txt'}", kind, VOCABULARY)
    config = {"source": "pretrained", "path": str(source), "keep_most_frequent": 0}
    check_featurizer(lambda: Component(WordEmbeddingFeaturizer, tmp_path / "model", config), 8)

    component = Component(WordEmbeddingFeaturizer, tmp_path / "model2", config)
    component.trained(tokenised(ENGLISH))
    source.unlink()
    (sequence, _), = features(component.loaded(), tokenised(["where is my order"]))
    assert np.abs(sequence).sum(axis=1).all()  # every word still has its vector


def test_pretrained_vectors_are_trimmed_to_what_the_bot_needs(tmp_path: Path) -> None:
    source = write_vectors(tmp_path / "big.txt", "word2vec_text", [f"filler{i}" for i in range(500)] + VOCABULARY)
    component = Component(WordEmbeddingFeaturizer, tmp_path / "m",
                          {"source": "pretrained", "path": str(source), "keep_most_frequent": 20})
    featurizer = component.trained(tokenised(ENGLISH))
    assert len(featurizer.vectors.words) == 20 + len({w.lower() for t, _ in ENGLISH for w in t.split()})


@pytest.mark.parametrize("content", [None, b"\x00\x01garbage that is no vectors file\xff\xfe"],
                         ids=["missing", "corrupt"])
def test_missing_or_corrupt_vectors_file_is_named(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "vectors.bin"
    if content is not None:
        path.write_bytes(content)
    component = Component(WordEmbeddingFeaturizer, tmp_path / "m", {"source": "pretrained", "path": str(path)})
    with pytest.raises(VectorsFileError, match=str(path)):
        component.trained(tokenised(ENGLISH))


def test_pretrained_without_a_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigException, match="needs `path`"):
        Component(WordEmbeddingFeaturizer, tmp_path, {"source": "pretrained"}).trained(tokenised(ENGLISH))


def test_fasttext_gives_unknown_words_subword_vectors(tmp_path: Path) -> None:
    component = Component(WordEmbeddingFeaturizer, tmp_path, {**SMALL, "algorithm": "fasttext", "bucket": 2000})
    featurizer = component.trained(tokenised(ENGLISH))
    (sequence, _), = features(featurizer, tokenised(["deliveries parcels"]))
    assert np.abs(sequence).sum(axis=1).all()


def test_chinese_characters_can_be_the_unit(tmp_path: Path) -> None:
    component = Component(WordEmbeddingFeaturizer, tmp_path, {**SMALL, "unit": "char"})
    featurizer = component.trained(tokenised(CHINESE, chinese=True))
    assert set("订单快递退货") <= set(featurizer.vectors.words)
    messages = tokenised(["退货订单什么时候到"], chinese=True)  # new words made of known characters
    (sequence, _), = features(featurizer, messages)
    assert np.abs(sequence).sum(axis=1).all()


def test_corpus_files_change_the_fingerprint(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"question": "where is my order", "answer": "In My account."}) + "\n")
    config = {**WordEmbeddingFeaturizer.get_default_config(), "corpus": [str(tmp_path / "*.jsonl")]}
    before = WordEmbeddingFeaturizer.fingerprint_addon(config)
    assert WordEmbeddingFeaturizer.fingerprint_addon(config) == before
    corpus.write_text(json.dumps({"question": "where is my parcel", "answer": "In My account."}) + "\n")
    assert WordEmbeddingFeaturizer.fingerprint_addon(config) != before


def test_corpus_words_get_vectors(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"question": "Is the umbrella waterproof?", "answer": "Yes, fully."}) + "\n")
    component = Component(WordEmbeddingFeaturizer, tmp_path / "m", {**SMALL, "corpus": [str(corpus)]})
    assert "umbrella" in component.trained(tokenised(ENGLISH)).vectors.words


def test_finetuning_continues_the_same_vector_space(tmp_path: Path) -> None:
    config = {**SMALL, "epochs": 2}
    first = Component(WordEmbeddingFeaturizer, tmp_path, config).trained(tokenised(ENGLISH))
    tuned_component = Component(WordEmbeddingFeaturizer, tmp_path, config, finetuning=True)
    tuned = tuned_component.loaded()
    tuned.train(tokenised_training_data(ENGLISH + [("is the umbrella in stock", "availability")]))
    assert "umbrella" in tuned.vectors.words
    for word in ("order", "parcel", "return"):
        old, new = first.vectors.lookup(word), tuned.vectors.lookup(word)
        assert np.dot(old, new) / (np.linalg.norm(old) * np.linalg.norm(new)) > 0.9


def tokenised_training_data(examples: list[tuple[str, str]]) -> TrainingData:
    return TrainingData(tokenised(examples))


def test_training_gives_the_same_vectors_in_every_process() -> None:
    """Word vectors are reproducible across processes, whatever Python's string-hash salt."""
    script = ("import hashlib, sys; from components.word_vectors import TrainingSettings, train_word_vectors; "
              "sentences = [s.split() for s in ['where is my order', 'my order is late', 'refund my order']] * 20; "
              "vectors = train_word_vectors(sentences, TrainingSettings(dimensions=16, epochs=3, min_count=1)); "
              "print(hashlib.sha256(vectors.vectors.tobytes()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert len(digests) == 1
