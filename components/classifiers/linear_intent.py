"""`LinearIntentClassifier`: a second opinion on the intent, beside DIET, from a linear model over
the sentence features the pipeline already made.

DIET is sure of phrasings like its examples and unsure of long, angry or conditional questions
("if I call off my headphones order before it leaves, do you take a penalty out of my money?"),
which fall back. A logistic regression over the pretrained encoder's sentence vector and the
character n-grams reads them by meaning and by word parts. Placed after DIET, it takes the
weighted geometric mean of its probabilities and DIET's ranking (`weight`): where both agree the
intent stays sure, where they disagree the confidence drops and FallbackClassifier asks again
(docs/nlu.md).

config.yml, after DIETClassifier and before FallbackClassifier:

    - name: components.classifiers.LinearIntentClassifier
      weight: 0.5

Sparse sentence features (counts) are weighted by tf-idf, each featurizer's block is scaled to
unit length, and the blocks are put side by side. Without an earlier ranking (no DIET before it)
its own probabilities are the ranking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

logger = logging.getLogger(__name__)

MODEL_FILE = "linear_intent.npz"
# the probability an intent missing from a ranking counts as, in the geometric mean
FLOOR = 1e-6


@dataclass(frozen=True)
class FeatureBlock:
    """One featurizer's sentence features: its name, width, and (for counts) the idf weights."""

    origin: str
    width: int
    idf: np.ndarray | None  # None for dense features


def sentence_features(message: Message, featurizers: list[str]) -> dict[str, Any]:
    """The message's text sentence features by featurizer (all of them when `featurizers` is empty)."""
    return {feature.origin: feature.features for feature in message.features
            if feature.attribute == TEXT and feature.type == FEATURE_TYPE_SENTENCE
            and (not featurizers or feature.origin in featurizers)}


def _unit_rows(matrix: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
    return scipy.sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix


class LinearIntentModel:
    """Logistic regression over side-by-side feature blocks; plain numpy and scikit-learn."""

    def __init__(self, blocks: list[FeatureBlock], classes: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray) -> None:
        self.blocks, self.classes, self.coef, self.intercept = blocks, classes, coef, intercept

    @staticmethod
    def layout(rows: list[dict[str, Any]]) -> list[FeatureBlock]:
        """The blocks every row has, sorted by name, with idf weights for the sparse ones."""
        origins = sorted(set.intersection(*(set(row) for row in rows)))
        blocks = []
        for origin in origins:
            first = rows[0][origin]
            if scipy.sparse.issparse(first):
                counts = scipy.sparse.vstack([row[origin] for row in rows]).tocsr()
                document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
                idf = np.log((1 + len(rows)) / (1 + document_frequency)) + 1.0
                blocks.append(FeatureBlock(origin, counts.shape[1], idf))
            else:
                blocks.append(FeatureBlock(origin, int(np.asarray(first).shape[-1]), None))
        return blocks

    @staticmethod
    def matrix(blocks: list[FeatureBlock], rows: list[dict[str, Any]]) -> scipy.sparse.csr_matrix:
        """Rows of side-by-side blocks, each scaled to unit length; a block a row lacks is zeros."""
        parts = []
        for block in blocks:
            if block.idf is not None:
                counts = scipy.sparse.vstack([
                    row[block.origin] if block.origin in row else scipy.sparse.csr_matrix((1, block.width))
                    for row in rows]).tocsr().astype(np.float64)
                counts.data = (1.0 + np.log(np.maximum(counts.data, 1e-12))) * block.idf[counts.indices]
                parts.append(_unit_rows(counts))
            else:
                dense = np.vstack([np.asarray(row[block.origin], dtype=np.float64).reshape(1, -1)
                                   if block.origin in row else np.zeros((1, block.width)) for row in rows])
                dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
                parts.append(scipy.sparse.csr_matrix(dense))
        return scipy.sparse.hstack(parts).tocsr()

    @classmethod
    def fit(cls, rows: list[dict[str, Any]], labels: list[str], regularisation: float,
            max_iterations: int) -> LinearIntentModel:
        blocks = cls.layout(rows)
        model = LogisticRegression(C=regularisation, max_iter=max_iterations)
        model.fit(cls.matrix(blocks, rows), labels)
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls(blocks, model.classes_.astype(str), coef, intercept)

    def reads(self, row: dict[str, Any]) -> bool:
        """Whether the row's blocks have the widths the model was trained on (a featurizer trained
        anew without this model, say, makes features it cannot read)."""
        return all(row[b.origin].shape[-1] == b.width for b in self.blocks if b.origin in row)

    def probabilities(self, rows: list[dict[str, Any]]) -> np.ndarray:
        scores = np.asarray(self.matrix(self.blocks, rows) @ self.coef.T) + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Any) -> None:
        arrays = {"classes": self.classes, "coef": self.coef, "intercept": self.intercept,
                  "origins": np.array([b.origin for b in self.blocks], dtype=str),
                  "widths": np.array([b.width for b in self.blocks], dtype=np.int64)}
        arrays.update({f"idf_{i}": b.idf for i, b in enumerate(self.blocks) if b.idf is not None})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Any) -> LinearIntentModel:
        with np.load(path, allow_pickle=False) as saved:
            blocks = [FeatureBlock(str(origin), int(width), saved[f"idf_{i}"] if f"idf_{i}" in saved else None)
                      for i, (origin, width) in enumerate(zip(saved["origins"], saved["widths"], strict=True))]
            return cls(blocks, saved["classes"], saved["coef"], saved["intercept"])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Combines a logistic regression's intent probabilities with the earlier classifier's ranking
    by a weighted geometric mean."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # This model's exponent in the weighted geometric mean; 1.0 replaces the earlier ranking.
            "weight": 0.5,
            # Inverse regularisation strength of the logistic regression (scikit-learn's C).
            "regularisation": 100.0,
            "max_iterations": 5000,
            # Featurizers (names or aliases) whose sentence features it reads; empty: all of them.
            "featurizers": [],
            # Intents kept in the ranking.
            "ranking_length": 10,
        }

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 model: LinearIntentModel | None = None) -> None:
        self._config, self._storage, self._resource, self._model = config, model_storage, resource, model
        self._featurizers = list(config["featurizers"] or [])
        self.weight = float(config["weight"])  # public: benchmarks and tests compare DIET alone (0.0)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if not 0.0 <= float(config["weight"]) <= 1.0:
            raise InvalidConfigException(f"LinearIntentClassifier: `weight` must be between 0 and 1, "
                                         f"not {config['weight']}")
        if float(config["regularisation"]) <= 0:
            raise InvalidConfigException("LinearIntentClassifier: `regularisation` must be above 0")

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> LinearIntentClassifier:
        cls.validate_config(config)
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> LinearIntentClassifier:
        try:
            with model_storage.read_from(resource) as folder:
                model = LinearIntentModel.load(folder / MODEL_FILE)
        except (ValueError, OSError, KeyError) as error:  # no file, or a damaged one
            logger.warning("LinearIntentClassifier: no usable model in %s (%s); the earlier classifier's "
                           "ranking stands", resource.name, error)
            model = None
        return cls(config, model_storage, resource, model)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [(sentence_features(m, self._featurizers), m.get(INTENT)) for m in training_data.intent_examples]
        examples = [(row, intent) for row, intent in examples if row]
        if len({intent for _, intent in examples}) < 2:
            logger.warning("LinearIntentClassifier: fewer than two intents with sentence features; not trained")
            return self._resource
        rows, labels = zip(*examples, strict=True)
        self._model = LinearIntentModel.fit(list(rows), list(labels), float(self._config["regularisation"]),
                                            int(self._config["max_iterations"]))
        with self._storage.write_to(self._resource) as folder:
            self._model.save(folder / MODEL_FILE)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        if self._model is None:
            return messages
        rows = [(m, row) for m in messages if (row := sentence_features(m, self._featurizers))]
        readable = [(m, row) for m, row in rows if self._model.reads(row)]
        if len(readable) < len(rows):
            logger.warning("LinearIntentClassifier: %d message(s) have features of other widths than it was "
                           "trained on; retrain the model. The earlier classifier's ranking stands.",
                           len(rows) - len(readable))
        if not readable:
            return messages
        probabilities = self._model.probabilities([row for _, row in readable])
        for (message, _), own in zip(readable, probabilities, strict=True):
            self._rank(message, dict(zip(self._model.classes.tolist(), own.tolist(), strict=True)))
        return messages

    def _rank(self, message: Message, own: dict[str, float]) -> None:
        earlier = {entry[INTENT_NAME_KEY]: entry[PREDICTED_CONFIDENCE_KEY]
                   for entry in message.get(INTENT_RANKING_KEY) or []}
        total = sum(earlier.values())
        weight = self.weight if total > 0 else 1.0
        names = set(own) | set(earlier)
        # a weighted geometric mean: an intent both rank high stays sure, one only one of them ranks
        # high loses (the arithmetic mean sent "你好，我想问一下运费" to fallback: DIET said delivery,
        # the n-grams of 你好 said greet), and intents neither ranks fall away
        logs = {name: weight * np.log(max(own.get(name, 0.0), FLOOR))
                + (1 - weight) * np.log(max(earlier.get(name, 0.0) / (total or 1.0), FLOOR)) for name in names}
        top = max(logs.values())
        unnormalised = {name: float(np.exp(value - top)) for name, value in logs.items()}
        total_mass = sum(unnormalised.values())
        combined = {name: value / total_mass for name, value in unnormalised.items()}
        ranking = sorted(combined.items(), key=lambda item: item[1], reverse=True)
        ranking = ranking[: int(self._config["ranking_length"])]
        name, confidence = ranking[0]
        message.set(INTENT, {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [{INTENT_NAME_KEY: n, PREDICTED_CONFIDENCE_KEY: c} for n, c in ranking],
                    add_to_output=True)
