"""Intent recognition on phrasings that are not in the training data."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import PROJECT, Assistant

UNSEEN = Path(__file__).parent / "data" / "unseen_phrasings.yml"


def training_examples() -> set[str]:
    nlu = yaml.safe_load((PROJECT / "data" / "nlu.yml").read_text())["nlu"]
    examples = set()
    for block in nlu:
        if "intent" in block:
            for line in block["examples"].splitlines():
                text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", line.lstrip("- ").strip())
                examples.add(text.lower())
    return examples


def test_unseen_phrasings_are_really_unseen() -> None:
    phrasings = yaml.safe_load(UNSEEN.read_text())["phrasings"]
    assert len(phrasings) >= 30
    assert not {p["text"].lower() for p in phrasings} & training_examples()


def test_intent_accuracy_on_unseen_phrasings(assistant: Assistant) -> None:
    phrasings = yaml.safe_load(UNSEEN.read_text())["phrasings"]
    wrong = []
    for phrasing in phrasings:
        predicted = assistant.parse(phrasing["text"])["intent"]["name"]
        if predicted != phrasing["intent"]:
            wrong.append(f"{phrasing['text']!r}: {predicted}, expected {phrasing['intent']}")
    accuracy = 1 - len(wrong) / len(phrasings)
    assert accuracy >= 0.9, f"accuracy {accuracy:.1%}; misclassified:\n" + "\n".join(wrong)
