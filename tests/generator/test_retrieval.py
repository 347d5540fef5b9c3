"""Retrieval-augmented generation: the generator reads the answers of the corpus questions
nearest the message, never its own pair's in training, and with copy attention it answers
with what they say, even for pairs added after it was trained."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from rasa.shared.exceptions import InvalidConfigException

from components.generator.data import Dialogue, encode_source
from components.generator.generator import GeneratorFileError, ResponseGenerator
from components.generator.retrieval import RETRIEVAL_FILE, RetrievalIndex
from components.generator.tokenizer import SEP_ID
from components.generator.training import GeneratorConfig, train_generator
from components.policies.generative_response import GenerativeResponsePolicy
from tests.conftest import KEFU, PROJECT

FRUITS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "orange", "peach", "pear", "plum",
          "lime", "papaya", "guava", "fig", "date", "kiwi", "apricot"]
LEARNT, ADDED_LATER = FRUITS[:16], FRUITS[16:]
CODES = {fruit: str(random.Random(fruit).randint(1000, 9999)) for fruit in FRUITS}


def code_pairs(fruit: str) -> list[Dialogue]:
    """Three ways to ask for a fruit's code, each nearest the other two; the answer says it."""
    answer = f"The code for {fruit} is {CODES[fruit]}."
    return [Dialogue(question, answer) for question in (f"{fruit}?", f"{fruit} code", f"code for {fruit}")]


def rag_config(copy_attention: bool) -> GeneratorConfig:
    return GeneratorConfig.from_dict({
        "architecture": "seq2seq",
        "model": {"embedding_dim": 48, "hidden_size": 64, "dropout": 0.0, "copy_attention": copy_attention},
        "tokenizer": {"vocab_size": 300, "min_frequency": 1},
        "inputs": {"retrieval_k": 1, "context_turns": 0},
        "training": {"epochs": 60, "learning_rate": 1e-2, "warmup_steps": 5, "label_smoothing": 0.0,
                     "patience": 1000, "batch_size": 16, "threads": 1, "progress": False},
        "decoding": {"strategy": "greedy", "no_repeat_ngram": 0},
    })


@pytest.fixture(scope="module")
def copying_generator() -> ResponseGenerator:
    train = [pair for fruit in LEARNT for pair in code_pairs(fruit)]
    return train_generator(train, train[:6], rag_config(copy_attention=True)).generator


def test_the_index_finds_the_nearest_questions_and_never_a_pairs_own_answer_in_training() -> None:
    pairs = [pair for fruit in ("apple", "banana") for pair in code_pairs(fruit)]
    index = RetrievalIndex([p.question for p in pairs], [p.answer for p in pairs])
    assert index.evidence(["the banana code please"], 2) == [[pairs[3].answer, pairs[3].answer]]
    nearest = index.nearest([p.question for p in pairs], 2, exclude=list(range(len(pairs))))
    assert all(own not in found and len(found) == 2 for own, found in enumerate(nearest))
    assert sorted(index.nearest(["apple"], 10)[0]) == list(range(6))  # k is capped at the index's size


def test_retrieved_answers_follow_the_question_within_the_source_limit(copying_generator: ResponseGenerator) -> None:
    tokenizer = copying_generator.tokenizer
    question = tokenizer.encode("what is the code for apple?")
    answer = tokenizer.encode("The code for apple is 1234.")
    source = encode_source(tokenizer, "what is the code for apple?", (), 0, 200, ["The code for apple is 1234."] * 2)
    assert source == question + [SEP_ID] + answer + [SEP_ID] + answer
    short = encode_source(tokenizer, "what is the code for apple?", (), 0, 12, ["The code for apple is 1234."] * 2,
                          max_evidence_tokens=3)
    # the question keeps half of the 12 (its end, as without retrieval), then each answer's start
    assert short == question[-6:] + [SEP_ID] + answer[:3] + [SEP_ID] + answer[:1]


def test_a_copying_generator_answers_from_pairs_added_after_training(copying_generator: ResponseGenerator) -> None:
    # What it learnt, it says; a pair it never saw, added to its index, it answers from.
    assert copying_generator.reply("the banana code please").text == f"The code for banana is {CODES['banana']}."
    known = [pair for fruit in LEARNT for pair in code_pairs(fruit)]
    added = [code_pairs(fruit)[0] for fruit in ADDED_LATER]
    copying_generator.retrieval = RetrievalIndex([p.question for p in known + added], [p.answer for p in known + added])
    try:
        assert CODES["kiwi"] in copying_generator.reply("the kiwi code please").text
    finally:
        copying_generator.retrieval = RetrievalIndex([p.question for p in known], [p.answer for p in known])


def test_the_pairs_are_saved_with_the_generator(copying_generator: ResponseGenerator, tmp_path: Path) -> None:
    copying_generator.save(tmp_path / "rag")
    loaded = ResponseGenerator.load(tmp_path / "rag", "cpu")
    assert loaded.inputs.retrieval_k == 1 and len(loaded.retrieval) == len(copying_generator.retrieval)
    questions = ["the mango code please", "plum code?"]
    assert [r.text for r in loaded.replies(questions)] == [r.text for r in copying_generator.replies(questions)]
    (tmp_path / "rag" / RETRIEVAL_FILE).unlink()
    with pytest.raises(GeneratorFileError, match=RETRIEVAL_FILE):
        ResponseGenerator.load(tmp_path / "rag", "cpu")


def test_the_policy_option_sets_the_generators_retrieval_and_refuses_unknown_keys() -> None:
    config = {**GenerativeResponsePolicy.get_default_config(), "retrieval": {"k": 2, "max_evidence_tokens": 32}}
    inputs = GenerativeResponsePolicy._generator_config(config).inputs
    assert (inputs.retrieval_k, inputs.max_evidence_tokens) == (2, 32)
    with pytest.raises(InvalidConfigException, match="neighbours"):
        GenerativeResponsePolicy._generator_config({**config, "retrieval": {"neighbours": 2}})
    with pytest.raises(InvalidConfigException, match="retrieval_k"):
        GenerativeResponsePolicy._generator_config({**config, "retrieval": {"k": -1}})


def test_kefu_evaluate_scores_a_retrieval_generator_reading_k_answers(copying_generator: ResponseGenerator,
                                                                      tmp_path: Path) -> None:
    copying_generator.save(tmp_path / "rag")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pairs = [pair for fruit in LEARNT for pair in code_pairs(fruit)]
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.jsonl").write_text("".join(
            json.dumps({"question": p.question, "answer": p.answer, "lang": "en"}) + "\n" for p in pairs))

    def evaluate(model: Path, k: str) -> subprocess.CompletedProcess:
        return subprocess.run([KEFU, "evaluate", "--corpus", str(corpus), "--model", str(model), "--retrieval-k", k,
                               "--out", str(tmp_path / f"evaluation-{k}"), "--latency-samples", "2"],
                              cwd=PROJECT, capture_output=True, text=True, timeout=300)

    rows = {}
    for k in ("1", "0"):
        done = evaluate(tmp_path / "rag", k)
        assert done.returncode == 0, done.stderr
        rows[k] = json.loads((tmp_path / f"evaluation-{k}" / "evaluation.json").read_text())["systems"][-1]
    assert rows["1"]["system"] == "seq2seq, 1 retrieved (rag)"
    assert rows["1"]["bleu"] > rows["0"]["bleu"]  # it answers from what it reads
    config = json.loads((tmp_path / "rag" / "config.json").read_text())
    config["inputs"]["retrieval_k"] = 0
    (tmp_path / "rag" / "config.json").write_text(json.dumps(config))
    refused = evaluate(tmp_path / "rag", "1")
    assert refused.returncode == 1 and "trained without retrieval" in refused.stderr
