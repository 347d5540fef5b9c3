"""Intent recognition on phrasings that are not in the training data, in each language."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.constants import TEXT

from components.loaded_components import loaded_components
from tests.conftest import PROJECT, Assistant

UNSEEN = {"en": Path(__file__).parent / "data" / "unseen_phrasings.yml",
          "zh": Path(__file__).parent / "data" / "unseen_phrasings_zh.yml"}


def training_examples() -> set[str]:
    """What NLU trains on: data/*.yml and the corpus questions config.yml's importers add."""
    importer = TrainingDataImporter.load_nlu_importer_from_config(str(PROJECT / "config.yml"),
                                                                  training_data_paths=[str(PROJECT / "data")])
    return {message.get(TEXT).lower() for message in importer.get_nlu_data().intent_examples}


def phrasings(language: str) -> list[dict[str, str]]:
    return yaml.safe_load(UNSEEN[language].read_text(encoding="utf-8"))["phrasings"]


@pytest.mark.parametrize("language", UNSEEN)
def test_unseen_phrasings_are_really_unseen(language: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)  # the importers' corpus globs are relative to the project
    held_out = phrasings(language)
    assert len(held_out) >= 30
    assert not {p["text"].lower() for p in held_out} & training_examples()


@pytest.mark.parametrize("language", UNSEEN)
def test_intent_accuracy_on_unseen_phrasings(assistant: Assistant, language: str) -> None:
    held_out = phrasings(language)
    wrong = []
    for phrasing in held_out:
        predicted = assistant.parse(phrasing["text"])["intent"]["name"]
        if predicted != phrasing["intent"]:
            wrong.append(f"{phrasing['text']!r}: {predicted}, expected {phrasing['intent']}")
    accuracy = 1 - len(wrong) / len(held_out)
    assert accuracy >= 0.9, f"{language} accuracy {accuracy:.1%}; misclassified:\n" + "\n".join(wrong)


def test_every_intent_has_chinese_examples() -> None:
    from components.text import detect_language

    counts: dict[str, int] = {}
    for path in sorted((PROJECT / "data").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            if "intent" in block:
                chinese = [line for line in block["examples"].splitlines() if detect_language(line) == "zh"]
                counts[block["intent"]] = counts.get(block["intent"], 0) + len(chinese)
    intents = yaml.safe_load((PROJECT / "domain.yml").read_text(encoding="utf-8"))["intents"]
    assert {intent: counts.get(intent, 0) for intent in intents if intent != "feedback"
            and counts.get(intent, 0) < 25} == {}


def roundabout_questions() -> list[dict[str, str]]:
    path = Path(__file__).parent / "data" / "roundabout_questions.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]


def test_roundabout_questions_are_really_unseen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)
    assert not {q["text"].lower() for q in roundabout_questions()} & training_examples()


def test_the_second_opinion_turns_wrong_intents_into_questions_back(assistant: Assistant) -> None:
    """LinearIntentClassifier beside DIET: on questions asked the long way round, fewer get a wrong
    intent (the fallback asks again instead), and none DIET alone gets right is lost."""
    from components.classifiers import LinearIntentClassifier

    (classifier,) = loaded_components(assistant.agent.processor, LinearIntentClassifier).values()
    shipped_weight = classifier.weight

    def outcomes() -> dict[str, str]:
        counts = {"right": 0, "wrong": 0, "fallback": 0}
        for question in roundabout_questions():
            predicted = assistant.parse(question["text"])["intent"]["name"]
            counts["right" if predicted == question["intent"] else
                   "fallback" if predicted == "nlu_fallback" else "wrong"] += 1
        return counts

    try:
        classifier.weight = 0.0  # DIET alone
        alone = outcomes()
    finally:
        classifier.weight = shipped_weight
    together = outcomes()
    assert together["wrong"] < alone["wrong"] and together["right"] >= alone["right"], (alone, together)
