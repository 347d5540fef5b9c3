"""Which of an intent's corpus answers a message asks for, or its written response: a classifier
for the languages the answer choice compares in characters (no sentence encoder reads them).

The nearest corpus question in characters misses new wordings: a Chinese question shares few
characters with another way of asking it. Each intent gets a logistic regression over character
n-grams (TF-IDF, 1-3) whose classes are its corpus answers that say more than the written
response, and the written response itself. It learns from every question of each class at once:
the corpus questions, labelled with their answer (or with the written response where their answer
says what it says), and the intent's NLU examples, which ask what the written response answers.
Classes are weighted by their size, so the many NLU examples do not drown the two or three
questions of an answer. Plain scikit-learn; `AnswerChooser` asks it.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from components.generator.metrics import token_f1
from components.text import fold_traditional, normalise

WRITTEN_RESPONSE = ""  # the class of the intent's written response
# chosen on the Chinese dev set (benchmarks/data/dev_specific_zh.yml against dev_intents_zh.yml)
REGULARISATION = 10.0


def _prepared(text: str) -> str:
    return fold_traditional(normalise(text)).lower()


@dataclass(frozen=True)
class LikeliestAnswer:
    answer: str
    probability: float
    written_response_probability: float


class ClassifierFileError(Exception):
    """A saved answer classifier that cannot be read."""


class AnswerClassifier:
    """Per language and intent: P(corpus answer | message) and P(written response | message)."""

    def __init__(self, models: dict[tuple[str, str], tuple[TfidfVectorizer, LogisticRegression]]) -> None:
        self.models = models

    @property
    def languages(self) -> set[str]:
        return {lang for lang, _ in self.models}

    @classmethod
    def fit(cls, pairs: Iterable[tuple[str, str, str, str]], examples: Mapping[str, Sequence[tuple[str, str]]],
            written_responses: Mapping[tuple[str, str], str], languages: Iterable[str],
            template_overlap: float) -> AnswerClassifier:
        """Learn from corpus `pairs` (question, answer, intent, lang), each intent's NLU `examples`
        ((text, lang)) and its `written_responses` ((intent, lang) -> text). A corpus answer whose
        token F1 with the written response reaches `template_overlap` counts as the written
        response, so the classes are the answers that say more. Intents with no corpus answer of
        their own get no model."""
        pairs = list(pairs)
        models = {}
        for lang in sorted(set(languages)):
            for intent in sorted({p[2] for p in pairs if p[3] == lang}):
                written = written_responses.get((intent, lang))
                if not written:
                    continue
                texts, labels = [], []
                for question, answer, pair_intent, pair_lang in pairs:
                    if (pair_intent, pair_lang) == (intent, lang):
                        texts.append(question)
                        labels.append(WRITTEN_RESPONSE if token_f1(answer, written) >= template_overlap else answer)
                asked = {_prepared(t) for t in texts}
                for text, example_lang in examples.get(intent, ()):
                    if example_lang == lang and _prepared(text) not in asked:
                        texts.append(text)
                        labels.append(WRITTEN_RESPONSE)
                if len(set(labels)) < 2 or WRITTEN_RESPONSE not in labels:
                    continue
                vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), preprocessor=_prepared,
                                             sublinear_tf=True)
                features = vectorizer.fit_transform(texts)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model = LogisticRegression(C=REGULARISATION, class_weight="balanced", max_iter=1000)
                    models[lang, intent] = vectorizer, model.fit(features, labels)
        return cls(models)

    def likeliest(self, text: str, lang: str, intent: str) -> LikeliestAnswer | None:
        """The corpus answer of `intent` most likely asked for by `text`, with its probability and
        the written response's; None when the intent has no model in `lang`."""
        found = self.models.get((lang, intent))
        if found is None:
            return None
        vectorizer, model = found
        probabilities = model.predict_proba(vectorizer.transform([text]))[0]
        classes = list(model.classes_)
        written = float(probabilities[classes.index(WRITTEN_RESPONSE)])
        ranked = [i for i in np.argsort(probabilities)[::-1] if classes[i] != WRITTEN_RESPONSE]
        return LikeliestAnswer(classes[ranked[0]], float(probabilities[ranked[0]]), written)

    def save(self, path: Path) -> None:
        path.write_bytes(pickle.dumps(self.models))

    @classmethod
    def load(cls, path: Path) -> AnswerClassifier:
        try:
            models = pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as error:
            raise ClassifierFileError(f"{path.name} is missing or damaged ({error})") from error
        if not isinstance(models, dict):
            raise ClassifierFileError(f"{path.name} holds no answer classifier")
        return cls(models)
