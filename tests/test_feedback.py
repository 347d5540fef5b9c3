"""The feedback log (components/feedback.py) in SQLite and in a real Redis stream, and the
`kefu feedback` commands staff use on it."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.feedback import STREAM_KEY, FeedbackLog, RatedReply, satisfaction, training_pairs
from tests.conftest import KEFU, PROJECT, RedisServer


def rated(conversation: str, rating: str, question: str = "do you gift wrap?", answer: str = "Yes, at checkout.",
          intent: str = "gift_wrapping", model: str = "m1") -> RatedReply:
    return RatedReply(uuid.uuid4().hex, conversation, user_message=question, bot_reply=answer, intent=intent,
                      model_id=model, confidence=0.8, rating=rating)


@pytest.fixture(params=["sqlite", "redis"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeedbackLog]:
    if request.param == "sqlite":
        yield FeedbackLog(tmp_path / "feedback.db", spool_dir=str(tmp_path / "spool"))
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client().delete(STREAM_KEY)
    yield FeedbackLog(url=server.url, spool_dir=str(tmp_path / "spool"))
    server.client().delete(STREAM_KEY)


def test_ratings_corrections_and_reviews_merge_per_reply(log: FeedbackLog) -> None:
    liked, disliked = rated("c1", "up"), rated("c2", "down")
    log.rate(liked)
    log.rate(disliked)
    log.correct(disliked.reply_id, "c2", "Gift wrapping costs 3 euros.")
    replies = {r.reply_id: r for r in log.replies()}
    assert replies[liked.reply_id].rating == "up" and replies[liked.reply_id].rated_at
    assert replies[disliked.reply_id].correction == "Gift wrapping costs 3 euros."
    assert replies[disliked.reply_id].review is None
    log.decide(disliked.reply_id, approved=True)
    assert {r.reply_id: r for r in log.replies()}[disliked.reply_id].review == "approved"
    with pytest.raises(KeyError):
        log.decide("no-such-reply", approved=True)


def test_satisfaction_per_intent_and_model(log: FeedbackLog) -> None:
    for rating, intent, model in [("up", "warranty", "m1"), ("down", "warranty", "m1"), ("up", "invoice", "m2")]:
        log.rate(rated(uuid.uuid4().hex, rating, intent=intent, model=model))
    assert satisfaction(log.replies(), "intent") == [("warranty", 1, 2, 0.5), ("invoice", 1, 1, 1.0)]
    assert dict((g, s) for g, _, _, s in satisfaction(log.replies(), "model_id")) == {"m1": 0.5, "m2": 1.0}


def test_export_takes_up_votes_and_approved_corrections_only_masked_and_capped(log: FeedbackLog) -> None:
    log.rate(rated("happy", "up", question="mail me at ann@example.com", answer="Done, ann@example.com"))
    rejected, approved, unreviewed = rated("c2", "down"), rated("c3", "down", question="is it covered?"), \
        rated("c4", "down", question="can I pay later?")
    for reply, text in [(rejected, "bad advice"), (approved, "Two years of warranty."), (unreviewed, "Yes.")]:
        log.rate(reply)
        log.correct(reply.reply_id, reply.conversation_id, text)
    log.decide(rejected.reply_id, approved=False)
    log.decide(approved.reply_id, approved=True)
    for n in range(10):  # one customer up-voting over and over
        log.rate(rated("flooder", "up", question=f"question {n}", answer=f"answer {n}"))
    lines = training_pairs(log.replies(), per_conversation=3)
    answers = [line["answer"] for line in lines]
    assert "Two years of warranty." in answers and "bad advice" not in answers and "Yes." not in answers
    assert "Done, [EMAIL]" in answers and not any("ann@example.com" in json.dumps(line) for line in lines)
    assert sum(line["question"].startswith("question") for line in lines) == 3


def test_forget_removes_a_conversations_entries(log: FeedbackLog) -> None:
    log.rate(rated("forget-me", "up"))
    log.rate(rated("keep-me", "up"))
    assert log.forget("forget-me") == 1
    assert [r.conversation_id for r in log.replies()] == ["keep-me"]


def test_redis_stream_survives_a_restart_and_an_outage_loses_nothing(redis_server: RedisServer,
                                                                     tmp_path: Path) -> None:
    redis_server.client().delete(STREAM_KEY)
    log = FeedbackLog(url=redis_server.url, spool_dir=str(tmp_path / "spool"))
    log.rate(rated("r1", "up"))
    redis_server.stop()
    try:
        log.rate(rated("r2", "down"))  # spooled, no error
    finally:
        redis_server.start()
    log.rate(rated("r3", "up"))
    assert [r.conversation_id for r in log.replies()] == ["r1", "r2", "r3"]
    assert redis_server.client().xlen(STREAM_KEY) == 3
    redis_server.client().delete(STREAM_KEY)


def test_kefu_feedback_commands(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    log = FeedbackLog(db)
    reply = rated("cli", "down", question="where is my invoice?")
    log.rate(reply)
    log.correct(reply.reply_id, "cli", "Under Your account > Orders > Invoice.")

    def kefu(*args: str) -> str:
        return subprocess.run([KEFU, "feedback", *args, "--db", str(db)], cwd=PROJECT, capture_output=True,
                              text=True, check=True).stdout

    assert "Under Your account > Orders > Invoice." in kefu("review")
    assert "| gift_wrapping | 0 | 1 | 0% |" in kefu("stats")
    kefu("review", "--approve", reply.reply_id)
    assert "No corrections wait for review." in kefu("review")
    kefu("export", "--out", str(tmp_path / "feedback.jsonl"))
    [line] = [json.loads(x) for x in (tmp_path / "feedback.jsonl").read_text().splitlines()]
    assert line == {"question": "where is my invoice?", "answer": "Under Your account > Orders > Invoice.",
                    "intent": "gift_wrapping", "lang": "en", "source": "feedback-correction"}
