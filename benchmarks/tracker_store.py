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
Kefu's store is also run with encryption at rest on (a Fernet key, as `KEFU_ENCRYPTION_KEY`
sets it); the target is an encrypted save within 1.5x of a plain one at 1,000 events.
Results: benchmarks/results/tracker_store.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
from cryptography.fernet import Fernet
from rasa.core.tracker_store import RedisTrackerStore as StockRedisTrackerStore
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.stores import RedisTrackerStore  # noqa: E402 - after the path is set
from components.stores.encryption import Cipher  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LENGTHS = (10, 100, 1000)
REPEATS = 41  # 21 was too few once other jobs share the two cores: medians then swing by a third
ENCRYPTED_SAVE_TARGET = 1.5  # encrypted save / plain save at 1,000 events, at most
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


async def measure(factories: dict[str, Callable[[], TrackerStore]], length: int) -> dict[str, dict[str, float]]:
    """Median save and turn times per store kind at one conversation length. Given several kinds,
    the conversations take turns between them, so the machine's drift touches them alike."""
    for name, factory in factories.items():
        writer = factory()
        for n in range(REPEATS):
            sender = f"{name}-{length}-{n}"
            await writer.save(DialogueStateTracker.from_events(sender, conversation(sender, length), DOMAIN.slots))
    samples: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in factories}
    for n in range(REPEATS):
        for name in list(factories)[:: 1 if n % 2 == 0 else -1]:
            sender, times = f"{name}-{length}-{n}", samples[name]
            reader = factories[name]()  # has never seen this conversation
            started = time.perf_counter()
            tracker = await reader.retrieve(sender)
            tracker.update_with_events(turn(10_000), DOMAIN)
            saving = time.perf_counter()
            await reader.save(tracker)
            done = time.perf_counter()
            times["save_ms"].append(done - saving)
            times["turn_cold_ms"].append(done - started)
            started = time.perf_counter()  # the next message of the conversation, same process
            tracker = await reader.retrieve(sender)
            tracker.update_with_events(turn(10_001), DOMAIN)
            await reader.save(tracker)
            times["turn_warm_ms"].append(time.perf_counter() - started)
    return {name: {metric: median_ms(values) for metric, values in times.items()} for name, times in samples.items()}


async def run(url: str, port: int) -> dict[str, dict[str, dict[str, float]]]:
    key = Fernet.generate_key().decode()
    stock = {"stock": lambda: StockRedisTrackerStore(DOMAIN, host="127.0.0.1", port=port, db=0, key_prefix="stock")}
    kefu = {
        # Cipher(): plain, whatever KEFU_ENCRYPTION_KEY says in this shell
        "kefu": lambda: RedisTrackerStore(DOMAIN, url=url, key_prefix="kefu", spool_dir=tempfile.mkdtemp(),
                                          cipher=Cipher()),
        "kefu_encrypted": lambda: RedisTrackerStore(DOMAIN, url=url, key_prefix="kefu-encrypted",
                                                    spool_dir=tempfile.mkdtemp(), cipher=Cipher([key])),
    }
    results: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for stores in (stock, kefu):  # one after the other; Kefu's plain and encrypted stores take turns
        for length in LENGTHS:
            for name, figures in (await measure(stores, length)).items():
                results[name][str(length)] = figures
    return dict(results)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options; --help is safe
    command = reproduce.command(__file__)
    commit = reproduce.commit()
    load_before = os.getloadavg()[0]  # other jobs on the machine slow every figure
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
            "redis": version, "cryptography": importlib.metadata.version("cryptography"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    lines = [*reproduce.lines(command, "needs `redis-server` on the PATH"), "",
             "# Tracker stores: Rasa's RedisTrackerStore against Kefu's", "",
             f"`benchmarks/tracker_store.py` on {meta['machine']}, Redis {version} (local, AOF fsynced on "
             f"every write), {meta['date']}, commit {commit}, 1-minute load average {meta['load_average'][0]} "
             f"before and {meta['load_average'][1]} after. Median of {REPEATS} conversations per length; one "
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
    ratio = {length: results["kefu_encrypted"][length]["save_ms"] / results["kefu"][length]["save_ms"]
             for length in map(str, LENGTHS)}
    met = "met" if ratio[str(LENGTHS[-1])] <= ENCRYPTED_SAVE_TARGET else "NOT met"
    lines += ["", "## Encryption at rest", "",
              f"Kefu's store with a key set: Fernet (AES-128-CBC, HMAC-SHA256; cryptography "
              f"{meta['cryptography']}), one token per event, so a save encrypts only the turn's 4 new events and a "
              f"cold turn decrypts the session's events. The plain and encrypted stores take turns, conversation by "
              f"conversation, so the machine's drift touches both alike. Target: an encrypted save within "
              f"{ENCRYPTED_SAVE_TARGET}x of a plain one at {LENGTHS[-1]:,} events: {met} "
              f"({ratio[str(LENGTHS[-1])]:.2f}x).", "",
              "| events | save, plain (ms) | save, encrypted (ms) | encrypted / plain | turn cold, plain (ms) "
              "| turn cold, encrypted (ms) | turn warm, plain (ms) | turn warm, encrypted (ms) |",
              "|---|---|---|---|---|---|---|---|"]
    for length in map(str, LENGTHS):
        plain, encrypted = results["kefu"][length], results["kefu_encrypted"][length]
        lines.append(f"| {length} | {plain['save_ms']} | {encrypted['save_ms']} | {ratio[length]:.2f}x | "
                     f"{plain['turn_cold_ms']} | {encrypted['turn_cold_ms']} | {plain['turn_warm_ms']} | "
                     f"{encrypted['turn_warm_ms']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tracker_store.md").write_text("\n".join(lines) + "\n")
    document = {"command": command, "meta": meta, "results": results}
    (RESULTS / "tracker_store.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
