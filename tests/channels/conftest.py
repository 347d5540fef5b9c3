"""One `rasa run` for the channel tests, configured as `make serve` runs it: the HTTP API behind
a token, the project's credentials (REST, socket.io, the web chat and Slack, with Slack's
variables set), SQLite sessions and the test action server. Its rate limit uses 5-second
windows so a test can watch it recover."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT, RasaServer
from tests.stores.test_assistant_on_redis import project_endpoints

API_TOKEN = "test-api-token"
SLACK_SECRET = "test-signing-secret"
MESSAGES_PER_WINDOW = 10
# Long enough for the rate-limit test's burst of twelve messages on a busy two-core machine.
WINDOW_SECONDS = 30


@pytest.fixture(scope="session")
def web_bot(trained_model: Path, action_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    folder = tmp_path_factory.mktemp("web_bot")
    credentials = yaml.safe_load((PROJECT / "credentials.yml").read_text())
    credentials["components.channels.WebChatInput"].update(
        messages_per_minute=MESSAGES_PER_WINDOW * 60 // WINDOW_SECONDS, rate_window_seconds=WINDOW_SECONDS)
    (folder / "credentials.yml").write_text(yaml.safe_dump(credentials))
    server = RasaServer(trained_model, project_endpoints(folder, action_server), folder / "rasa.log",
                        extra_args=("--enable-api", "--auth-token", API_TOKEN,
                                    "--credentials", str(folder / "credentials.yml")),
                        env={"SLACK_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SLACK_SECRET,
                             "KEFU_API_TOKEN": API_TOKEN})  # as `make serve` passes it
    server.start().wait()
    yield server
    server.stop()
