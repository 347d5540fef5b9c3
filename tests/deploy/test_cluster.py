"""`make cluster` for real: two `rasa run` replicas sharing Redis behind haproxy, on loopback.

A customer reaches the chat page, the REST and the web chat channels through the load
balancer; both replicas answer, one conversation stays whole whichever replica takes a
message, and `stop` leaves nothing running. Bounded: under three minutes with a trained model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.cluster import Process, is_running, port_is_free, program_path
from tests.conftest import PROJECT

CLUSTER = [sys.executable, str(PROJECT / "deploy" / "cluster.py")]
START_SECONDS = 300  # two replicas loading TensorFlow and PyTorch: 1 to 4 minutes on two busy cores


def request(url: str, body: dict[str, Any] | None = None) -> tuple[Any, str, Any]:
    """GET, or POST `body` as JSON; returns the answer, the replica haproxy chose and the headers."""
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(sent, timeout=60) as response:
        text = response.read().decode()
        answer = json.loads(text) if response.headers.get_content_type() == "application/json" else text
        return answer, response.headers.get("X-Kefu-Replica", ""), response.headers


@pytest.fixture()
def cluster(trained_model: Path) -> Iterator[dict[str, Any]]:
    for program in ("haproxy", "redis-server"):
        if not program_path(program):
            pytest.fail(f"{program} is not installed (Debian: apt-get install {program}; make test does it)")
    # A short folder: haproxy's stats socket lives in it, and socket paths are limited to 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="kefu-cluster-"))
    env = {**os.environ, "KEFU_HANDOFF_DB": str(state / "handoffs.db"), "RASA_TELEMETRY_ENABLED": "false"}
    ports = [f"--{name}=0" for name in ("port", "replica-port", "action-port", "actions-port", "redis-port")]
    command = [*CLUSTER, "start", "--replicas=2", f"--model={trained_model}", f"--state-dir={state}",
               f"--timeout={START_SECONDS}", *ports]
    try:
        started = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True,
                                 timeout=START_SECONDS + 30)
        assert started.returncode == 0, started.stdout + started.stderr
        recorded = json.loads((state / "cluster.json").read_text())
        assert recorded["url"] in started.stdout  # the load balancer's address is printed
        yield {**recorded, "state": state, "env": env}
    finally:
        subprocess.run([*CLUSTER, "stop", f"--state-dir={state}"], cwd=PROJECT, env=env, timeout=180)
    shutil.rmtree(state)  # not reached when the start failed: its message names the logs in it


def test_two_replicas_behind_haproxy_serve_one_conversation_and_stop_cleanly(cluster: dict[str, Any]) -> None:
    url = cluster["url"]
    replicas = set()

    page, replica, _ = request(f"{url}/webhooks/webchat/")
    assert "<html" in page.lower()
    replicas.add(replica)

    replies, replica, _ = request(f"{url}/webhooks/rest/webhook", {"sender": f"rest-{uuid.uuid4().hex}",
                                                                  "message": "hi"})
    assert replies and replies[0].get("text")
    replicas.add(replica)

    sender = f"webchat-{uuid.uuid4().hex}"
    texts = ["hi", "how long does standard delivery take?", "which payment methods can I use?"]
    for text in texts:
        replies, replica, _ = request(f"{url}/webhooks/webchat/webhook",
                                      {"sender": sender, "message": text, "message_id": str(uuid.uuid4())})
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

    again = subprocess.run([*CLUSTER, "start", f"--state-dir={cluster['state']}"], cwd=PROJECT, env=cluster["env"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already running" in again.stderr

    stopped = subprocess.run([*CLUSTER, "stop", f"--state-dir={cluster['state']}"], cwd=PROJECT, env=cluster["env"],
                             capture_output=True, text=True, timeout=180)
    assert stopped.returncode == 0 and "replica-2" in stopped.stdout
    assert not [p["name"] for p in cluster["processes"] if is_running(Process(**p))]
    assert port_is_free(int(url.rsplit(":", 1)[1]))
