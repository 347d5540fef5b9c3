"""The trained assistant with the project's endpoints.yml: its conversations go to Redis when
REDIS_URL is set and to SQLite when not, and a Redis outage or restart loses no message."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rasa.core.agent import Agent, load_agent
from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.core.tracker_store import TrackerStore
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered

from components.stores import RedisLockStore, RedisTrackerStore
from components.stores.connection import OUTAGE
from components.stores.tracker_store import SQLiteTrackerStore
from tests.conftest import PROJECT, Assistant, RedisServer

UNAVAILABLE = "briefly unavailable"


def project_endpoints(folder: Path, action_server: str) -> Path:
    """The project's endpoints.yml, with the test action server and files under `folder`."""
    endpoints = yaml.safe_load((PROJECT / "endpoints.yml").read_text())
    endpoints["action_endpoint"]["url"] = action_server
    endpoints["tracker_store"].update(db=str(folder / "sessions.db"), spool_dir=str(folder / "spool"),
                                      key_prefix=f"a{uuid.uuid4().hex[:8]}")
    path = folder / "endpoints.yml"
    path.write_text(yaml.safe_dump(endpoints))
    return path


def load(model: Path, endpoints: Path) -> Assistant:
    loop = asyncio.new_event_loop()
    agent = loop.run_until_complete(load_agent(model_path=str(model), loop=loop,
                                               endpoints=AvailableEndpoints.read_endpoints(str(endpoints))))
    return Assistant(agent, loop)


def inner_store(agent: Agent) -> object:
    return agent.tracker_store._tracker_store  # Rasa wraps every store in a FailSafeTrackerStore


@pytest.fixture(scope="module")
def on_redis(trained_model: Path, action_server: str, redis_server: RedisServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    os.environ["REDIS_URL"] = redis_server.url
    try:
        yield load(trained_model, project_endpoints(tmp_path_factory.mktemp("on_redis"), action_server))
    finally:
        del os.environ["REDIS_URL"]


def user_texts(assistant: Assistant, sender: str) -> list[str]:
    tracker = assistant.loop.run_until_complete(assistant.agent.tracker_store.retrieve_full_tracker(sender))
    return [e.text for e in tracker.events if isinstance(e, UserUttered)]


def test_with_redis_url_the_running_agent_uses_kefus_redis_stores(on_redis: Assistant) -> None:
    assert type(inner_store(on_redis.agent)) is RedisTrackerStore
    assert type(on_redis.agent.lock_store) is RedisLockStore and on_redis.agent.lock_store.red is not None


def test_without_redis_url_the_same_endpoints_give_a_sqlite_file(action_server: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Built the way Rasa's agent builds its stores (the agent itself is checked above)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    endpoints = AvailableEndpoints.read_endpoints(str(project_endpoints(tmp_path, action_server)))
    store = TrackerStore.create(endpoints.tracker_store, Domain.load(str(PROJECT / "domain.yml")))
    assert type(store) is SQLiteTrackerStore
    lock_store = LockStore.create(endpoints.lock_store)
    assert type(lock_store) is RedisLockStore and lock_store.red is None
    assert type(lock_store.memory) is InMemoryLockStore
    # Sanic workers would each lock in their own memory: refused, naming the cure
    monkeypatch.setenv("SANIC_WORKERS", "2")
    with pytest.raises(ValueError, match="SANIC_WORKERS=2 needs REDIS_URL"):
        LockStore.create(endpoints.lock_store)
    monkeypatch.setenv("SANIC_WORKERS", "many")  # Rasa runs one worker for what is not a number
    assert LockStore.create(endpoints.lock_store).red is None


def test_while_redis_is_down_the_bot_says_so_and_then_continues_the_conversation(
        on_redis: Assistant, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OUTAGE, "retry_seconds", 0.0)
    sender = f"outage-{uuid.uuid4().hex}"
    assert not any(UNAVAILABLE in r for r in on_redis.say("hello", sender))
    redis_server.stop()
    try:
        during = on_redis.say("where is my parcel?", sender)
        assert any(UNAVAILABLE in r for r in during), during
    finally:
        redis_server.start()
    after = on_redis.say("how long does standard delivery take?", sender)
    assert after and not any(UNAVAILABLE in r for r in after)
    assert user_texts(on_redis, sender) == ["hello", "where is my parcel?", "how long does standard delivery take?"]


def test_a_redis_restart_loses_no_event(on_redis: Assistant, redis_server: RedisServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OUTAGE, "retry_seconds", 0.0)
    sender = f"restart-{uuid.uuid4().hex}"
    on_redis.say("hi", sender)
    on_redis.say("which payment methods can I use?", sender)
    before = on_redis.loop.run_until_complete(on_redis.agent.tracker_store.retrieve_full_tracker(sender))
    redis_server.stop()
    redis_server.start()
    on_redis.say("thanks, bye", sender)
    after = on_redis.loop.run_until_complete(on_redis.agent.tracker_store.retrieve_full_tracker(sender))
    assert [e.as_dict() for e in after.events][:len(before.events)] == [e.as_dict() for e in before.events]
    assert user_texts(on_redis, sender) == ["hi", "which payment methods can I use?", "thanks, bye"]
