"""Reply quality metrics. Each corpus-level score says how it was computed.

Word-level metrics (token F1, ROUGE-L, distinct-n, exact match) use `metric_tokens`:
lower-cased words and punctuation, with every Chinese character a token of its own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from components.text import detect_language, language

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\[[A-Z_]+\]|\{\{[^{}]+\}\}|[^\W_]+|[^\w\s]")


def metric_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def token_f1(hypothesis: str, reference: str) -> float:
    hypothesis_tokens, reference_tokens = metric_tokens(hypothesis), metric_tokens(reference)
    if not hypothesis_tokens or not reference_tokens:
        return float(hypothesis_tokens == reference_tokens)
    common = sum((Counter(hypothesis_tokens) & Counter(reference_tokens)).values())
    if not common:
        return 0.0
    precision, recall = common / len(hypothesis_tokens), common / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if item == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 (longest common subsequence of metric tokens), 0-100."""
    scores = []
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        h, r = metric_tokens(hypothesis), metric_tokens(reference)
        lcs = _lcs_length(h, r) if h and r else 0
        scores.append(0.0 if not lcs else 2 * lcs / (len(h) + len(r)))
    return 100 * sum(scores) / max(len(scores), 1)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams in all replies, 0-100."""
    grams = [tuple(tokens[i : i + n]) for tokens in map(metric_tokens, texts) for i in range(len(tokens) - n + 1)]
    return 100 * len(set(grams)) / len(grams) if grams else 0.0


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    same = sum(metric_tokens(h) == metric_tokens(r) for h, r in zip(hypotheses, references, strict=True))
    return 100 * same / max(len(hypotheses), 1)


@dataclass
class CorpusScore:
    score: float
    signature: str


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> CorpusScore:
    """sacrebleu corpus BLEU, with the tokeniser of an unspaced language when any reference
    is in one (`zh` for Chinese), else the default language's (`13a`)."""
    from sacrebleu.metrics import BLEU

    languages = [language(detect_language(r)) for r in references]
    metric = BLEU(tokenize=next((lang.bleu_tokenize for lang in languages if lang.unspaced),
                                language(None).bleu_tokenize))
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return CorpusScore(result.score, str(metric.get_signature()))


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> CorpusScore:
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return CorpusScore(result.score, str(metric.get_signature()))


CHRF_ORDER, CHRF_BETA = 6, 2  # sacrebleu's chrF defaults


def char_ngrams(text: str) -> list[Counter]:
    """Character 1..6-gram counts of `text` without its spaces: what sentence chrF compares."""
    chars = "".join(text.split())
    return [Counter(chars[i : i + n] for i in range(len(chars) - n + 1)) for n in range(1, CHRF_ORDER + 1)]


def sentence_chrf(hypothesis: list[Counter], reference: list[Counter]) -> float:
    """chrF (0-1) of two `char_ngrams` profiles: the F-beta of character n-gram precision and
    recall, each averaged over the orders 1..6 as sacrebleu does."""
    precision = recall = 0.0
    for hypothesis_grams, reference_grams in zip(hypothesis, reference, strict=True):
        hypothesis_total, reference_total = hypothesis_grams.total(), reference_grams.total()
        if hypothesis_total and reference_total:
            matched = (hypothesis_grams & reference_grams).total()
            precision += matched / hypothesis_total
            recall += matched / reference_total
    precision, recall = precision / CHRF_ORDER, recall / CHRF_ORDER
    if not precision + recall:
        return 0.0
    return (1 + CHRF_BETA**2) * precision * recall / (CHRF_BETA**2 * precision + recall)


def consensus_index(texts: Sequence[str], references: Sequence[str] = ()) -> int:
    """The text with the highest mean chrF against all the other texts and `references`: the
    minimum Bayes risk choice when they are draws from what a good answer looks like and chrF is
    the gain. Ties: the first."""
    if len(texts) < 2 and not references:
        return 0
    profiles = [char_ngrams(text) for text in [*texts, *references]]
    gains = [[sentence_chrf(profiles[i], profiles[j]) for j in range(len(profiles)) if j != i]
             for i in range(len(texts))]
    means = [sum(row) for row in gains]
    return max(range(len(texts)), key=means.__getitem__)


def expected_calibration_error(probabilities: Sequence[float], outcomes: Sequence[bool], bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width probability bins, weighted by bin size."""
    total, error = len(probabilities), 0.0
    for low in range(bins):
        members = [(p, o) for p, o in zip(probabilities, outcomes, strict=True)
                   if low / bins <= p < (low + 1) / bins or (low == bins - 1 and p == 1.0)]
        if members:
            confidence = sum(p for p, _ in members) / len(members)
            accuracy = sum(o for _, o in members) / len(members)
            error += len(members) / total * abs(accuracy - confidence)
    return error


@dataclass
class PlattCalibration:
    """P(reply is good) = sigmoid(slope * mean token log-prob + intercept).

    "Good" means token F1 with the reference of at least `good_f1`. Fitted on the
    validation split after training."""

    slope: float = 1.0
    intercept: float = 0.0
    good_f1: float = 0.5

    def probability(self, mean_log_prob: float) -> float:
        z = self.slope * mean_log_prob + self.intercept
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))

    @classmethod
    def fit(cls, mean_log_probs: Sequence[float], outcomes: Sequence[bool], good_f1: float = 0.5,
            steps: int = 500) -> PlattCalibration:
        """Logistic regression on one feature by Newton's method, with a tiny ridge so that
        a split where every reply is good (or bad) still gives finite weights."""
        import numpy as np

        x = np.asarray(mean_log_probs, dtype=np.float64)
        y = np.asarray(outcomes, dtype=np.float64)
        if not len(x):
            return cls(good_f1=good_f1)
        # Platt's targets keep the fit finite when the classes separate
        positives, negatives = y.sum(), len(y) - y.sum()
        y = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        features = np.stack([x, np.ones_like(x)], axis=1)
        weights = np.zeros(2)
        for _ in range(steps):
            predicted = 1 / (1 + np.exp(-np.clip(features @ weights, -30, 30)))
            gradient = features.T @ (predicted - y) + 1e-6 * weights
            hessian = (features * (predicted * (1 - predicted))[:, None]).T @ features + 1e-6 * np.eye(2)
            change = np.linalg.solve(hessian, gradient)
            weights -= change
            if np.abs(change).max() < 1e-9:
                break
        return cls(float(weights[0]), float(weights[1]), good_f1)
