"""The corpus answers a retrieval-augmented generator reads beside the question.

The index holds the training pairs; a question's evidence is the answers of its `k` nearest
training questions (TF-IDF over character n-grams, which suits English and Chinese alike).
In training, a pair's own answer is never its evidence, so the generator learns to use its
neighbours rather than to copy the reference. The pairs are saved in the generator folder
(`retrieval.jsonl`) and the index is rebuilt from them when the folder is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RETRIEVAL_FILE = "retrieval.jsonl"
QUERIES_PER_CHUNK = 512  # dense similarity rows at a time: 512 x corpus size floats


class RetrievalFileError(ValueError):
    """A generator folder whose retrieval pairs are missing or unreadable."""


def char_ngram_tfidf():  # noqa: ANN201 - sklearn's TfidfVectorizer
    from sklearn.feature_extraction.text import TfidfVectorizer

    # character n-grams inside word boundaries work for English and Chinese alike
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True)


class RetrievalIndex:
    def __init__(self, questions: Sequence[str], answers: Sequence[str]) -> None:
        if not questions or len(questions) != len(answers):
            raise ValueError("a retrieval index needs as many answers as questions, and at least one")
        self.questions, self.answers = list(questions), list(answers)
        self.vectorizer = char_ngram_tfidf()
        self.matrix = self.vectorizer.fit_transform(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def nearest(self, questions: Sequence[str], k: int, exclude: Sequence[int] | None = None) -> list[list[int]]:
        """Indices of the `k` most similar training questions, best first; `exclude[i]` (a training
        index, or -1 for none) is never among question i's."""
        k = min(k, len(self) - (exclude is not None))
        found: list[list[int]] = []
        for start in range(0, len(questions), QUERIES_PER_CHUNK):
            chunk = list(questions[start : start + QUERIES_PER_CHUNK])
            scores = self.similarities(chunk)
            if exclude is not None:
                rows = np.arange(len(chunk))
                own = np.asarray(exclude[start : start + len(chunk)])
                scores[rows[own >= 0], own[own >= 0]] = -np.inf
            best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(chunk), 0), int)
            for row, candidates in zip(scores, best, strict=True):
                # ties (often all-zero rows) fall to the lower index, so results never depend on the sort
                found.append(sorted(candidates.tolist(), key=lambda index: (-row[index], index)))
        return found

    def similarities(self, questions: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each question to each training question: [questions, index size]."""
        return (self.vectorizer.transform(list(questions)) @ self.matrix.T).toarray()

    def most_similar(self, question: str) -> tuple[int, float]:
        """The index of the most similar training question, and its cosine similarity."""
        scores = self.similarities([question])[0]
        best = int(scores.argmax())
        return best, float(scores[best])

    def evidence(self, questions: Sequence[str], k: int, exclude: Sequence[int] | None = None) -> list[list[str]]:
        return [[self.answers[index] for index in indices] for indices in self.nearest(questions, k, exclude)]

    def save(self, folder: str | Path) -> None:
        lines = (json.dumps({"question": q, "answer": a}, ensure_ascii=False) + "\n"
                 for q, a in zip(self.questions, self.answers, strict=True))
        (Path(folder) / RETRIEVAL_FILE).write_text("".join(lines), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> RetrievalIndex:
        path = Path(folder) / RETRIEVAL_FILE
        if not path.is_file():
            raise RetrievalFileError(f"{path}: missing; the generator reads retrieved answers, so its folder "
                                     "must hold the pairs they come from")
        questions, answers = [], []
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    pair = json.loads(line)
                    questions.append(pair["question"])
                    answers.append(pair["answer"])
            return cls(questions, answers)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise RetrievalFileError(f"{path}: not retrieval pairs ({error})") from error
