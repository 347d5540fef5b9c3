"""Scoring reply systems on a test split: generators next to two baselines.

- retrieval: the answer of the most similar training question (TF-IDF over character
  n-grams, cosine);
- intent prototype: a linear classifier predicts the intent, and the reply is that
  intent's most central training answer (the one closest to all its others).

Quality is scored on full replies decoded in batches; latency is timed one reply at a
time, as a bot answers, on the first `latency_samples` test questions.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from components.generator.data import Dialogue
from components.generator.decoding import DecodingSettings
from components.generator.generator import ResponseGenerator
from components.generator.metrics import (
    bleu,
    chrf,
    distinct_n,
    exact_match,
    expected_calibration_error,
    metric_tokens,
    rouge_l,
    token_f1,
)
from components.generator.retrieval import RetrievalIndex, char_ngram_tfidf


class ReplySystem(Protocol):
    name: str

    def replies(self, questions: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[str]: ...


class RetrievalBaseline:
    """The answer of the nearest training question (ties and no match: the first such pair)."""

    name = "retrieval (TF-IDF)"

    def __init__(self, train: Sequence[Dialogue]) -> None:
        self.index = RetrievalIndex([d.question for d in train], [d.answer for d in train])

    def replies(self, questions: Sequence[str], contexts: Sequence[Sequence[str]] = ()) -> list[str]:
        return [found[0] for found in self.index.evidence(questions, 1)]


class IntentPrototypeBaseline:
    name = "intent prototype"

    def __init__(self, train: Sequence[Dialogue]) -> None:
        from sklearn.svm import LinearSVC

        labelled = [d for d in train if d.intent]
        if len({d.intent for d in labelled}) < 2:
            raise ValueError("the intent-prototype baseline needs a train split with at least two intents")
        self.vectorizer = char_ngram_tfidf()
        features = self.vectorizer.fit_transform([d.question for d in labelled])
        self.classifier = LinearSVC(C=1.0, random_state=0).fit(features, [d.intent for d in labelled])
        answers_by_intent: dict[str, list[str]] = {}
        for dialogue in labelled:
            answers_by_intent.setdefault(dialogue.intent, []).append(dialogue.answer)
        answer_vectorizer = char_ngram_tfidf()
        answer_vectorizer.fit([d.answer for d in labelled])
        self.prototypes = {}
        for intent, answers in answers_by_intent.items():
            unique = sorted(set(answers))
            vectors = answer_vectorizer.transform(unique)
            centrality = (vectors @ vectors.T).sum(axis=1).A1
            self.prototypes[intent] = unique[int(centrality.argmax())]

    def replies(self, questions: Sequence[str], contexts: Sequence[Sequence[str]] = ()) -> list[str]:
        intents = self.classifier.predict(self.vectorizer.transform(list(questions)))
        return [self.prototypes[intent] for intent in intents]


class GeneratorSystem:
    def __init__(self, generator: ResponseGenerator, name: str, decoding: DecodingSettings | None = None) -> None:
        self.generator, self.name, self.decoding = generator, name, decoding
        self.confidences: list[float] = []

    def replies(self, questions: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[str]:
        replies = self.generator.replies(questions, contexts, self.decoding)
        self.confidences = [r.confidence for r in replies]
        return [r.text for r in replies]


@dataclass
class SystemScores:
    system: str
    bleu: float
    chrf: float
    rouge_l: float
    distinct_1: float
    distinct_2: float
    exact_match: float
    mean_length: float  # metric tokens per reply
    latency_p50_ms: float
    latency_p95_ms: float
    perplexity: float | None = None  # generators only
    calibration_error: float | None = None  # generators only: ECE of P(token F1 >= 0.5)


def evaluate_system(system: ReplySystem, test: Sequence[Dialogue], latency_samples: int = 100) -> SystemScores:
    questions, contexts = [d.question for d in test], [d.context for d in test]
    references = [d.answer for d in test]
    hypotheses = system.replies(questions, contexts)
    confidences = list(getattr(system, "confidences", ()))
    seconds = []
    for question, context in list(zip(questions, contexts, strict=True))[:latency_samples]:
        start = time.perf_counter()
        system.replies([question], [context])
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    scores = SystemScores(
        system=system.name,
        bleu=bleu(hypotheses, references).score, chrf=chrf(hypotheses, references).score,
        rouge_l=rouge_l(hypotheses, references),
        distinct_1=distinct_n(hypotheses, 1), distinct_2=distinct_n(hypotheses, 2),
        exact_match=exact_match(hypotheses, references),
        mean_length=statistics.fmean(len(metric_tokens(h)) for h in hypotheses),
        latency_p50_ms=1000 * statistics.median(seconds),
        latency_p95_ms=1000 * seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))])
    if isinstance(system, GeneratorSystem):
        good = [token_f1(h, r) >= system.generator.calibration.good_f1 for h, r in zip(hypotheses, references,
                                                                                        strict=True)]
        scores.perplexity = system.generator.perplexity(test)
        scores.calibration_error = expected_calibration_error(confidences, good)
    return scores


def signatures(test: Sequence[Dialogue]) -> dict[str, str]:
    references = [d.answer for d in test]
    return {"bleu": bleu(references, references).signature, "chrf": chrf(references, references).signature}


def write_report(rows: Sequence[SystemScores], out: Path, title: str, notes: Sequence[str] = ()) -> str:
    """Markdown table, JSON and a bar chart (PNG) in `out`; returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [("BLEU", "bleu"), ("chrF", "chrf"), ("ROUGE-L", "rouge_l"), ("distinct-1", "distinct_1"),
               ("distinct-2", "distinct_2"), ("exact %", "exact_match"), ("length", "mean_length"),
               ("perplexity", "perplexity"), ("ECE", "calibration_error"), ("p50 ms", "latency_p50_ms"),
               ("p95 ms", "latency_p95_ms")]
    lines = [f"# {title}", "", *notes, "", "| system | " + " | ".join(c for c, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for row in rows:
        values = [getattr(row, key) for _, key in columns]
        lines.append(f"| {row.system} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in values) + " |")
    markdown = "\n".join(lines) + "\n"
    (out / "evaluation.md").write_text(markdown, encoding="utf-8")
    (out / "evaluation.json").write_text(json.dumps({"title": title, "notes": list(notes),
                                                     "systems": [asdict(r) for r in rows]}, indent=2) + "\n")
    plot_scores(rows, out / "evaluation.png", title)
    return markdown


def plot_scores(rows: Sequence[SystemScores], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("BLEU", "bleu"), ("chrF", "chrf"), ("ROUGE-L", "rouge_l")]
    figure, axes = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(rows), 1)
    for index, row in enumerate(rows):
        positions = [m + index * width for m in range(len(metrics))]
        axes.bar(positions, [getattr(row, key) for _, key in metrics], width, label=row.system)
    axes.set_xticks([m + width * (len(rows) - 1) / 2 for m in range(len(metrics))], [label for label, _ in metrics])
    axes.set_ylabel("score (0-100)")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
