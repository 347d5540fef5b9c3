"""Two real `rasa run` servers with the project's endpoints.yml share Redis and keep one
conversation whole. (Without Redis, a restarted `rasa run` continuing its conversation from
SQLite is part of the browser test, tests/channels/test_browser.py.)"""

from __future__ import annotations

import asyncio
import time
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

pytestmark = pytest.mark.longest  # Rasa servers loading the model: minutes; scheduled among the first


@pytest.fixture()
def servers(trained_model: Path, action_server: str, tmp_path: Path) -> Iterator:
    started: list[RasaServer] = []

    def start(count: int, redis_url: str | None, endpoints: Path | None = None,
              env: dict[str, str] | None = None) -> list[RasaServer]:
        endpoints = endpoints or project_endpoints(tmp_path, action_server)
        new = [RasaServer(trained_model, endpoints, tmp_path / f"rasa-{len(started) + n}.log", redis_url,
                          env=env).start() for n in range(count)]
        started.extend(new)
        return [server.wait() for server in new]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop()


@pytest.mark.parametrize("topology", ["two servers", "one server, two Sanic workers"])
def test_processes_sharing_redis_keep_one_conversation_in_order(servers, redis_server: RedisServer,  # noqa: ANN001
                                                                tmp_path: Path, topology: str) -> None:
    if topology == "two servers":
        first, second = servers(2, redis_server.url)
    else:  # the kernel hands each connection to one of the workers of the one port
        first = second = servers(1, redis_server.url, env={"SANIC_WORKERS": "2"})[0]
        deadline = time.monotonic() + 300  # the port answers once the first worker has loaded the model
        while first.log.read_text().count("Rasa server is up and running") < 2:
            assert time.monotonic() < deadline, first.log.read_text()[-3000:]
            time.sleep(1)
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
