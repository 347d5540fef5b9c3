"""Word vectors for the featurizers and the generator: trained with gensim on the bot's own texts, or read
from a pretrained file, trimmed, and saved as safetensors plus JSON (never pickle).

Nothing here knows about Rasa, so the vectors can be built and checked on their own.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

logger = logging.getLogger(__name__)

PRETRAINED_FORMATS = ("auto", "word2vec_binary", "word2vec_text", "glove", "fasttext_bin", "keyed_vectors")
VECTORS_FILE = "vectors.safetensors"
META_FILE = "vectors.json"


class VectorsFileError(ValueError):
    """A pretrained vectors file that is missing or cannot be read."""


@dataclass
class TrainingSettings:
    """How vectors are trained on the bot's texts (`source: train`)."""

    algorithm: str = "word2vec"  # word2vec | fasttext
    architecture: str = "skipgram"  # skipgram | cbow
    dimensions: int = 100
    window: int = 5
    min_count: int = 1
    epochs: int = 30
    seed: int = 42
    workers: int = 1  # gensim is reproducible only with one worker
    min_n: int = 3  # fastText character n-grams
    max_n: int = 5
    bucket: int = 20_000  # fastText n-gram buckets; each costs `dimensions` floats in the model


@dataclass
class WordVectors:
    """A vocabulary, its vectors, and optionally fastText n-gram vectors for OOV words."""

    words: list[str]
    vectors: np.ndarray  # [len(words), dimensions], float32
    counts: dict[str, int] = field(default_factory=dict)  # token counts in the bot's texts
    ngram_vectors: np.ndarray | None = None  # [bucket, dimensions]
    min_n: int = 3
    max_n: int = 5
    # Kept only for vectors trained here, so `rasa train --finetune` can continue them.
    input_vectors: np.ndarray | None = None  # gensim's word (fastText: whole-word) input weights
    output_vectors: np.ndarray | None = None  # gensim's negative-sampling output weights

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.words)}
        self.total_count = sum(self.counts.values())

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    def lookup(self, word: str) -> np.ndarray | None:
        """The word's vector; fastText n-grams for unknown words; None if neither."""
        row = self.index.get(word)
        if row is not None:
            return self.vectors[row]
        if self.ngram_vectors is None:
            return None
        from gensim.models.fasttext import ft_ngram_hashes

        hashes = ft_ngram_hashes(word, self.min_n, self.max_n, len(self.ngram_vectors))
        if not hashes:
            return None
        return self.ngram_vectors[hashes].mean(axis=0)

    def sif_weight(self, word: str, smoothing: float = 1e-3) -> float:
        """Smooth inverse frequency: a / (a + p(word)), p from the bot's own texts."""
        if not self.total_count:
            return 1.0
        return smoothing / (smoothing + self.counts.get(word, 0) / self.total_count)

    def save(self, folder: Path) -> None:
        arrays = {"vectors": self.vectors, "ngram_vectors": self.ngram_vectors,
                  "input_vectors": self.input_vectors, "output_vectors": self.output_vectors}
        save_file({name: np.ascontiguousarray(array, dtype=np.float32)
                   for name, array in arrays.items() if array is not None}, str(folder / VECTORS_FILE))
        meta = {"words": self.words, "counts": self.counts, "min_n": self.min_n, "max_n": self.max_n}
        (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> WordVectors:
        tensors = load_file(str(folder / VECTORS_FILE))
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        return cls(meta["words"], tensors["vectors"], meta["counts"], tensors.get("ngram_vectors"),
                   meta["min_n"], meta["max_n"], tensors.get("input_vectors"), tensors.get("output_vectors"))


def _new_gensim_model(settings: TrainingSettings):  # noqa: ANN202 - gensim Word2Vec or FastText
    from gensim.models import FastText, Word2Vec

    common = dict(vector_size=settings.dimensions, window=settings.window, min_count=settings.min_count,
                  sg=1 if settings.architecture == "skipgram" else 0, seed=settings.seed,
                  workers=settings.workers)
    if settings.algorithm == "fasttext":
        return FastText(min_n=settings.min_n, max_n=settings.max_n, bucket=settings.bucket, **common)
    if settings.algorithm == "word2vec":
        return Word2Vec(**common)
    raise ValueError(f'algorithm must be "word2vec" or "fasttext", not "{settings.algorithm}"')


def _restore(model, previous: WordVectors) -> None:  # noqa: ANN001
    """Put the previous run's trained weights back into a model with its vocabulary."""
    model.build_vocab_from_freq({w: previous.counts.get(w, 1) for w in previous.words})
    fasttext = previous.ngram_vectors is not None
    inputs = model.wv.vectors_vocab if fasttext else model.wv.vectors
    for word, row in model.wv.key_to_index.items():
        inputs[row] = previous.input_vectors[previous.index[word]]
        model.syn1neg[row] = previous.output_vectors[previous.index[word]]
    if fasttext:
        model.wv.vectors_ngrams[:] = previous.ngram_vectors


def train_word_vectors(sentences: Sequence[list[str]], settings: TrainingSettings,
                       previous: WordVectors | None = None) -> WordVectors:
    """Train on tokenised sentences. With `previous` (vectors trained here before), the
    old model is restored and its vocabulary extended (`build_vocab(update=True)`), so
    training continues in the same vector space."""
    sentences = [s for s in sentences if s]
    if not sentences:
        raise ValueError("no tokens to train word vectors on")
    model = _new_gensim_model(settings)
    if previous is not None and previous.input_vectors is not None:
        _restore(model, previous)
        model.build_vocab(sentences, update=True)
    else:
        model.build_vocab(sentences)
    model.train(sentences, total_examples=len(sentences), epochs=settings.epochs)
    counts = Counter(previous.counts if previous is not None else {})
    counts.update(token for sentence in sentences for token in sentence)
    fasttext = settings.algorithm == "fasttext"
    wv = model.wv
    return WordVectors(
        list(wv.index_to_key), np.asarray(wv.vectors, dtype=np.float32), dict(counts),
        np.asarray(wv.vectors_ngrams, dtype=np.float32) if fasttext else None, settings.min_n, settings.max_n,
        np.asarray(wv.vectors_vocab if fasttext else wv.vectors, dtype=np.float32),
        np.asarray(model.syn1neg, dtype=np.float32),
    )


def _detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".bin":
        with path.open("rb") as handle:
            # fastText's own .bin starts with its magic number 793712314 (little-endian int32).
            return "fasttext_bin" if handle.read(4) == (793712314).to_bytes(4, "little") else "word2vec_binary"
    if suffix in (".kv", ".model"):
        return "keyed_vectors"
    with path.open("rb") as handle:
        first = handle.readline().split()
    # word2vec text and fastText .vec start with "<count> <dimensions>"; GloVe has no header.
    is_header = len(first) == 2 and all(part.isdigit() for part in first)
    return "word2vec_text" if is_header else "glove"


def load_pretrained(path: Path, file_format: str = "auto", keep_words: Iterable[str] = (),
                    keep_most_frequent: int = 10_000, counts: dict[str, int] | None = None,
                    keep_ngrams: bool = True) -> WordVectors:
    """Read a vectors file and keep only `keep_words` plus the `keep_most_frequent`
    first (most frequent) words of the file, so the saved model stays small. fastText
    n-gram vectors (for unknown words) are kept when `keep_ngrams`."""
    path = Path(path)
    if file_format not in PRETRAINED_FORMATS:
        raise VectorsFileError(f"{path}: unknown format {file_format!r}; use one of {', '.join(PRETRAINED_FORMATS)}")
    if not path.is_file():
        raise VectorsFileError(f"{path}: no such vectors file; fix the featurizer's `path`")
    kind = _detect_format(path) if file_format == "auto" else file_format
    try:
        from gensim.models import KeyedVectors
        from gensim.models.fasttext import load_facebook_vectors

        if kind == "fasttext_bin":
            vectors = load_facebook_vectors(str(path))
        elif kind == "keyed_vectors":
            vectors = KeyedVectors.load(str(path))
        else:
            vectors = KeyedVectors.load_word2vec_format(
                str(path), binary=kind == "word2vec_binary", no_header=kind == "glove",
                unicode_errors="replace")
    except Exception as error:  # gensim raises many kinds on a damaged file
        raise VectorsFileError(f"{path}: cannot read it as {kind} vectors ({type(error).__name__}: {error}); "
                               "check the file and the featurizer's `format`") from error
    wanted = dict.fromkeys(list(vectors.index_to_key[:keep_most_frequent]))
    wanted.update(dict.fromkeys(w for w in keep_words if w in vectors.key_to_index))
    words = list(wanted)
    matrix = np.stack([vectors[w] for w in words]).astype(np.float32) if words else \
        np.zeros((0, vectors.vector_size), dtype=np.float32)
    ngrams = getattr(vectors, "vectors_ngrams", None) if keep_ngrams else None
    return WordVectors(words, matrix, dict(counts or {}),
                       np.asarray(ngrams, dtype=np.float32) if ngrams is not None and len(ngrams) else None,
                       getattr(vectors, "min_n", 3), getattr(vectors, "max_n", 5))


def sentence_vector(token_vectors: np.ndarray, tokens: Sequence[str], vectors: WordVectors, pooling: str) -> np.ndarray:
    """Pool token vectors into one: `mean` or `max` over known tokens, or `sif`
    (frequency-weighted mean)."""
    known = np.array([row.any() for row in token_vectors], dtype=bool)
    if not known.any():
        return np.zeros(token_vectors.shape[1], dtype=np.float32)
    if pooling == "max":
        return token_vectors[known].max(axis=0)
    if pooling == "sif":
        weights = np.array([vectors.sif_weight(t) for t, k in zip(tokens, known, strict=True) if k], dtype=np.float32)
        return (weights[:, None] * token_vectors[known]).sum(axis=0) / weights.sum()
    return token_vectors[known].mean(axis=0)
