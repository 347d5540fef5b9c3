"""Rasa's stock RedisTrackerStore against Kefu's, in one run against the same redis-server.

    .venv/bin/python benchmarks/tracker_store.py      # about a minute

For conversations of 10, 100 and 1,000 events, one turn (a user message, an action, a bot
message, action_listen) is added and saved, `REPEATS` times on separate conversations, and
the median is reported:
- save: the `save` call alone, on the tracker the store handed out;
- turn: `retrieve` then `save`, as Rasa's processor does per message. Kefu's is measured
  cold (a store that has not seen the conversation, like another server process: it
  replays the events) and warm (the process that handled the last message: its cache
  is current, checked against the counter in Redis).
Results: benchmarks/results/tracker_store.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
from rasa.core.tracker_store import RedisTrackerStore as StockRedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.stores import RedisTrackerStore  # noqa: E402 - after the path is set
from tests.conftest import RedisServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LENGTHS = (10, 100, 1000)
REPEATS = 21
DOMAIN = Domain.from_yaml("version: '3.1'\nintents: [ask]\nresponses:\n  utter_answer: [{text: an answer}]\n")


def turn(number: int) -> list[Event]:
    return [UserUttered(f"question number {number} about my order", {"name": "ask", "confidence": 0.97}),
            ActionExecuted("utter_answer", policy="RulePolicy", confidence=1.0),
            BotUttered(f"answer number {number}", {"elements": None}, {"utter_action": "utter_answer"}),
            ActionExecuted("action_listen")]


def conversation(sender: str, length: int) -> list[Event]:
    events: list[Event] = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    number = 0
    while len(events) < length:
        events += turn(number)
        number += 1
    return events[:length]


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def measure(store_factory, length: int, label: str) -> dict[str, float]:  # noqa: ANN001 - () -> store
    """Median save and turn times for one store kind at one conversation length."""
    writer = store_factory()
    senders = [f"{label}-{length}-{n}" for n in range(REPEATS)]
    for sender in senders:
        await writer.save(DialogueStateTracker.from_events(sender, conversation(sender, length), DOMAIN.slots))
    save, cold, warm = [], [], []
    for sender in senders:
        reader = store_factory()  # has never seen this conversation
        started = time.perf_counter()
        tracker = await reader.retrieve(sender)
        tracker.update_with_events(turn(10_000), DOMAIN)
        saving = time.perf_counter()
        await reader.save(tracker)
        done = time.perf_counter()
        save.append(done - saving)
        cold.append(done - started)
        started = time.perf_counter()  # the next message of the conversation, same process
        tracker = await reader.retrieve(sender)
        tracker.update_with_events(turn(10_001), DOMAIN)
        await reader.save(tracker)
        warm.append(time.perf_counter() - started)
    return {"save_ms": median_ms(save), "turn_cold_ms": median_ms(cold), "turn_warm_ms": median_ms(warm)}


async def run(url: str, port: int) -> dict[str, dict[str, dict[str, float]]]:
    stores = {
        "stock": lambda: StockRedisTrackerStore(DOMAIN, host="127.0.0.1", port=port, db=0, key_prefix="stock"),
        "kefu": lambda: RedisTrackerStore(DOMAIN, url=url, key_prefix="kefu", spool_dir=tempfile.mkdtemp()),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, factory in stores.items():
        results[name] = {str(length): await measure(factory, length, name) for length in LENGTHS}
    return results


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options; --help is safe
    command = reproduce.command(__file__)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder))
        server.start()
        try:
            results = asyncio.run(run(server.url, server.port))
        finally:
            server.stop()
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    version = version.removeprefix("v=")
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit, "repeats": REPEATS,
            "redis": version, "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                         f"Python {platform.python_version()}"}
    lines = [*reproduce.lines(command, "needs `redis-server` on the PATH"), "",
             "# Tracker stores: Rasa's RedisTrackerStore against Kefu's", "",
             f"`benchmarks/tracker_store.py` on {meta['machine']}, Redis {version} (local, AOF fsynced on "
             f"every write), {meta['date']}, commit {commit}. Median of {REPEATS} conversations per length; one "
             "turn adds 4 events. \"Cold\": the store has not seen the conversation (another server process); "
             "\"warm\": the process that handled its last message.", "",
             "| events | save, stock (ms) | save, Kefu (ms) | save speed-up | turn, stock (ms) | turn, Kefu cold (ms) "
             "| turn, Kefu warm (ms) | turn speed-up cold / warm |", "|---|---|---|---|---|---|---|---|"]
    for length in map(str, LENGTHS):
        stock, kefu = results["stock"][length], results["kefu"][length]
        cold, warm = stock["turn_cold_ms"] / kefu["turn_cold_ms"], stock["turn_cold_ms"] / kefu["turn_warm_ms"]
        lines.append(
            f"| {length} | {stock['save_ms']} | {kefu['save_ms']} | {stock['save_ms'] / kefu['save_ms']:.1f}x | "
            f"{stock['turn_cold_ms']} | {kefu['turn_cold_ms']} | {kefu['turn_warm_ms']} | "
            f"{cold:.1f}x / {warm:.1f}x |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tracker_store.md").write_text("\n".join(lines) + "\n")
    document = {"command": command, "meta": meta, "results": results}
    (RESULTS / "tracker_store.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
