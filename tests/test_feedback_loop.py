"""The whole feedback loop: a customer gives 👎 and the right answer through the assistant's
buttons, staff approve it, `kefu feedback export` and `kefu corpus build` turn it into
corpus, and `rasa train core --finetune` yields a generator that answers with it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import yaml
from rasa.core.agent import Agent

from components.feedback import FeedbackLog
from components.text import normalise
from tests.conftest import KEFU, PROJECT, Assistant
from tests.generator.conftest import TEN_PAIRS, TINY_MODELS
from tests.policies.test_generative_response import reply_of, train_core

QUESTION = "I need to switch my account to a new email"
CORRECTION = "Change it under Your account > Profile > Email."


def tiny_generator_config(folder: Path, corpus: Path) -> Path:
    config = folder / "config.yml"
    config.write_text(yaml.safe_dump({
        "recipe": "default.v1", "language": "en", "assistant_id": "kefu-feedback-loop", "pipeline": [],
        "policies": [{"name": "RulePolicy"}, {
            "name": "components.policies.GenerativeResponsePolicy", "corpus": f"{corpus}/*.jsonl", "nlu": [],
            "architecture": "seq2seq", "model": TINY_MODELS["seq2seq"],
            "tokenizer": {"vocab_size": 500, "min_frequency": 1},
            "training": {"epochs": 100, "learning_rate": 1e-2, "warmup_steps": 5, "label_smoothing": 0.0,
                         "patience": 1000, "batch_size": 16, "threads": 1, "progress": False},
            "decoding": {"strategy": "greedy", "no_repeat_ngram": 0}, "context_turns": 0,
            "condition_on_intent": False, "valid_fraction": 0.0, "threshold": 0.0, "facts": None}]}))
    return config


def test_a_thumbs_down_correction_ends_up_in_the_fine_tuned_generator(assistant: Assistant, feedback_db: Path,
                                                                      tmp_path: Path) -> None:
    sender = f"feedback-{uuid.uuid4().hex}"
    replies = assistant.reply_messages(QUESTION, sender)
    buttons = [b for r in replies for b in r.get("buttons") or []]
    assert [b["title"] for b in buttons] == ["👍", "👎"], replies
    [thumbs_down] = [b["payload"] for b in buttons if b["title"] == "👎"]
    reply_id = json.loads(thumbs_down.removeprefix("/feedback"))["reply_id"]
    assert "right answer" in " ".join(assistant.say(thumbs_down, sender))
    assert "Thank you" in " ".join(assistant.say(CORRECTION, sender))

    [rated] = [r for r in FeedbackLog(feedback_db).replies() if r.reply_id == reply_id]
    assert (rated.rating, rated.user_message, rated.correction) == ("down", QUESTION, CORRECTION)
    assert rated.bot_reply and rated.model_id and 0 < rated.confidence <= 1 and rated.intent

    def kefu(*args: str) -> None:
        subprocess.run([KEFU, *args], cwd=PROJECT, check=True, capture_output=True)

    kefu("feedback", "review", "--db", str(feedback_db), "--approve", reply_id)
    kefu("feedback", "export", "--db", str(feedback_db), "--out", str(tmp_path / "feedback.jsonl"))
    kefu("corpus", "build", str(tmp_path / "feedback.jsonl"), "--out", str(tmp_path / "built"),
         "--valid", "0", "--test", "0")
    built = [json.loads(line) for line in (tmp_path / "built" / "train.jsonl").read_text().splitlines()]
    assert {"question": QUESTION, "answer": CORRECTION}.items() <= next(
        row for row in built if row["question"] == QUESTION).items()

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "shop.jsonl").write_text("".join(json.dumps({"question": d.question, "answer": d.answer}) + "\n"
                                               for d in TEN_PAIRS))
    config = tiny_generator_config(tmp_path, corpus)
    base = train_core(config, tmp_path, "base")
    shutil.copyfile(tmp_path / "built" / "train.jsonl", corpus / "feedback.jsonl")
    tuned = train_core(config, tmp_path, "tuned", "--finetune", str(base))
    expected = normalise(CORRECTION)
    assert reply_of(Agent.load(str(base)), QUESTION) != expected
    answer = reply_of(Agent.load(str(tuned)), QUESTION)
    assert re.sub(r"\s+", " ", answer) == expected
