"""Faults `make cluster`'s topology survives, for real: two `rasa run` replicas sharing a real
redis-server behind a real haproxy, one action server behind haproxy, on loopback.

One cluster serves the whole module, since it takes minutes to start on two cores; the tests
run in file order on one worker (tests/conftest.py makes each module one xdist group), and the
last ones kill a replica and then stop the cluster. Each fault happens while customers talk
as the chat page does (deploy/load_client.py): a message_id per message, sent again with it
after a 5xx or a timeout. Bounded: about 8 minutes with a trained model on an idle machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.cluster import Cluster, is_running, port_is_free, program_path
from deploy.load_client import Exchange, LoadResult, LoadSettings, audit, run_conversations, stored_events
from tests.conftest import PROJECT

pytestmark = pytest.mark.longest  # tests/conftest.py starts it as soon as the model is trained
CLUSTER = [sys.executable, str(PROJECT / "deploy" / "cluster.py")]
# Two replicas loading TensorFlow and PyTorch: 2 to 4 minutes on two cores, longer next to
# the suite's other worker.
START_SECONDS = 600
# Customers who read each answer before they write again; also keeps each under the rate limit.
CUSTOMERS = LoadSettings(request_timeout=130, think_seconds=1.5, deadline=900)
ENGLISH = ["hi", "how long does standard delivery take?", "which payment methods can I use?",
           "can I return these shoes?", "is this an automated assistant?", "do you ship to canada?",
           "I forgot my password", "thanks"]
CHINESE = ["你好", "配送要几天？", "你们支持哪些付款方式？", "上周买的外套能退吗？", "你是机器人吗？",
           "能寄到加拿大吗？", "我忘记密码了", "谢谢！"]


def response_texts(name: str) -> list[str]:
    """Every language's text of a domain.yml response, English (the one without a condition) first."""
    domain = yaml.safe_load((PROJECT / "domain.yml").read_text(encoding="utf-8"))
    return [variant["text"] for variant in sorted(domain["responses"][name], key=lambda v: bool(v.get("condition")))]


def response_text(name: str, **slots: Any) -> str:
    """The English text of a domain.yml response, its slots filled in."""
    return response_texts(name)[0].format(**slots)


def request(url: str, body: dict[str, Any] | None = None) -> tuple[Any, str, Any]:
    """GET, or POST `body` as JSON; returns the answer, the replica haproxy chose and the headers."""
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(sent, timeout=130) as response:
        text = response.read().decode()
        answer = json.loads(text) if response.headers.get_content_type() == "application/json" else text
        return answer, response.headers.get("X-Kefu-Replica", ""), response.headers


def say(url: str, sender: str, text: str) -> list[str]:
    """One customer message through the REST channel; the texts of the replies."""
    replies, _, _ = request(f"{url}/webhooks/rest/webhook",
                            {"sender": sender, "message": text, "message_id": uuid.uuid4().hex})
    return [reply.get("text") or "" for reply in replies]


def scripts(name: str, conversations: int, messages: int) -> dict[str, list[str]]:
    """English and Chinese conversations, each going round its language's questions."""
    prefix = f"{name}-{uuid.uuid4().hex[:6]}"
    return {f"{prefix}-{number}": [(ENGLISH, CHINESE)[number % 2][(number + turn) % len(ENGLISH)]
                                   for turn in range(messages)]
            for number in range(conversations)}


class BackgroundLoad:
    """Conversations sent from another thread while the test breaks something."""

    def __init__(self, url: str, conversations: int = 4, messages: int = 500) -> None:
        self.scripts = scripts("load", conversations, messages)
        self.exchanges: list[Exchange] = []
        self.stop = threading.Event()
        self.result: LoadResult | None = None
        self.thread = threading.Thread(target=self._run, args=(f"{url}/webhooks/rest/webhook",), daemon=True)

    def _run(self, webhook: str) -> None:
        self.result = asyncio.run(run_conversations(webhook, self.scripts, CUSTOMERS, self.stop, self.exchanges))

    def __enter__(self) -> BackgroundLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=400)

    def answered(self) -> list[Exchange]:
        return [exchange for exchange in list(self.exchanges) if exchange.acknowledged]

    def wait_for_answers(self, count: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while len(self.answered()) < count:
            assert time.monotonic() < deadline, f"only {len(self.answered())} answers within {seconds} s"
            assert self.thread.is_alive(), "the load stopped early"
            time.sleep(0.2)

    def wait_until_every_conversation_is_answered_after(self, moment: float, seconds: float = 240) -> None:
        """Until each conversation has had an answer to a message it sent after `moment` (monotonic)."""
        deadline = time.monotonic() + seconds
        while {e.sender for e in self.answered() if e.answered_at - e.seconds > moment} != set(self.scripts):
            assert time.monotonic() < deadline, f"not every conversation was answered within {seconds} s"
            assert self.thread.is_alive(), "the load stopped early"
            time.sleep(0.2)

    def finish(self) -> LoadResult:
        """Stops sending new messages and waits for the ones under way (and their retries)."""
        self.stop.set()
        self.thread.join(timeout=400)
        assert self.result is not None, "the load did not finish"
        return self.result


def stored(cluster: Cluster, result: LoadResult | Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The conversations' events as Redis holds them."""
    senders = result.senders if isinstance(result, LoadResult) else list(result)
    with tempfile.TemporaryDirectory() as spool:
        return asyncio.run(stored_events(f"redis://127.0.0.1:{cluster.config.redis_port}/0", senders, spool))


def store_warnings(cluster: Cluster) -> list[str]:
    """The replicas' log lines that say Redis was slow or down, or a write went to the spool."""
    signs = ("unreachable", "is back after", "spool", "changed in Redis")
    return [f"{process.name}: {line.rstrip()}" for process in cluster.processes if process.name.startswith("replica")
            for line in Path(process.log).read_text(errors="replace").splitlines()
            if any(sign in line for sign in signs)]


def assert_nothing_lost_or_doubled(cluster: Cluster, result: LoadResult) -> None:
    audits = audit(result, stored(cluster, result))
    failed = [a for a in audits if a.lost or a.duplicated or a.out_of_order or a.unanswered]
    assert failed == [], "\n".join([*map(repr, failed), *store_warnings(cluster)])  # whole, not cut short
    assert sum(a.stored for a in audits) == sum(a.acknowledged for a in audits) > 0


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("cluster-data")
    return {"KEFU_HANDOFF_DB": str(folder / "handoffs.db"), "KEFU_FEEDBACK_DB": str(folder / "feedback.db"),
            "RASA_TELEMETRY_ENABLED": "false"}


@pytest.fixture(scope="module")
def cluster(trained_model: Path, environment: dict[str, str]) -> Iterator[Cluster]:
    for program in ("haproxy", "redis-server"):
        if not program_path(program):
            pytest.fail(f"{program} is not installed (Debian: apt-get install {program}; make test does it)")
    # A short folder: haproxy's stats socket lives in it, and socket paths are limited to 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="kefu-faults-"))
    env = {**os.environ, **environment}
    ports = [f"--{name}=0" for name in ("port", "replica-port", "action-port", "actions-port", "redis-port")]
    command = [*CLUSTER, "start", "--replicas=2", "--action-servers=1", f"--model={trained_model}",
               f"--state-dir={state}", f"--timeout={START_SECONDS}", *ports]
    try:
        started = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True,
                                 timeout=START_SECONDS + 60)
        assert started.returncode == 0, started.stdout + started.stderr
        running = Cluster.attach(state)
        assert running.config.url in started.stdout  # the load balancer's address is printed
        yield running
    finally:
        subprocess.run([*CLUSTER, "stop", f"--state-dir={state}"], cwd=PROJECT, env=env, timeout=300)
    shutil.rmtree(state)  # not reached when the start failed: its message names the logs in it


@pytest.fixture()
def cluster_environment(environment: dict[str, str]) -> Iterator[None]:
    """What the cluster's processes were started with, for those a test starts again."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        yield


def wait_until_haproxy_sees_up(cluster: Cluster, name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not all(state.startswith("UP") for server, state in cluster.server_states().items()
                  if server.endswith(f"/{name}")):
        assert time.monotonic() < deadline, f"haproxy does not see {name} up: {cluster.server_states()}"
        time.sleep(0.5)


def test_customers_reach_every_channel_through_haproxy_and_both_replicas_answer(cluster: Cluster) -> None:
    url = cluster.config.url
    replicas = set()

    page, replica, _ = request(f"{url}/webhooks/webchat/")
    assert "<html" in page.lower()
    replicas.add(replica)

    sender = f"webchat-{uuid.uuid4().hex}"
    texts = ["hi", "how long does standard delivery take?", "which payment methods can I use?"]
    for text in texts:
        replies, replica, _ = request(f"{url}/webhooks/webchat/webhook",
                                      {"sender": sender, "message": text, "message_id": uuid.uuid4().hex})
        assert replies and replies[0].get("text"), text
        replicas.add(replica)
    # The conversation is whole whichever replica took each message: it lives in Redis.
    history, replica, _ = request(f"{url}/webhooks/webchat/history?sender={sender}")
    assert [message["text"] for message in history if message["from"] == "user"] == texts
    replicas.add(replica)
    assert replicas == {"replica-1", "replica-2"}  # haproxy round-robins over both

    # socket.io's handshake goes through, and a cookie keeps that client on its replica.
    handshake, _, headers = request(f"{url}/socket.io/?EIO=4&transport=polling")
    assert '"sid"' in handshake and "KEFU_REPLICA=" in (headers.get("Set-Cookie") or "")

    again = subprocess.run([*CLUSTER, "start", f"--state-dir={cluster.state_dir}"], cwd=PROJECT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already running" in again.stderr


def test_one_conversation_sent_to_both_replicas_stays_whole_and_in_order(cluster: Cluster) -> None:
    """Straight to each replica, past haproxy: one after the other, then two at once, one per
    replica. Redis holds one conversation, and its lock answers each message before the next."""
    first, second = [f"http://127.0.0.1:{process.port}" for process in cluster.processes
                     if process.name.startswith("replica")]
    sender = f"two-replicas-{uuid.uuid4().hex}"
    messages = ["hi", "how long does standard delivery take?", "which payment methods can I use?",
                "can I return these shoes?", "thanks"]
    for number, text in enumerate(messages):
        assert say((first, second)[number % 2], sender, text), text
    together = ["is this an automated assistant?", "bye"]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda url, text: say(url, sender, text), (first, second), together))
    events = stored(cluster, [sender])[sender]
    texts = [event["text"] for event in events if event["event"] == "user"]
    assert texts[:len(messages)] == messages and sorted(texts[len(messages):]) == sorted(together)
    kinds = [event["event"] for event in events if event["event"] in ("user", "action")]
    assert all(not (a == b == "user") for a, b in zip(kinds, kinds[1:], strict=False))
    assert [event.get("name") for event in events if event["event"] == "action"].count("action_session_start") == 1


def test_action_server_killed_mid_form_the_customer_is_told_and_the_form_continues_when_it_is_back(
        cluster: Cluster, cluster_environment: None) -> None:
    url, sender = cluster.config.url, f"form-{uuid.uuid4().hex}"
    assert say(url, sender, "where is my order?") == [response_text("utter_ask_order_id")]

    actions = cluster.process("actions-1")
    os.kill(actions.pid, signal.SIGKILL)
    while is_running(actions):
        time.sleep(0.1)
    assert say(url, sender, "12345") == [response_text("utter_action_server_down")]
    events = stored(cluster, [sender])[sender]
    loops = [e["name"] for e in events if e["event"] == "active_loop"]
    order_ids = [e["value"] for e in events if e["event"] == "slot" and e["name"] == "order_id"]
    assert loops[-1] == "order_status_form" and order_ids[-1] == "12345"  # the form and its slot are kept

    cluster.start_one("actions-1", timeout=120)
    wait_until_haproxy_sees_up(cluster, "actions-1")
    replies = say(url, sender, "12345")
    assert replies == [response_text("utter_order_shipped", order_id="12345", carrier="UPS",
                                     tracking_number="1Z999AA10123456784")]


def test_redis_down_for_30_seconds_replies_say_so_nothing_answered_is_lost_and_service_resumes(
        cluster: Cluster, cluster_environment: None) -> None:
    unavailable = response_texts("utter_service_unavailable")  # English and Chinese conversations
    with BackgroundLoad(cluster.config.url) as load:
        load.wait_for_answers(8)
        cluster.stop_one("redis")
        stopped = time.monotonic()
        time.sleep(30)
        restarting = time.monotonic()  # replicas may answer again before start_one sees Redis healthy
        cluster.start_one("redis", timeout=60)
        restarted = time.monotonic()
        load.wait_until_every_conversation_is_answered_after(restarted + 5)
        result = load.finish()
    assert not result.unacknowledged()
    during = [e for e in result.exchanges if stopped + 3 < e.answered_at - e.seconds and e.answered_at < restarting]
    assert during
    assert [(e.text, e.reply_texts) for e in during
            if len(e.reply_texts) != 1 or e.reply_texts[0] not in unavailable] == []
    # Service resumes by itself: messages sent a few seconds after the restart get real answers.
    after = [e for e in result.exchanges if e.answered_at - e.seconds > restarted + 5]
    assert after and not any(set(e.reply_texts) & set(unavailable) for e in after)
    assert_nothing_lost_or_doubled(cluster, result)


def test_a_rolling_restart_of_a_replica_fails_no_request(cluster: Cluster, cluster_environment: None) -> None:
    with BackgroundLoad(cluster.config.url) as load:
        load.wait_for_answers(8)
        cluster.restart("replica-1", timeout=START_SECONDS)
        restarted = time.monotonic()
        deadline = restarted + 60
        while not any(e.replica == "replica-1" and e.answered_at > restarted for e in load.answered()):
            assert time.monotonic() < deadline, "haproxy sends the restarted replica nothing"
            time.sleep(0.5)
        result = load.finish()
    assert result.failed_sends() == {} and not result.unacknowledged()
    assert_nothing_lost_or_doubled(cluster, result)


def test_kill_9_of_a_replica_during_load_loses_and_doubles_no_message(cluster: Cluster) -> None:
    with BackgroundLoad(cluster.config.url) as load:
        load.wait_for_answers(8)
        os.kill(cluster.process("replica-2").pid, signal.SIGKILL)
        killed = time.monotonic()
        load.wait_until_every_conversation_is_answered_after(killed + 10)
        result = load.finish()
    # Messages the dead replica held were sent again with their ids and answered by the other;
    # one it had stored but not recorded as processed is answered from the conversation.
    assert not result.unacknowledged()
    assert {e.replica for e in result.exchanges if e.answered_at - e.seconds > killed + 10} == {"replica-1"}
    assert_nothing_lost_or_doubled(cluster, result)


def test_stop_leaves_nothing_running(cluster: Cluster) -> None:
    stopped = subprocess.run([*CLUSTER, "stop", f"--state-dir={cluster.state_dir}"], cwd=PROJECT,
                             capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 0 and "replica-1" in stopped.stdout
    assert not [process.name for process in cluster.processes if is_running(process)]
    assert port_is_free(cluster.config.port)
