"""Choosing the answer to a customer's message: the intent's written response, the generated
reply, a clarifying question, or an offer of a human.

Plain Python; `GenerativeResponsePolicy` (its `answer_choice` option) is the Rasa adapter. The
choice rests on what NLU says (the intent, its confidence, the runner-up), on the generator's
calibrated confidence and the facts check, and on the words the shop's own texts use:

- NLU unsure, but a corpus question very close to the message (`unsure_corpus_similarity` in
  characters, `unsure_corpus_encoder_similarity` in meaning): the message is answered as that
  question's intent ("dbl charged for one order" is near "double charge on my credit card");
- NLU torn between two intents it can name: a question back ("Do you mean ...?");
- a corpus question close to the message (`corpus_similarity` in characters, or
  `corpus_encoder_similarity` in meaning for the languages a sentence encoder reads), of the
  intent NLU names, whose answer says something the template does not: that corpus answer ("my
  card got billed twice" is near "I was charged twice", whose answer is the 3-day release of the
  duplicate);
- no corpus question close to the message in meaning (`coverage_similarity`, for the languages
  a sentence encoder reads): the shop's texts do not cover what was asked, so a person should
  answer ("are your products tested on animals?" is 0.35 from its nearest, "is the product
  available?");
- a word the shop's texts never use, in a question whose template is a complete list
  (`closed_intents`: payment methods, carriers): the facts do not cover it, so a person should
  answer rather than the list ("can I pay with dogecoin?");
- the generator, which learnt every corpus answer of the intent ("I was charged twice" has one),
  sure of a reply that passes the facts check and says something the template does not (their
  token F1 is below `template_overlap`): the generated reply;
- otherwise the template: it covers the question.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from components.generator.metrics import token_f1
from components.generator.retrieval import RetrievalIndex
from components.text import LANGUAGES, chinese_characters, fold_traditional, normalise, tokenize

TEMPLATE, GENERATED, RETRIEVED, CLARIFY, HANDOFF = "template", "generated", "retrieved", "clarify", "handoff"
_ENGLISH_WORD = re.compile(r"[a-z][a-z']+")


@dataclass(frozen=True)
class Choice:
    """What to answer with, and why (logged and kept in the prediction's metadata)."""

    kind: str  # template | generated | retrieved | clarify | handoff
    reason: str
    intents: tuple[str, ...] = ()  # the clarifying question's options
    reply: str = ""  # the corpus answer sent (retrieved)
    similarity: float = 0.0  # of its corpus question to the message (retrieved)


@dataclass
class ChoiceSettings:
    """Thresholds of the choice; GenerativeResponsePolicy's `answer_choice` documents them."""

    generated_threshold: float = 0.6
    template_overlap: float = 0.45
    corpus_similarity: float | None = 0.4
    corpus_encoder: str | None = None
    corpus_encoder_languages: list[str] = field(default_factory=lambda: ["en"])
    corpus_encoder_similarity: float = 0.55
    coverage_similarity: float | None = None
    unsure_corpus_similarity: float | None = None
    unsure_corpus_encoder_similarity: float = 0.7
    clarify_min_confidence: float = 0.5
    clarify_runner_up: float = 0.15
    closed_intents: list[str] = field(default_factory=list)
    keep_template_intents: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.corpus_encoder_languages) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"corpus_encoder_languages: {', '.join(sorted(unknown))} is not one of "
                             f"{', '.join(LANGUAGES)}")


def content_words(text: str, lang: str) -> list[str]:
    """Words that carry meaning: English words of 4+ letters, Chinese words of 2+ characters."""
    text = fold_traditional(normalise(text)).lower()
    if lang == "zh":
        return [t for t in tokenize(text, "zh") if len(t) >= 2 and chinese_characters(t) == len(t)]
    return [w for w in _ENGLISH_WORD.findall(text) if len(w) >= 4]


def shop_vocabulary(texts: Iterable[str]) -> list[str]:
    """Every content word of `texts`, in both languages, and every Chinese character."""
    words: set[str] = set()
    for text in texts:
        words.update(content_words(text, "en"))
        if chinese_characters(text):
            words.update(content_words(text, "zh"))
            words.update(c for c in fold_traditional(normalise(text)) if chinese_characters(c))
    return sorted(words)


@dataclass(frozen=True)
class CorpusPair:
    question: str
    answer: str
    intent: str
    lang: str


@dataclass(frozen=True)
class Nearest:
    pair: CorpusPair
    similarity: float
    in_meaning: bool = False  # cosine of sentence vectors, not of character n-grams


# Texts to sentence vectors of unit length, [texts, dimensions].
SentenceEncoder = Callable[[Sequence[str]], np.ndarray]


class _EncodedQuestions:
    """Questions searchable by the cosine of their sentence vectors."""

    def __init__(self, questions: Sequence[str], encode: SentenceEncoder) -> None:
        self.encode = encode
        self.vectors = encode(questions)

    def similarities(self, questions: Sequence[str]) -> np.ndarray:
        return self.encode(questions) @ self.vectors.T


class CorpusAnswers:
    """The shop corpus's questions, searchable by similarity within one language: in meaning
    (`encode`'s sentence vectors) for `encoded_languages`, else in characters (TF-IDF over
    character n-grams, the retrieval index of the generator)."""

    def __init__(self, pairs: Sequence[CorpusPair], encode: SentenceEncoder | None = None,
                 encoded_languages: Collection[str] = ()) -> None:
        self.by_language: dict[str, tuple[list[CorpusPair], RetrievalIndex | _EncodedQuestions]] = {}
        for lang in sorted({p.lang for p in pairs}):
            chosen = [p for p in pairs if p.lang == lang]
            questions = [p.question for p in chosen]
            self.by_language[lang] = chosen, (_EncodedQuestions(questions, encode)
                                              if encode is not None and lang in encoded_languages
                                              else RetrievalIndex(questions, [p.answer for p in chosen]))
        self._last: tuple[tuple[str, str], np.ndarray] | None = None

    def _similarities(self, text: str, lang: str) -> np.ndarray:
        # one message is searched up to three times (understood? covered? a corpus answer?): one pass
        if self._last is None or self._last[0] != (text, lang):
            self._last = (text, lang), self.by_language[lang][1].similarities([text])[0]
        return self._last[1]

    def nearest(self, text: str, lang: str) -> Nearest | None:
        """The corpus question closest to `text` in its language."""
        if lang not in self.by_language:
            return None
        pairs, index = self.by_language[lang]
        scores = self._similarities(text, lang)
        best = int(scores.argmax())
        return Nearest(pairs[best], float(scores[best]), isinstance(index, _EncodedQuestions))


class AnswerChooser:
    """Picks the kind of answer for one message; see the module docstring."""

    def __init__(self, vocabulary: Iterable[str], settings: ChoiceSettings,
                 corpus: CorpusAnswers | None = None) -> None:
        self.settings = settings
        self.corpus = corpus
        self.vocabulary = set(vocabulary)
        self._english = sorted(w for w in self.vocabulary if not chinese_characters(w))
        self._chinese_characters = set("".join(w for w in self.vocabulary if chinese_characters(w)))

    def unknown_words(self, text: str, lang: str) -> list[str]:
        """Content words the shop's texts never use; typos of known words and Chinese words made
        of known characters (快递费, 收不收) are not news."""
        unknown = []
        for word in content_words(text, lang):
            if word in self.vocabulary:
                continue
            if lang == "zh":
                # jieba splits colloquial forms into words the texts never use (收不收, 付不了);
                # a word is news only where it has a character the shop's texts never use
                if set(word) <= self._chinese_characters:
                    continue
            elif difflib.get_close_matches(word, self._english, n=1, cutoff=0.8):
                continue
            unknown.append(word)
        return unknown

    def clarify_options(self, ranking: list[tuple[str, float]], answerable: set[str]) -> tuple[str, ...]:
        """The two likeliest answerable intents when together they are likely enough, else ()."""
        options = [(name, confidence) for name, confidence in ranking if name in answerable][:2]
        if (len(options) == 2 and options[0][1] + options[1][1] >= self.settings.clarify_min_confidence
                and options[1][1] >= self.settings.clarify_runner_up):
            return options[0][0], options[1][0]
        return ()

    def understood_by_corpus(self, text: str, lang: str, intents: Collection[str]) -> Nearest | None:
        """For a message NLU is unsure of: the corpus question, of one of `intents`, that is close
        enough to answer it as that question's intent; else None."""
        if self.corpus is None or self.settings.unsure_corpus_similarity is None:
            return None
        nearest = self.corpus.nearest(text, lang)
        if nearest is None or nearest.pair.intent not in intents:
            return None
        threshold = (self.settings.unsure_corpus_encoder_similarity if nearest.in_meaning
                     else self.settings.unsure_corpus_similarity)
        return nearest if nearest.similarity >= threshold else None

    def uncovered(self, text: str, lang: str) -> Choice | None:
        """A hand-off when no corpus question is close to `text` in meaning; else None."""
        if self.corpus is None or self.settings.coverage_similarity is None:
            return None
        return self._uncovered(self.corpus.nearest(text, lang))

    def _uncovered(self, nearest: Nearest | None) -> Choice | None:
        # only in meaning: in characters a new wording of a covered question is as far as a new question
        threshold = self.settings.coverage_similarity
        if threshold is None or nearest is None or not nearest.in_meaning or nearest.similarity >= threshold:
            return None
        return Choice(HANDOFF, f"the nearest corpus question, {nearest.pair.question!r}, is {nearest.similarity:.2f} "
                      "close: the shop's texts do not cover this")

    def _corpus_answer(self, text: str, lang: str, intent: str, template: str | None,
                       passes_facts: Callable[[str], bool]) -> Choice | None:
        """The answer of the corpus question nearest `text` when it is close enough, of `intent`,
        and says something the template does not; else None."""
        if self.settings.corpus_similarity is None or self.corpus is None:
            return None
        nearest = self.corpus.nearest(text, lang)
        if nearest is None or nearest.pair.intent != intent:
            return None
        if nearest.similarity < (self.settings.corpus_encoder_similarity if nearest.in_meaning
                                 else self.settings.corpus_similarity):
            return None
        overlap = token_f1(nearest.pair.answer, template) if template else 0.0
        if overlap >= self.settings.template_overlap or not passes_facts(nearest.pair.answer):
            return None
        return Choice(RETRIEVED, f"the corpus question {nearest.pair.question!r} ({nearest.similarity:.2f}) has a "
                      f"more specific answer than {intent}'s written response", reply=nearest.pair.answer,
                      similarity=nearest.similarity)

    def before_generating(self, text: str, lang: str, intent: str, ranking: list[tuple[str, float]],
                          answerable: set[str], unsure_intent: str, template: str | None = None,
                          passes_facts: Callable[[str], bool] = lambda reply: True) -> Choice | None:
        """The choice where NLU, the corpus and the shop's words settle it; None when the
        generator decides."""
        if intent == unsure_intent:
            options = self.clarify_options(ranking, answerable)
            if options:
                return Choice(CLARIFY, f"NLU is torn between {options[0]} and {options[1]}", options)
            return Choice(TEMPLATE, "NLU is unsure and names no two likely intents")
        if intent in self.settings.keep_template_intents:
            return Choice(TEMPLATE, f"{intent} always gets its written response")
        uncovered = self.uncovered(text, lang)
        if uncovered:
            return uncovered
        retrieved = self._corpus_answer(text, lang, intent, template, passes_facts)
        if retrieved:
            return retrieved
        if intent in self.settings.closed_intents:
            unknown = self.unknown_words(text, lang)
            if unknown:
                return Choice(HANDOFF, f"{intent}'s response is a complete list and the shop's texts never "
                              f"mention {', '.join(unknown)}")
        return None

    def after_generating(self, intent: str, reply: str, confidence: float, passes_facts: bool,
                         template: str | None) -> Choice:
        """Generated reply or template, given the generator's reply to the message."""
        if confidence < self.settings.generated_threshold:
            return Choice(TEMPLATE, f"the generator is unsure ({confidence:.2f}); {intent}'s written response")
        if not passes_facts:
            return Choice(TEMPLATE, f"the generated reply fails the facts check; {intent}'s written response")
        overlap = token_f1(reply, template) if template else 0.0
        if overlap >= self.settings.template_overlap:
            return Choice(TEMPLATE, f"the generated reply says what {intent}'s written response says "
                          f"(token F1 {overlap:.2f})")
        return Choice(GENERATED, f"the generator is sure ({confidence:.2f}) of a reply that passes the facts check")
