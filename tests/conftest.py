"""Shared fixtures: one trained assistant, one action server, one agent per test run.

Training is the slow part, so the whole suite shares a single model trained from
the project's real config.yml, domain.yml and data/. Set KEFU_TEST_MODEL to the
path of an already trained model to skip training while iterating locally.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

PROJECT = Path(__file__).resolve().parent.parent
RASA = str(Path(sys.executable).parent / "rasa")
KEFU = str(Path(sys.executable).parent / "kefu")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


def run_command(command: list[str], log: Path, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a CLI command from the project root; fail with the end of its log."""
    with log.open("w") as handle:
        completed = subprocess.run(
            command, cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT, **kwargs
        )
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"{' '.join(command)} exited {completed.returncode}:\n{tail}")
    return completed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Work units for parallel runs (`-n 2 --dist loadgroup` in pyproject.toml).

    A test module stays on one worker, and the modules that share an expensive session
    fixture (the in-process assistant, the web bot) form one unit, so each is loaded once.
    The assistant's unit goes first, so one worker starts training at once while the other
    runs the tests that need no trained model; the rest of the model's tests come last, the
    modules marked `longest` (minutes of their own once the model is there) first among them.
    """
    module = {item: item.nodeid.split("::")[0] for item in items}
    units: dict[str, str] = {}
    for item in items:
        if "web_bot" in item.fixturenames:
            units[module[item]] = "web_bot"
        elif "assistant" in item.fixturenames and units.get(module[item]) != "web_bot":
            units[module[item]] = "assistant"
        else:
            units.setdefault(module[item], module[item])
    needs_model = {units[module[item]] for item in items if "trained_model" in item.fixturenames}

    longest = {units[module[item]] for item in items if item.get_closest_marker("longest")}

    def position(item: pytest.Item) -> int:
        unit = units[module[item]]
        if unit == "assistant":
            return 0
        return (2 if unit in longest else 3) if unit in needs_model else 1

    for item in items:
        item.add_marker(pytest.mark.xdist_group(units[module[item]]))
    items.sort(key=position)


# While the assistant trains, the other workers run at this niceness: DIET trained in about
# 180 s on two idle cores and in 384 s beside a worker running tests, and the training is the
# suite's critical path; the tests that need no model had minutes to spare (docs/ci.md).
NICE_BESIDE_TRAINING = 10


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, pending = [], [pid]
    while pending:
        tree.append(pending.pop())
        pending += children.get(tree[-1], [])
    return tree


def lower_priority(pids: list[int], niceness: int) -> None:
    """Raise every thread of `pids` (and their descendants) to at least `niceness`: Linux nices
    threads one by one, and any user may lower the priority of their own processes."""
    for pid in {p for root in pids for p in process_tree(root)}:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                tid = int(task.name)
                os.setpriority(os.PRIO_PROCESS, tid, max(niceness, os.getpriority(os.PRIO_PROCESS, tid)))
            except (OSError, ValueError):
                continue


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("KEFU_TEST_MODEL"):
        return Path(os.environ["KEFU_TEST_MODEL"])
    # Parallel workers share one training: the first trains, the others wait for its model.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    out = shared / "assistant-model"
    with FileLock(str(shared / "assistant-model.lock")):
        if not (out / "kefu.tar.gz").exists():
            out.mkdir(exist_ok=True)
            # the other xdist workers (the controller's other children) yield the CPU meanwhile
            workers = [pid for pid in process_tree(os.getppid())[1:] if pid != os.getpid()] \
                if os.environ.get("PYTEST_XDIST_WORKER") else []
            lower_priority(workers, NICE_BESIDE_TRAINING)
            run_command(
                [RASA, "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
                 "--out", str(out), "--fixed-model-name", "kefu"],
                out / "train.log",
            )
            if workers:  # then every worker shares the CPU equally again
                lower_priority([os.getpid()], NICE_BESIDE_TRAINING)
    return out / "kefu.tar.gz"


@pytest.fixture(scope="session")
def handoff_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("handoff") / "handoffs.db"


@pytest.fixture(scope="session")
def feedback_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "feedback.db"


@pytest.fixture(scope="session")
def action_server(tmp_path_factory: pytest.TempPathFactory, handoff_db: Path, feedback_db: Path) -> Iterator[str]:
    """A real `rasa run actions` process; yields its webhook URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("actions") / "actions.log"
    env = {**os.environ, "KEFU_HANDOFF_DB": str(handoff_db), "KEFU_FEEDBACK_DB": str(feedback_db)}
    env.pop("REDIS_URL", None)  # feedback goes to the SQLite file above
    with log.open("w") as handle:
        process = subprocess.Popen(
            [RASA, "run", "actions", "--actions", "actions", "--port", str(port)],
            cwd=PROJECT, env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"action server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def endpoints_file(tmp_path_factory: pytest.TempPathFactory, action_server: str) -> Path:
    """endpoints.yml for the tests: the test action server and a SQLite tracker store."""
    folder = tmp_path_factory.mktemp("endpoints")
    path = folder / "endpoints.yml"
    path.write_text(
        f'action_endpoint:\n  url: "{action_server}"\n'
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {folder / 'sessions.db'}\n"
    )
    return path


class Assistant:
    """The trained assistant, driven the way a channel drives it."""

    def __init__(self, agent: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.agent = agent
        self.loop = loop

    def say(self, text: str, sender: str) -> list[str]:
        """Send one user message; returns the texts of the bot's replies."""
        replies = self.loop.run_until_complete(self.agent.handle_text(text, sender_id=sender))
        return [reply.get("text") or "" for reply in replies or []]

    def reply_messages(self, text: str, sender: str) -> list[dict[str, Any]]:
        """Send one user message; returns the bot's replies as channels get them (with buttons)."""
        return self.loop.run_until_complete(self.agent.handle_text(text, sender_id=sender)) or []

    def parse(self, text: str) -> dict[str, Any]:
        return self.loop.run_until_complete(self.agent.parse_message(text))


@pytest.fixture(scope="session")
def assistant(trained_model: Path, endpoints_file: Path) -> Iterator[Assistant]:
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints

    # Loaded the way `rasa run` loads it, with the stores named in endpoints.yml.
    endpoints = AvailableEndpoints.read_endpoints(str(endpoints_file))
    loop = asyncio.new_event_loop()
    agent = loop.run_until_complete(
        load_agent(model_path=str(trained_model), endpoints=endpoints, loop=loop)
    )
    yield Assistant(agent, loop)
    loop.close()


class RedisServer:
    """A real `redis-server` on a free port, with AOF written on every command, so a
    restart keeps everything. `KEYS` is disabled, so a store that calls it fails."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--rename-command", "KEYS", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server; make test does it)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


class RasaServer:
    """`rasa run` on a free port (kept across restarts), with the REST channel unless
    `extra_args` name other credentials."""

    def __init__(self, model: Path, endpoints: Path, log: Path, redis_url: str | None = None,
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [RASA, "run", "--model", str(model), "--endpoints", str(endpoints), "--port", str(self.port),
                        *extra_args]
        self.env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | (env or {})
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> RasaServer:
        with self.log.open("a") as handle:
            self.process = subprocess.Popen(self.command, cwd=PROJECT, env=self.env, stdout=handle,
                                            stderr=subprocess.STDOUT)
        return self

    def wait(self) -> RasaServer:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"rasa run did not start:\n{self.log.read_text()[-3000:]}")
                time.sleep(1)

    def say(self, sender: str, text: str, channel: str = "rest") -> list[dict]:
        request = urllib.request.Request(f"{self.url}/webhooks/{channel}/webhook",
                                         data=json.dumps({"sender": sender, "message": text}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
