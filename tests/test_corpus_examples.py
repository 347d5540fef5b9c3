"""The corpus questions as NLU examples (config.yml's `importers`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.constants import INTENT, TEXT

from components.corpus_examples import CorpusExamplesImporter
from tests.conftest import PROJECT

NLU = """version: "3.1"
nlu:
- intent: return_item
  examples: |
    - how do I return something
- intent: greet
  examples: |
    - hello there
"""


def corpus_line(question: str, intent: str | None, **extra: object) -> str:
    return json.dumps({"question": question, "answer": "An answer long enough to keep.", "intent": intent,
                       **extra}, ensure_ascii=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "nlu.yml").write_text(NLU, encoding="utf-8")
    (tmp_path / "corpus.jsonl").write_text("\n".join([
        corpus_line("I already wore the shoes outside once, can I return them?", "return_item"),
        corpus_line("鞋子穿过了还能退吗", "return_item", lang="zh"),
        corpus_line("Hello there", "out_of_scope"),  # the NLU data has it as greet
        corpus_line("yes please", "affirm", context=["do you want a person?"]),
        corpus_line("where is order 4471923?", "order_status"),
        corpus_line("tell me a joke", "out_of_scope"),
        corpus_line("something without an intent", None),
    ]) + "\n", encoding="utf-8")
    return tmp_path


def examples(importer: TrainingDataImporter) -> dict[str, str]:
    return {m.get(TEXT): m.get(INTENT) for m in importer.get_nlu_data().intent_examples}


def test_single_turn_corpus_questions_become_examples_of_their_intent(project: Path) -> None:
    importer = CorpusExamplesImporter(None, None, [str(project / "nlu.yml")], corpus=str(project / "corpus.jsonl"),
                                      skip_intents=["out_of_scope"])
    assert examples(importer) == {"I already wore the shoes outside once, can I return them?": "return_item",
                                  "鞋子穿过了还能退吗": "return_item"}


def test_an_nlu_example_keeps_its_own_intent(project: Path) -> None:
    importer = CorpusExamplesImporter(None, None, [str(project / "nlu.yml")], corpus=str(project / "corpus.jsonl"))
    added = examples(importer)
    assert "Hello there" not in added and added["tell me a joke"] == "out_of_scope"
    # masked PII and follow-ups to an earlier turn stay out
    assert not any("order" in text or text == "yes please" for text in added)


def test_no_corpus_file_adds_nothing_and_says_so(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    importer = CorpusExamplesImporter(None, None, [str(project / "nlu.yml")], corpus=str(project / "missing*.jsonl"))
    with caplog.at_level(logging.WARNING):
        assert examples(importer) == {}
    assert "no corpus file matches" in caplog.text


def test_the_project_trains_nlu_on_its_corpus_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)
    importer = TrainingDataImporter.load_nlu_importer_from_config("config.yml", training_data_paths=["data"])
    data = importer.get_nlu_data()
    labelled: dict[str, set[str]] = {}
    for message in data.intent_examples:
        labelled.setdefault(message.get(TEXT).lower(), set()).add(message.get(INTENT))
    assert labelled["i already wore the shoes outside once, can i return them?"] == {"return_item"}
    assert not {text for text, intents in labelled.items() if len(intents) > 1}
