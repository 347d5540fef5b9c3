"""Two real `rasa run` servers with the project's endpoints.yml share Redis and keep one
conversation whole. (Without Redis, a restarted `rasa run` continuing its conversation from
SQLite is part of the browser test, tests/channels/test_browser.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered

from components.stores import RedisTrackerStore
from tests.conftest import PROJECT, RasaServer, RedisServer
from tests.stores.test_assistant_on_redis import project_endpoints


@pytest.fixture()
def servers(trained_model: Path, action_server: str, tmp_path: Path) -> Iterator:
    started: list[RasaServer] = []

    def start(count: int, redis_url: str | None, endpoints: Path | None = None) -> list[RasaServer]:
        endpoints = endpoints or project_endpoints(tmp_path, action_server)
        new = [RasaServer(trained_model, endpoints, tmp_path / f"rasa-{len(started) + n}.log", redis_url).start()
               for n in range(count)]
        started.extend(new)
        return [server.wait() for server in new]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop()


def test_two_servers_sharing_redis_keep_one_conversation_in_order(servers, redis_server: RedisServer,  # noqa: ANN001
                                                                  tmp_path: Path) -> None:
    first, second = servers(2, redis_server.url)
    sender = f"two-servers-{uuid.uuid4().hex}"
    messages = ["hi", "how long does standard delivery take?", "which payment methods can I use?",
                "can I return these shoes?", "thanks"]
    for number, text in enumerate(messages):
        assert (first if number % 2 == 0 else second).say(sender, text)
    with ThreadPoolExecutor(2) as pool:  # two messages at once, one per server: the Redis lock serialises them
        together = ["is this an automated assistant?", "bye"]
        list(pool.map(lambda pair: pair[0].say(sender, pair[1]), [(first, together[0]), (second, together[1])]))
    settings = yaml.safe_load((tmp_path / "endpoints.yml").read_text())["tracker_store"]
    store = RedisTrackerStore(Domain.load(str(PROJECT / "domain.yml")), url=redis_server.url,
                              key_prefix=settings["key_prefix"], spool_dir=str(tmp_path / "spool"))
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    texts = [e.text for e in tracker.events if isinstance(e, UserUttered)]
    assert texts[:len(messages)] == messages and sorted(texts[len(messages):]) == sorted(together)
    kinds = ["user" if isinstance(e, UserUttered) else "action" for e in tracker.events
             if isinstance(e, UserUttered | ActionExecuted)]
    # every message is answered before the next is read: no two user turns without an action between
    assert all(not (a == b == "user") for a, b in zip(kinds, kinds[1:], strict=False))
    assert [e.action_name for e in tracker.events if isinstance(e, ActionExecuted)].count("action_session_start") == 1
