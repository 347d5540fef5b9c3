"""Encryption at rest (components/stores/encryption.py) with `KEFU_ENCRYPTION_KEY` set: what a
leaked Redis (its keys and AOF file), SQLite file or spool shows holds no customer text, the
bot still reads everything back, a wrong or missing key is a clear error that loses nothing,
`kefu rotate-key` moves everything to a new key and resumes, and `kefu forget` still erases.

Redis is a real redis-server of this module's own, so its AOF holds only these tests' writes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from rasa.core.tracker_store import TrackerStore
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.channels.message_ids import ProcessedMessages
from components.feedback import FeedbackLog, RatedReply
from components.handoff import HandoffQueue
from components.stores import RedisTrackerStore
from components.stores.connection import OUTAGE
from components.stores.encryption import ENCRYPTION_KEY_VARIABLE, EncryptionKeyError
from tests.conftest import KEFU, RedisServer

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [ask]
entities: [order]
slots:
  order_id: {type: text, mappings: [{type: custom}]}
responses:
  utter_answer: [{text: an answer}]
""")


def run(coroutine):  # noqa: ANN001, ANN201 - any coroutine, its result
    return asyncio.new_event_loop().run_until_complete(coroutine)


def new_key() -> str:
    return Fernet.generate_key().decode()


def secret() -> str:
    """A word no other test writes, to look for in what is stored."""
    return f"zq{uuid.uuid4().hex[:12]}"


def private_conversation(sender: str, word: str) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender, [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        UserUttered(f"my order {word} never came", {"name": "ask", "confidence": 0.9},
                    [{"entity": "order", "value": word, "start": 9, "end": 9 + len(word)}]),
        SlotSet("order_id", word), ActionExecuted("utter_answer"), BotUttered(f"I am looking into order {word}"),
        ActionExecuted("action_listen")], DOMAIN.slots)


def texts(tracker: DialogueStateTracker) -> list[str]:
    return [e.text for e in tracker.events if isinstance(e, UserUttered | BotUttered)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    redis_server = RedisServer(tmp_path_factory.mktemp("redis-encrypted"))
    redis_server.start()
    yield redis_server
    redis_server.stop()


@pytest.fixture()
def redis_env(server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    """REDIS_URL names the module's server, which starts empty (no records under another
    test's key), and Redis is tried again at once after an outage."""
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setattr(OUTAGE, "retry_seconds", 0.0)
    server.client().flushall()
    # DUMP compresses long values; uncompressed, a plaintext left in Redis would show
    server.client().config_set("rdbcompression", "no")
    return server


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each store on SQLite (REDIS_URL unset), then on the test's Redis."""
    if request.param == "redis":
        request.getfixturevalue("redis_env")
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    return request.param


def redis_bytes(server: RedisServer) -> bytes:
    """What a leak of Redis shows: every key's DUMP and the AOF files (once a rewrite is done)."""
    client = server.client()
    deadline = time.monotonic() + 30
    while any(client.info("persistence")[flag] for flag in ("aof_rewrite_in_progress", "aof_rewrite_scheduled")):
        assert time.monotonic() < deadline, "Redis did not finish rewriting its AOF"
        time.sleep(0.05)
    dumps = b"".join(key + (client.dump(key) or b"") for key in client.scan_iter(count=1000))
    return dumps + b"".join(path.read_bytes() for path in server.folder.rglob("appendonly*") if path.is_file())


def folder_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


def write_everywhere(tmp_path: Path, sender: str, word: str, prefix: str) -> None:
    """A conversation, a rating with a correction, a hand-off and (with Redis) a recorded reply,
    each holding `word`, written with whatever key the environment has."""
    store = RedisTrackerStore(DOMAIN, key_prefix=prefix, db=str(tmp_path / "sessions.db"),
                              spool_dir=str(tmp_path / "spool"))
    run(store.save(private_conversation(sender, word)))
    feedback = FeedbackLog(tmp_path / "feedback.db", spool_dir=str(tmp_path / "spool"))
    feedback.rate(RatedReply(f"reply-{sender}", sender, user_message=f"where is {word}",
                             bot_reply=f"{word} is on its way", rating="down"))
    feedback.correct(f"reply-{sender}", sender, f"{word} left the warehouse today")
    HandoffQueue(tmp_path / "handoffs.db").add(sender, [{"role": "user", "text": f"a person about {word} please"}])
    if os.environ.get("REDIS_URL"):
        async def process() -> list[dict]:
            return [{"recipient_id": sender, "text": f"order {word} ships tomorrow"}]

        run(ProcessedMessages().once(sender, "m1", process))


def read_everywhere(tmp_path: Path, sender: str, prefix: str) -> list[str]:
    """Every text a member of staff or the bot reads back from the stores written above."""
    store = RedisTrackerStore(DOMAIN, key_prefix=prefix, db=str(tmp_path / "sessions.db"),
                              spool_dir=str(tmp_path / "spool"))
    tracker = run(store.retrieve(sender))
    found = [*texts(tracker), str(tracker.get_slot("order_id"))]
    [reply] = [r for r in FeedbackLog(tmp_path / "feedback.db").replies() if r.conversation_id == sender]
    found += [reply.user_message, reply.bot_reply, str(reply.correction)]
    [request] = [r for r in HandoffQueue(tmp_path / "handoffs.db").requests() if r.conversation_id == sender]
    found += [message["text"] for message in request.last_messages]
    if os.environ.get("REDIS_URL"):
        async def never() -> list[dict]:
            raise AssertionError("a recorded message was processed again")

        found += [reply["text"] for reply in run(ProcessedMessages().once(sender, "m1", never))]
    return found


def expected_texts(word: str, with_redis: bool) -> list[str]:
    return [f"my order {word} never came", f"I am looking into order {word}", word, f"where is {word}",
            f"{word} is on its way", f"{word} left the warehouse today", f"a person about {word} please",
            *([f"order {word} ships tomorrow"] if with_redis else [])]


def kefu(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([KEFU, *args], cwd=cwd, env=env, capture_output=True, text=True)


def endpoints_file(tmp_path: Path, prefix: str) -> Path:
    path = tmp_path / "endpoints.yml"
    path.write_text(yaml.safe_dump({"tracker_store": {
        "type": "components.stores.RedisTrackerStore", "key_prefix": prefix, "db": str(tmp_path / "sessions.db"),
        "spool_dir": str(tmp_path / "spool")}}))
    return path


def store_options(tmp_path: Path) -> list[str]:
    return ["--endpoints", str(tmp_path / "endpoints.yml"), "--feedback-db", str(tmp_path / "feedback.db"),
            "--handoff-db", str(tmp_path / "handoffs.db")]


def test_a_redis_leak_shows_no_customer_text(redis_env: RedisServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    word, control, prefix = secret(), secret(), f"e{uuid.uuid4().hex[:8]}"
    write_everywhere(tmp_path / "plain", "control", control, prefix)  # no key: shows what a leak would show
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, new_key())
    write_everywhere(tmp_path, "customer", word, prefix)
    leaked = redis_bytes(redis_env)
    assert control.encode() in leaked  # the dump would show a plaintext
    assert word.encode() not in leaked
    assert b"customer" in leaked  # ids stay readable: SCAN, expiry and `kefu forget` use them
    assert read_everywhere(tmp_path, "customer", prefix) == expected_texts(word, with_redis=True)


def test_sqlite_files_show_no_customer_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    word, control = secret(), secret()
    write_everywhere(tmp_path / "plain", "control", control, "kefu")
    assert control.encode() in folder_bytes(tmp_path / "plain")
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, new_key())
    write_everywhere(tmp_path, "customer", word, "kefu")
    assert {path.name for path in tmp_path.glob("*.db")} == {"sessions.db", "feedback.db", "handoffs.db"}
    assert word.encode() not in b"".join(path.read_bytes() for path in tmp_path.glob("*.db*"))
    assert read_everywhere(tmp_path, "customer", "kefu") == expected_texts(word, with_redis=False)


def test_the_spool_written_while_redis_is_down_shows_no_customer_text(
        redis_env: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, new_key())
    word, prefix = secret(), f"e{uuid.uuid4().hex[:8]}"
    store = RedisTrackerStore(DOMAIN, key_prefix=prefix, spool_dir=str(tmp_path / "spool"))
    feedback = FeedbackLog(spool_dir=str(tmp_path / "spool"))
    redis_env.stop()
    try:
        run(store.save(private_conversation("outage", word)))
        feedback.rate(RatedReply("reply-outage", "outage", user_message=f"where is {word}", rating="up"))
        spooled = folder_bytes(tmp_path / "spool")
        assert b"outage" in spooled and word.encode() not in spooled
    finally:
        redis_env.start()
    fresh = RedisTrackerStore(DOMAIN, key_prefix=prefix, spool_dir=str(tmp_path / "spool"))
    assert texts(run(fresh.retrieve("outage"))) == [f"my order {word} never came", f"I am looking into order {word}"]
    assert [r.user_message for r in feedback.replies()] == [f"where is {word}"]
    assert word.encode() not in redis_bytes(redis_env)


def test_a_wrong_or_missing_key_is_a_clear_error_and_loses_nothing(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, word, prefix = new_key(), secret(), f"e{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, key)
    write_everywhere(tmp_path, "customer", word, prefix)

    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, new_key())
    # The bot does not start, as `rasa run` creates its store, rather than answer as if the conversation were new.
    endpoints = AvailableEndpoints.read_endpoints(str(endpoints_file(tmp_path, prefix))).tracker_store
    with pytest.raises(EncryptionKeyError, match="tracker store .*key check.*key KEFU_ENCRYPTION_KEY does not hold"):
        TrackerStore.create(endpoints, DOMAIN)
    with pytest.raises(EncryptionKeyError, match="feedback.*key KEFU_ENCRYPTION_KEY does not hold"):
        FeedbackLog(tmp_path / "feedback.db").replies()
    with pytest.raises(EncryptionKeyError, match="handoffs.db, request 1"):
        HandoffQueue(tmp_path / "handoffs.db").requests()
    monkeypatch.delenv(ENCRYPTION_KEY_VARIABLE)
    with pytest.raises(EncryptionKeyError, match=f"tracker store .*encrypted but {ENCRYPTION_KEY_VARIABLE} is not set"):
        TrackerStore.create(endpoints, DOMAIN)
    with pytest.raises(EncryptionKeyError, match=f"feedback.*encrypted but {ENCRYPTION_KEY_VARIABLE} is not set"):
        FeedbackLog(tmp_path / "feedback.db").replies()
    listed = kefu("handoff", "list", "--db", str(tmp_path / "handoffs.db"), env=dict(os.environ), cwd=tmp_path)
    assert listed.returncode == 1 and f"{ENCRYPTION_KEY_VARIABLE} is not set" in listed.stderr
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, "not-a-key")
    with pytest.raises(EncryptionKeyError, match="key 1 of 1 is not a Fernet key"):
        HandoffQueue(tmp_path / "handoffs.db")

    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, key)
    assert read_everywhere(tmp_path, "customer", prefix) == expected_texts(word, backend == "redis")


def test_rotate_key_moves_everything_to_the_new_key_and_resumes(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    old, new, prefix = new_key(), new_key(), f"e{uuid.uuid4().hex[:8]}"
    words = {"before-encryption": secret(), "old-key": secret(), "old-key-2": secret()}
    write_everywhere(tmp_path, "before-encryption", words["before-encryption"], prefix)
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, old)
    write_everywhere(tmp_path, "old-key", words["old-key"], prefix)
    write_everywhere(tmp_path, "old-key-2", words["old-key-2"], prefix)
    endpoints_file(tmp_path, prefix)

    # A rotation cut short after the conversations: the next run finishes the rest.
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, f"{new},{old}")
    interrupted = RedisTrackerStore(DOMAIN, key_prefix=prefix, db=str(tmp_path / "sessions.db"),
                                    spool_dir=str(tmp_path / "spool"))
    assert interrupted.reencrypt() > 0
    rotated = kefu("rotate-key", *store_options(tmp_path), env=dict(os.environ), cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted 0 conversation event(s)" in rotated.stdout  # done before the interruption
    assert "Re-encrypted 3 hand-off request(s)" in rotated.stdout
    again = kefu("rotate-key", *store_options(tmp_path), env=dict(os.environ), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("Re-encrypted 0 ") == again.stdout.count("Re-encrypted ")

    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, new)  # the old key is gone
    for sender, word in words.items():
        assert read_everywhere(tmp_path, sender, prefix) == expected_texts(word, backend == "redis")
    stored = redis_bytes(request.getfixturevalue("server")) if backend == "redis" else b""
    stored += b"".join(path.read_bytes() for path in tmp_path.glob("*.db*"))
    assert not any(word.encode() in stored for word in words.values())


def test_kefu_forget_erases_an_encrypted_conversation(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENCRYPTION_KEY_VARIABLE, new_key())
    prefix = f"e{uuid.uuid4().hex[:8]}"
    for sender in ("erase-me", "keep-me"):
        write_everywhere(tmp_path, sender, secret(), prefix)
    endpoints_file(tmp_path, prefix)
    forgot = kefu("forget", "erase-me", *store_options(tmp_path), env=dict(os.environ), cwd=tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert "1 feedback" not in forgot.stdout and "2 feedback" in forgot.stdout and "1 hand-off" in forgot.stdout
    store = RedisTrackerStore(DOMAIN, key_prefix=prefix, db=str(tmp_path / "sessions.db"),
                              spool_dir=str(tmp_path / "spool"))
    assert run(store.retrieve("erase-me")) is None
    assert texts(run(store.retrieve("keep-me")))
    assert [r.conversation_id for r in FeedbackLog(tmp_path / "feedback.db").replies()] == ["keep-me"]
    assert [r.conversation_id for r in HandoffQueue(tmp_path / "handoffs.db").requests()] == ["keep-me"]
