"""Intent recognition on phrasings that are not in the training data, in each language."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.constants import TEXT

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
