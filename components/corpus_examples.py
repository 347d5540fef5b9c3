"""The shop corpus's questions as NLU examples: a Rasa training data importer.

Each single-turn corpus question with an intent becomes an example of that intent, beside the
examples of data/*.yml. They are what customers wrote, longer and more specific than the plain
examples ("I already wore the shoes outside once, can I return them?"), so NLU learns to name the
intent of a question that carries a condition. Skipped: pairs that answer an earlier turn (their
question means something only after it), questions whose PII the corpus pipeline masked (an order
number there would teach the entity extractor that order numbers are plain words), the intents of
`skip_intents`, and questions the other importers already hold, under any intent (their own
label wins).

config.yml:

    importers:
      - name: RasaFileImporter
      - name: components.corpus_examples.CorpusExamplesImporter
        corpus: data/corpus/*.jsonl
"""

from __future__ import annotations

import logging

from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.structures import StoryGraph
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.importers.rasa import RasaFileImporter
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.corpus import BuildConfig, Pair, corpus_paths, split_corpus
from components.text import PLACEHOLDER_PATTERN

logger = logging.getLogger(__name__)


def example_pairs(pairs: list[Pair], known: set[str], skip_intents: set[str]) -> list[Pair]:
    """The pairs whose question can be an NLU example of its intent (see the module docstring);
    `known`: the lower-cased examples the NLU data already has."""
    chosen, seen = [], set(known)
    for pair in pairs:
        key = pair.question.strip().lower()
        if (not pair.intent or pair.context or pair.intent in skip_intents or key in seen
                or PLACEHOLDER_PATTERN.search(pair.question)):
            continue
        seen.add(key)
        chosen.append(pair)
    return chosen


class CorpusExamplesImporter(TrainingDataImporter):
    """NLU examples from the corpus files `corpus` (globs, relative to the working directory, as
    GenerativeResponsePolicy's `corpus`), cleaned by the corpus pipeline. Brings no domain,
    stories or config of its own."""

    def __init__(self, config_file: str | None = None, domain_path: str | None = None,
                 training_data_paths: str | list[str] | None = None,
                 corpus: str | list[str] = "data/corpus/*.jsonl", skip_intents: list[str] | None = None) -> None:
        self.corpus = corpus
        self.skip_intents = set(skip_intents or [])
        # the other NLU data, to leave its examples under their own intent
        self._files = RasaFileImporter(config_file, domain_path, training_data_paths)
        self._examples: dict[str | None, TrainingData] = {}  # Rasa asks more than once per command

    def get_nlu_data(self, language: str | None = "en") -> TrainingData:
        if language not in self._examples:
            self._examples[language] = self._corpus_examples(language)
        return self._examples[language]

    def _corpus_examples(self, language: str | None) -> TrainingData:
        paths = corpus_paths(self.corpus)
        if not paths:
            logger.warning("CorpusExamplesImporter: no corpus file matches %s; no examples added", self.corpus)
            return TrainingData()
        pairs = split_corpus(paths, BuildConfig(valid_fraction=0.0, test_fraction=0.0))[0]
        known = {message.get(TEXT, "").strip().lower()
                 for message in self._files.get_nlu_data(language).intent_examples}
        chosen = example_pairs(pairs, known, self.skip_intents)
        logger.info("CorpusExamplesImporter: %d NLU examples from %d corpus pairs", len(chosen), len(pairs))
        return TrainingData([Message(data={TEXT: pair.question, INTENT: pair.intent}) for pair in chosen])

    def get_domain(self) -> Domain:
        return Domain.empty()

    def get_stories(self, exclusion_percentage: int | None = None) -> StoryGraph:
        return StoryGraph([])

    def get_conversation_tests(self) -> StoryGraph:
        return StoryGraph([])

    def get_config(self) -> dict:
        return {}

    def get_config_file_for_auto_config(self) -> str | None:
        return None
