"""Which words of a message made the intent: LIME-style attributions and single-word occlusion.

Works on any classifier given as a function from texts to intent confidences, so it explains a
whole Rasa NLU pipeline (DIET or not) from the outside. Plain numpy and scikit-learn; no Rasa.

LIME (Ribeiro et al. 2016) as its text explainer does it: drop random subsets of the words,
classify each perturbed text, and fit a linear model of each intent's confidence on which words
were kept, weighting each sample by its closeness to the whole message (cosine distance of the
keep-masks, exponential kernel of width 25). The coefficients are the words' weights. A message
short enough that all its subsets fit the sample budget gets all of them instead of a sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from components.text import detect_language, tokenize

# Intent -> confidence for each text, in order; an intent left out has confidence 0.
Classifier = Callable[[Sequence[str]], list[dict[str, float]]]

_WORD = re.compile(r"\w", re.UNICODE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Token:
    text: str
    start: int  # character offsets in the message
    end: int


@dataclass(frozen=True)
class MessageTokens:
    """A message cut into the project's tokens (components/text.py: spaCy rules, jieba for
    Chinese). Only words can be removed; punctuation always stays."""

    text: str
    tokens: tuple[Token, ...]

    @classmethod
    def of(cls, text: str) -> MessageTokens:
        tokens, cursor = [], 0
        for piece in tokenize(text, detect_language(text)):
            start = text.find(piece, cursor)
            if start < 0:  # the tokenizer changed the piece; it cannot be removed by position
                continue
            cursor = start + len(piece)
            if _WORD.search(piece):
                tokens.append(Token(piece, start, cursor))
        return cls(text, tuple(tokens))

    def __len__(self) -> int:
        return len(self.tokens)

    def without(self, removed: Sequence[int] | np.ndarray) -> str:
        """The message with the tokens at `removed` cut out, everything else as written."""
        cut = sorted((self.tokens[i].start, self.tokens[i].end) for i in set(int(i) for i in removed))
        pieces, cursor = [], 0
        for start, end in cut:
            pieces.append(self.text[cursor:start])
            cursor = end
        pieces.append(self.text[cursor:])
        return _SPACES.sub(" ", "".join(pieces)).strip()

    def kept(self, mask: np.ndarray) -> str:
        return self.without(np.flatnonzero(~mask))


def classify_unique(classify: Classifier, texts: Sequence[str]) -> list[dict[str, float]]:
    """`classify(texts)`, each distinct text once; an empty text supports no intent."""
    distinct = sorted({t for t in texts if t})
    found = dict(zip(distinct, classify(distinct), strict=True)) if distinct else {}
    return [found.get(t, {}) for t in texts]


def sample_masks(count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Keep-masks [n, count], the whole message first. Each other row drops 1 to count-1 words
    (LIME's scheme); every subset but the empty one when they number `samples` or fewer. A
    single word gets the empty message as its only other sample."""
    if count <= 1:
        return np.array([[True] * count, [False] * count], dtype=bool)
    if 2**count - 1 <= samples:
        rows = np.arange(2**count - 1, 0, -1)[:, None] >> np.arange(count)[None, :] & 1
        return rows.astype(bool)
    masks = np.ones((samples, count), dtype=bool)
    for row in range(1, samples):
        masks[row, rng.choice(count, size=rng.integers(1, count), replace=False)] = False
    return masks


def sample_count(words: int, samples: int) -> int:
    """How many messages `sample_masks` makes for a message of `words` words."""
    return 2 if words <= 1 else min(samples, 2**words - 1)


def linear_weights(masks: np.ndarray, targets: np.ndarray, kernel_width: float = 25.0) -> np.ndarray:
    """Weights [labels, words]: a ridge fit of `targets` [n, labels] on `masks` [n, words],
    samples weighted by their closeness to the first row (the whole message)."""
    from sklearn.linear_model import Ridge

    data = masks.astype(float)
    norms = np.linalg.norm(data, axis=1) * np.linalg.norm(data[0])
    cosine = np.divide(data @ data[0], norms, out=np.zeros(len(data)), where=norms > 0)
    distance = (1.0 - cosine) * 100
    closeness = np.sqrt(np.exp(-(distance**2) / kernel_width**2))
    # LIME's alpha of 1 is small next to its 5,000 samples; next to a short message's few it would
    # shrink every weight towards 0, so the penalty here only keeps the fit stable.
    model = Ridge(alpha=0.01).fit(data, targets, sample_weight=closeness)
    return np.atleast_2d(model.coef_)


def lime_attributions(message: MessageTokens, classify: Classifier, labels: Sequence[str], samples: int = 128,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Each label's weight of every token of `message`: positive words speak for the label."""
    if not len(message):
        return {label: np.zeros(0) for label in labels}
    masks = sample_masks(len(message), samples, np.random.default_rng(seed))
    confidences = classify_unique(classify, [message.kept(mask) for mask in masks])
    targets = np.array([[found.get(label, 0.0) for label in labels] for found in confidences])
    # One word: the kernel gives the empty message almost no weight, so its weight is what removing it loses.
    weights = (targets[0] - targets[1])[None, :].T if len(message) == 1 else linear_weights(masks, targets)
    return {label: weights[row] for row, label in enumerate(labels)}


def occlusion_attributions(message: MessageTokens, classify: Classifier,
                           labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Each label's confidence lost when one token is removed, for every token."""
    texts = [message.text, *(message.without([i]) for i in range(len(message)))]
    whole, *each = classify_unique(classify, texts)
    return {label: np.array([whole.get(label, 0.0) - found.get(label, 0.0) for found in each]) for label in labels}


def top_tokens(weights: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest weights, largest first (ties: the earlier token)."""
    return [int(i) for i in np.argsort(-weights, kind="stable")[:k]]
