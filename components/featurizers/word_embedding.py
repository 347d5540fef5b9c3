"""`WordEmbeddingFeaturizer`: dense Rasa features from word vectors that are trained on
the bot's own texts during `rasa train`, or read from a pretrained file, and that are
saved inside the Rasa model either way."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.corpus import BuildConfig, Pair, corpus_paths, file_digest, read_records
from components.text import detect_language, normalise, tokenize
from components.word_vectors import (
    PRETRAINED_FORMATS,
    TrainingSettings,
    WordVectors,
    load_pretrained,
    sentence_vector,
    train_word_vectors,
)

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class WordEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Token and sentence features from word vectors kept inside the Rasa model."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        defaults = TrainingSettings()
        return {
            **DenseFeaturizer.get_default_config(),
            # "train": learn vectors during `rasa train`; "pretrained": read them from `path`.
            "source": "train",
            # Pretrained vectors file (source: pretrained).
            "path": None,
            # Its format: auto, word2vec_binary, word2vec_text, glove, fasttext_bin, keyed_vectors.
            "format": "auto",
            # Pretrained: besides the words of the training data, keep this many of the file's
            # most frequent words, so the model stays small.
            "keep_most_frequent": 10_000,
            # Pretrained fastText: keep the n-gram vectors that give unknown words a vector.
            "keep_ngrams": True,
            # Extra texts to learn from besides the NLU examples (globs; any format that
            # `kefu corpus build` reads). Their contents are part of the fingerprint.
            "corpus": [],
            # source: train - gensim's "word2vec" or "fasttext", "skipgram" or "cbow".
            "algorithm": defaults.algorithm,
            "architecture": defaults.architecture,
            "dimensions": defaults.dimensions,
            "window": defaults.window,
            "min_count": defaults.min_count,
            "epochs": defaults.epochs,
            "seed": defaults.seed,
            # fastText character n-grams and hash buckets.
            "min_n": defaults.min_n,
            "max_n": defaults.max_n,
            "bucket": defaults.bucket,
            # Sentence feature: "mean", "max" or "sif" (smooth inverse frequency weighted mean).
            "pooling": "mean",
            # Lower-case tokens before looking them up.
            "lowercase": True,
            # Scale word vectors to unit length: vectors trained on a small corpus are tiny,
            # and a classifier learns little from features that are nearly zero.
            "normalise": True,
            # "word", or "char" to embed Chinese characters (a token's vector is the mean of
            # its characters').
            "unit": "word",
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if config["source"] not in ("train", "pretrained"):
            raise InvalidConfigException(f'WordEmbeddingFeaturizer: source must be "train" or "pretrained", '
                                         f'not "{config["source"]}"')
        if config["source"] == "pretrained" and not config["path"]:
            raise InvalidConfigException("WordEmbeddingFeaturizer: source: pretrained needs `path` to a vectors file")
        if config["format"] not in PRETRAINED_FORMATS:
            raise InvalidConfigException(f"WordEmbeddingFeaturizer: format must be one of {PRETRAINED_FORMATS}")
        if config["pooling"] not in ("mean", "max", "sif"):
            raise InvalidConfigException('WordEmbeddingFeaturizer: pooling must be "mean", "max" or "sif"')
        if config["unit"] not in ("word", "char"):
            raise InvalidConfigException('WordEmbeddingFeaturizer: unit must be "word" or "char"')

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Changed corpus files or a changed vectors file retrain the component."""
        paths = corpus_paths(config.get("corpus") or [])
        if config.get("source") == "pretrained" and config.get("path") and Path(config["path"]).is_file():
            paths.append(Path(config["path"]))
        return file_digest(paths) if paths else None

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, vectors: WordVectors | None = None) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._is_finetuning = execution_context.is_finetuning
        self.vectors = vectors

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> WordEmbeddingFeaturizer:
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> WordEmbeddingFeaturizer:
        with model_storage.read_from(resource) as folder:
            vectors = WordVectors.load(folder)
        return cls(config, model_storage, resource, execution_context, vectors)

    # ---- training ----------------------------------------------------------

    def _units(self, tokens: list[str]) -> list[str]:
        if self._config["lowercase"]:
            tokens = [t.lower() for t in tokens]
        if self._config["unit"] == "char":
            return [char for token in tokens for char in token if not char.isspace()]
        return tokens

    def _sentences(self, training_data: TrainingData) -> list[list[str]]:
        sentences = [
            self._units([t.text for t in message.get(TOKENS_NAMES[attribute])])
            for message in training_data.training_examples
            for attribute in DENSE_FEATURIZABLE_ATTRIBUTES
            if message.get(TOKENS_NAMES[attribute])
        ]
        for path in corpus_paths(self._config["corpus"]):
            for record in read_records(path, BuildConfig()):
                if isinstance(record, Pair):
                    for text in (record.question, record.answer, *record.context):
                        text = normalise(text)
                        if text:
                            sentences.append(self._units(tokenize(text, record.lang or detect_language(text))))
        return sentences

    def train(self, training_data: TrainingData) -> Resource:
        sentences = self._sentences(training_data)
        if self._config["source"] == "pretrained":
            counts = Counter(unit for sentence in sentences for unit in sentence)
            self.vectors = load_pretrained(Path(self._config["path"]), self._config["format"], counts,
                                           self._config["keep_most_frequent"], dict(counts),
                                           self._config["keep_ngrams"])
        else:
            settings = TrainingSettings(**{key: self._config[key] for key in (
                "algorithm", "architecture", "dimensions", "window", "min_count", "epochs", "seed",
                "min_n", "max_n", "bucket")})
            # Fine-tuning continues the previous vectors, so downstream models see the same space.
            previous = self.vectors if self._is_finetuning else None
            self.vectors = train_word_vectors(sentences, settings, previous)
        logger.info(f"WordEmbeddingFeaturizer: {len(self.vectors.words)} words, "
                    f"{self.vectors.dimensions} dimensions ({self._config['source']})")
        with self._model_storage.write_to(self._resource) as folder:
            self.vectors.save(folder)
        return self._resource

    # ---- featurising -------------------------------------------------------

    def _token_vector(self, token: str) -> np.ndarray | None:
        units = self._units([token])
        found = [v for v in map(self.vectors.lookup, units) if v is not None]
        if not found:
            return None
        vector = np.mean(found, axis=0)
        if self._config["normalise"]:
            norm = np.linalg.norm(vector)
            return vector / norm if norm > 0 else None
        return vector

    def _featurize(self, message: Message, attribute: str) -> int:
        tokens = message.get(TOKENS_NAMES[attribute])
        if not tokens:
            return 0
        rows = np.zeros((len(tokens), self.vectors.dimensions), dtype=np.float32)
        unknown = 0
        for i, token in enumerate(tokens):
            vector = self._token_vector(token.text)
            if vector is None:
                unknown += 1
            else:
                rows[i] = vector
        words = [t.text.lower() if self._config["lowercase"] else t.text for t in tokens]
        sentence = sentence_vector(rows, words, self.vectors, self._config["pooling"])
        self.add_features_to_message(rows, sentence[np.newaxis, :], attribute, message)
        return unknown

    def process(self, messages: list[Message]) -> list[Message]:
        if self.vectors is None:
            raise InvalidConfigException("WordEmbeddingFeaturizer has no vectors: train the model first")
        unknown = 0
        for message in messages:
            for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                unknown += self._featurize(message, attribute)
        if unknown:
            logger.debug(f"WordEmbeddingFeaturizer: {unknown} out-of-vocabulary tokens got a zero vector")
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
