"""One real `rasa run` with two Sanic workers and the project's endpoints.yml: both workers
share Redis and keep one conversation whole. (Two replicas sharing Redis are in the cluster's
tests, tests/deploy/test_faults.py; a restarted `rasa run` continuing its conversation from
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
def server(trained_model: Path, action_server: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[RasaServer]:
    """`rasa run` with two Sanic workers: the kernel hands each connection to one of them."""
    started = RasaServer(trained_model, project_endpoints(tmp_path, action_server), tmp_path / "rasa.log",
                         redis_server.url, env={"SANIC_WORKERS": "2"}).start()
    try:
        started.wait()
        deadline = time.monotonic() + 300  # the port answers once the first worker has loaded the model
        while started.log.read_text().count("Rasa server is up and running") < 2:
            assert time.monotonic() < deadline, started.log.read_text()[-3000:]
            time.sleep(1)
        yield started
    finally:
        if started.process.poll() is None:
            started.stop()


def test_two_sanic_workers_sharing_redis_keep_one_conversation_in_order(server: RasaServer, redis_server: RedisServer,
                                                                        tmp_path: Path) -> None:
    sender = f"two-workers-{uuid.uuid4().hex}"
    messages = ["hi", "how long does standard delivery take?", "which payment methods can I use?",
                "can I return these shoes?", "thanks"]
    for text in messages:
        assert server.say(sender, text)
    with ThreadPoolExecutor(2) as pool:  # two messages at once: the Redis lock serialises them
        together = ["is this an automated assistant?", "bye"]
        list(pool.map(lambda text: server.say(sender, text), together))
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
