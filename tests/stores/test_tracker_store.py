"""Kefu's RedisTrackerStore against a real redis-server: Rasa's tracker store contract,
append-only writes, housekeeping, outages and privacy."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    AgentUttered,
    AllSlotsReset,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    DefinePrevUserUtteredFeaturization,
    EntitiesAdded,
    Event,
    FollowupAction,
    LoopInterrupted,
    ReminderCancelled,
    ReminderScheduled,
    Restarted,
    SessionStarted,
    SlotSet,
    StoryExported,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from components.stores import RedisTrackerStore
from components.stores.connection import OUTAGE
from tests.conftest import RedisServer

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, provide_email]
entities: [email]
slots:
  email: {type: text, mappings: [{type: from_entity, entity: email}]}
  order_id: {type: text, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: hi}]
""")


def run(coroutine):  # noqa: ANN001, ANN201 - any coroutine, its result
    return asyncio.new_event_loop().run_until_complete(coroutine)


@pytest.fixture()
def new_store(redis_server: RedisServer, tmp_path: Path) -> Iterator:
    """Makes stores on the test Redis with a key prefix of this test's own."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def make(**settings) -> RedisTrackerStore:  # noqa: ANN003 - store settings
        return RedisTrackerStore(DOMAIN, **{"url": redis_server.url, "key_prefix": prefix,
                                            "spool_dir": str(tmp_path / "spool"), **settings})

    yield make


def every_event_type() -> list[Event]:
    return [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        UserUttered("hello", {"name": "greet", "confidence": 0.9}, [], message_id="m1", input_channel="rest"),
        DefinePrevUserUtteredFeaturization(False),
        ActionExecuted("utter_greet", policy="RulePolicy", confidence=1.0, metadata={"model_id": "x"}),
        BotUttered("hi", {"buttons": [{"title": "ok", "payload": "/greet"}]}, {"utter_action": "utter_greet"}),
        SlotSet("order_id", "123456"), EntitiesAdded([{"entity": "email", "value": "a@b.co"}]),
        ActiveLoop("some_form"), LoopInterrupted(True), ActionExecutionRejected("some_form"), ActiveLoop(None),
        FollowupAction("utter_greet"), ReminderScheduled("greet", datetime(2030, 1, 1), name="r1"),
        ReminderCancelled(name="r1"), ConversationPaused(), ConversationResumed(), AgentUttered("agent text"),
        StoryExported(), UserUtteranceReverted(), ActionReverted(), AllSlotsReset(), Restarted(),
        ActionExecuted("action_listen"),
    ]


def conversation(sender: str, events: list[Event]) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender, events, DOMAIN.slots)


def dicts(tracker: DialogueStateTracker) -> list[dict]:
    return [e.as_dict() for e in tracker.events]


def test_every_event_type_round_trips(new_store) -> None:  # noqa: ANN001
    tracker = conversation("all-events", every_event_type())
    run(new_store().save(tracker))
    # a second store has no cache: it reads everything back from Redis
    loaded = run(new_store().retrieve_full_tracker("all-events"))
    assert dicts(loaded) == dicts(tracker)
    assert loaded.current_slot_values() == tracker.current_slot_values()


def test_retrieve_returns_the_last_session_and_the_full_tracker_all_of_them(new_store) -> None:  # noqa: ANN001
    store = new_store()
    first = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
             UserUttered("hi", {"name": "greet"})]
    second = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
              UserUttered("hello again", {"name": "greet"})]
    tracker = conversation("two-sessions", first)
    run(store.save(tracker))
    tracker.update_with_events(second, None)
    run(store.save(tracker))
    fresh = new_store()
    assert [e.as_dict() for e in run(fresh.retrieve("two-sessions")).events] == [e.as_dict() for e in second]
    # the store that wrote both sessions has the whole tracker cached; it too returns the last one
    assert [e.as_dict() for e in run(store.retrieve("two-sessions")).events] == [e.as_dict() for e in second]
    assert len(run(fresh.retrieve_full_tracker("two-sessions")).events) == len(first) + len(second)
    assert run(fresh.retrieve("never-seen")) is None


def test_a_turn_appends_only_its_new_events(new_store, redis_server: RedisServer) -> None:  # noqa: ANN001
    store = new_store()
    tracker = conversation("appending", every_event_type())
    run(store.save(tracker))
    client = redis_server.client()
    [events_key] = [k for k in client.scan_iter(match=f"{store.prefix}*events")]
    before = client.lrange(events_key, 0, -1)
    # the next turn, as Rasa's processor does it, in another process: retrieve, add events, save
    other = new_store()
    turn = run(other.retrieve("appending"))
    turn.update(UserUttered("one more", {"name": "greet"}))
    turn.update(ActionExecuted("action_listen"))
    run(other.save(turn))
    after = client.lrange(events_key, 0, -1)
    assert after[:len(before)] == before  # nothing rewritten
    assert [json.loads(e)["event"] for e in after[len(before):]] == ["user", "action"]
    assert int(client.hget(events_key.replace(b":events", b":meta"), "count")) == len(after)


def test_keys_lists_more_than_a_thousand_conversations_without_KEYS(new_store) -> None:  # noqa: ANN001
    store = new_store()  # the test server has KEYS disabled
    senders = {f"user-{n}:with:colons" for n in range(1200)}
    for sender in senders:
        run(store.save(conversation(sender, [ActionExecuted("action_listen")])))
    assert set(run(new_store().keys())) == senders


def test_sliding_expiry_and_event_cap(new_store, redis_server: RedisServer) -> None:  # noqa: ANN001
    store = new_store(record_exp=60, max_events=5)
    tracker = conversation("capped", [ActionExecuted("action_listen")])
    run(store.save(tracker))
    client = redis_server.client()
    keys = list(client.scan_iter(match=f"{store.prefix}*"))
    assert len(keys) == 2 and all(0 < client.pttl(k) <= 60_000 for k in keys)
    for key in keys:
        client.pexpire(key, 5_000)
    for n in range(8):
        tracker.update(UserUttered(f"message {n}", {"name": "greet"}))
        run(store.save(tracker))
    assert all(client.pttl(k) > 5_000 for k in keys)  # renewed by the writes
    loaded = run(new_store().retrieve_full_tracker("capped"))
    assert [e.text for e in loaded.events] == [f"message {n}" for n in range(3, 8)]


def test_the_cache_serves_a_retrieve_only_while_redis_agrees(new_store) -> None:  # noqa: ANN001
    mine, other = new_store(), new_store()
    tracker = conversation("shared", [ActionExecuted("action_listen")])
    run(mine.save(tracker))
    assert run(mine.retrieve("shared")) is tracker  # unchanged: no replay
    theirs = run(other.retrieve("shared"))
    theirs.update(UserUttered("written by another server", {"name": "greet"}))
    run(other.save(theirs))
    again = run(mine.retrieve("shared"))  # the counter moved: read again
    assert again is not tracker and again.latest_message.text == "written by another server"


def test_pii_is_masked_in_redis(new_store, redis_server: RedisServer) -> None:  # noqa: ANN001
    store = new_store(mask_pii=True)
    tracker = seeded_pii_conversation("private")
    run(store.save(tracker))
    client = redis_server.client()
    stored = b"".join(b"".join(client.lrange(k, 0, -1)) for k in client.scan_iter(match=f"{store.prefix}*events"))
    assert b"jane.doe@example.com" not in stored and b"[EMAIL]" in stored
    assert tracker.get_slot("email") == "jane.doe@example.com"  # the running conversation keeps the value


def seeded_pii_conversation(sender: str) -> DialogueStateTracker:
    return conversation(sender, [
        UserUttered("my email is jane.doe@example.com", {"name": "provide_email"},
                    [{"entity": "email", "value": "jane.doe@example.com", "start": 12, "end": 32}]),
        SlotSet("email", "jane.doe@example.com"), BotUttered("I will write to jane.doe@example.com")])


def test_pii_is_masked_in_the_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    store = RedisTrackerStore(DOMAIN, db=str(tmp_path / "sessions.db"), mask_pii=True)
    run(store.save(seeded_pii_conversation("private")))
    raw = (tmp_path / "sessions.db").read_bytes()
    assert b"jane.doe@example.com" not in raw and b"[EMAIL]" in raw
    assert run(store.retrieve("private")).get_slot("email") == "[EMAIL]"


def test_acl_user_and_password_from_the_url(new_store, redis_server: RedisServer) -> None:  # noqa: ANN001
    user = f"kefu{uuid.uuid4().hex[:6]}"
    redis_server.client().acl_setuser(user, enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"])
    try:
        url = redis_server.url.replace("redis://", f"redis://{user}:s3cret@")
        store = new_store(url=url)
        run(store.save(conversation("acl", [ActionExecuted("action_listen")])))
        assert run(store.retrieve("acl")) is not None and "s3cret" not in store.where
    finally:
        redis_server.client().acl_deluser(user)


def test_with_redis_down_nothing_raises_and_the_spool_is_replayed_in_order(
        new_store, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(OUTAGE, "retry_seconds", 0.0)
    store = new_store()
    tracker = conversation("outage", [ActionExecuted("action_listen"), UserUttered("before", {"name": "greet"}),
                                      ActionExecuted("action_listen")])
    run(store.save(tracker))
    redis_server.stop()
    try:
        during = run(store.retrieve("outage"))
        assert during is tracker and OUTAGE.is_down
        for text in ("during one", "during two"):
            during.update(UserUttered(text, {"name": "greet"}))
            during.update(ActionExecuted("action_listen"))
            run(store.save(during))
        other = new_store()  # a store that never saw the conversation gets a stand-in, not None
        stranger = run(other.retrieve("outage"))
        assert stranger is not None and len(stranger.events) == 1
        stranger.update(UserUttered("during three", {"name": "greet"}))
        run(other.save(stranger))
    finally:
        redis_server.start()
    after = run(store.retrieve("outage"))
    assert not OUTAGE.is_down
    texts = [e.text for e in after.events if isinstance(e, UserUttered)]
    assert texts == ["before", "during one", "during two", "during three"]
    assert not any(Path(store.spool.folder).glob("*.jsonl*"))


def test_without_redis_url_the_store_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    store = RedisTrackerStore(DOMAIN, db=str(tmp_path / "kefu" / "sessions.db"))
    assert isinstance(store, SQLTrackerStore)  # Rasa's, on the SQLite file
    run(store.save(conversation("local", [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"})])))
    reopened = RedisTrackerStore(DOMAIN, db=str(tmp_path / "kefu" / "sessions.db"))
    assert run(reopened.retrieve("local")).latest_message.text == "hi"
