"""Load test: `make cluster`'s topology, one Kefu `rasa run` and one stock-config `rasa run`, side by side.

    .venv/bin/python benchmarks/load.py [--conversations 50] [--messages 20] [--rounds 3] [--replicas 2]
                                        [--workers 2] [--kefu-model models/<newest>.tar.gz] [--stock-epochs N]
                                        [--reuse-models] [--variant NAME=MODEL[@THREADS] ...]

Started together on this machine and measured in one run:
- cluster: `deploy/cluster.py start` with `--replicas` `rasa run` replicas sharing Redis (AOF)
  behind haproxy, and one action server behind haproxy, as `make cluster` starts them;
- kefu: one `rasa run` of the same model with the cluster's endpoints (Redis stores);
- kefu-workers: the same `rasa run` with `SANIC_WORKERS=--workers`: one server, one port, and
  that many worker processes, each with the model and its share of the cores' threads (Rasa
  allows it with a Redis lock store; stock's in-memory lock store cannot have it);
- kefu-NAME, for each `--variant NAME=MODEL[@THREADS]`: one `rasa run` of another Kefu model
  (or the same with THREADS PyTorch and TensorFlow threads), as kefu;
- stock: one `rasa run` of latency.py's stock config (Rasa's own pipeline and policies, same
  domain and data) with Rasa's default in-memory tracker and lock stores.
All use the cluster's action server and the project's credentials.yml (REST channel with
message ids). Each round sends each system its own `--conversations` conversations of
`--messages` messages (English and Chinese, intents, the order form, generated answers), every
conversation one message at a time, each message with a `message_id` and sent again with it after
a 5xx or a timeout (deploy/load_client.py). The systems take turns in an order that rotates each
round; the table gives medians over rounds. Afterwards every conversation is read back (Redis for
Kefu, Rasa's HTTP API for stock) and checked: its messages stored once each, in order, answered.
Results: benchmarks/results/load.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import latency  # a sibling module: the stock config, training, serving, the messages
import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # deploy/ is not an installed package

from deploy.cluster import THREAD_VARIABLES, newest_model, thread_share  # noqa: E402
from deploy.load_client import (  # noqa: E402
    LoadResult,
    LoadSettings,
    audit,
    audit_totals,
    run_conversations,
    stored_events,
)

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "load"
SYSTEMS = ("cluster", "kefu", "kefu-workers", "stock")  # and one "kefu-NAME" per --variant
# The order form: the question, then the order number the bot asks for (data/orders.yml).
FORM_TURNS = {"en": ["where is my order?", "48213"], "zh": ["我的订单到哪了", "48213"]}


def conversation_script(number: int, messages: int) -> tuple[str, list[str]]:
    """The language and the messages of conversation `number`: latency.py's questions from an
    offset of their own, with the order form somewhere in the middle."""
    language = list(latency.LANGUAGE_MESSAGES)[number % len(latency.LANGUAGE_MESSAGES)]
    texts = latency.LANGUAGE_MESSAGES[language]
    turns = [texts[(number + turn) % len(texts)] for turn in range(max(0, messages - 2))]
    at = number % (len(turns) + 1)
    return language, (turns[:at] + FORM_TURNS[language] + turns[at:])[:messages]


def scripts(prefix: str, conversations: int, messages: int) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Messages and language per sender."""
    texts, languages = {}, {}
    for number in range(conversations):
        sender = f"{prefix}-{number}"
        languages[sender], texts[sender] = conversation_script(number, messages)
    return texts, languages


def round_summary(system: str, result: LoadResult, languages: dict[str, str]) -> dict[str, Any]:
    by_language: dict[str, list[float]] = {language: [] for language in latency.LANGUAGE_MESSAGES}
    for exchange in result.exchanges:
        if exchange.acknowledged:
            by_language[languages[exchange.sender]].append(exchange.seconds)
    failed = result.failed_sends()
    errors = len(result.unacknowledged()) + result.unsent
    row = latency.summary(system, by_language, errors, result.seconds)
    return {**row, "failed_sends_5xx": sum(n for reason, n in failed.items() if reason.startswith("5")),
            "failed_sends_timeout": failed["timeout"], "failed_sends_connection": failed["connection"],
            "unacknowledged": len(result.unacknowledged()), "unsent": result.unsent,
            "load_average": round(os.getloadavg()[0], 2)}


def api_events(url: str, senders: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every event of each conversation, from a server's HTTP API (`--enable-api`)."""
    import urllib.request

    events = {}
    for sender in senders:
        with urllib.request.urlopen(f"{url}/conversations/{sender}/tracker?include_events=ALL", timeout=60) as reply:
            events[sender] = json.loads(reply.read())["events"]
    return events


def start_cluster(model: Path, replicas: int, state: Path, timeout: float) -> subprocess.Popen:
    """`deploy/cluster.py start` on free ports, in the background; it exits once all is healthy."""
    ports = [f"--{name}=0" for name in ("port", "replica-port", "action-port", "actions-port", "redis-port")]
    command = [sys.executable, str(ROOT / "deploy" / "cluster.py"), "start", f"--replicas={replicas}",
               f"--model={model}", f"--state-dir={state}", f"--timeout={timeout}", *ports]
    return subprocess.Popen(command, cwd=ROOT, env=latency.ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def stop_cluster(state: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "deploy" / "cluster.py"), "stop", f"--state-dir={state}"],
                   cwd=ROOT, env=latency.ENV, timeout=300)


@dataclass(frozen=True)
class Variant:
    """One more single Kefu process: another model, or the same with its own thread count."""

    model: Path
    threads: int | None  # PyTorch's and TensorFlow's threads; None: their defaults

    def environment(self) -> dict[str, str]:
        return {name: str(self.threads) for name in THREAD_VARIABLES} if self.threads else {}

    def label(self) -> str:
        threads = f", {self.threads} thread{'s' if self.threads > 1 else ''}" if self.threads else ""
        return f"Kefu, one `rasa run` of `{self.model.name}`{threads}"


def parse_variant(given: str) -> tuple[str, Variant]:
    """`--variant NAME=MODEL[@THREADS]`: the system's name and its variant."""
    name, _, rest = given.partition("=")
    model, _, threads = rest.partition("@")
    if not name or not Path(model).is_file() or not (threads.isdigit() or not threads):
        raise argparse.ArgumentTypeError(f"{given}: expected NAME=MODEL[@THREADS] with MODEL a trained model file")
    return f"kefu-{name}", Variant(Path(model).resolve(), int(threads) if threads else None)


def measure(args: argparse.Namespace, kefu_model: Path, stock_model: Path) -> tuple[list[dict], dict[str, dict]]:
    # A short folder: haproxy's stats socket lives in it (socket paths are limited to 108 bytes).
    state = Path(tempfile.mkdtemp(prefix="kefu-load-"))
    variants = dict(args.variant)
    systems = (*SYSTEMS[:-1], *variants, SYSTEMS[-1])
    settings = LoadSettings(deadline=args.round_seconds)
    run = uuid.uuid4().hex[:8]
    rounds: dict[str, list[dict]] = {system: [] for system in systems}
    sent: dict[str, list[LoadResult]] = {system: [] for system in systems}
    starting = start_cluster(kefu_model, args.replicas, state, args.start_seconds)
    try:
        with ExitStack() as servers:
            ports = {system: latency.free_port() for system in systems if system != "cluster"}
            # Until the cluster has written its endpoints.yml, the singles wait: they use its action server.
            while not (state / "endpoints.yml").exists():
                if starting.poll() is not None:
                    raise RuntimeError(f"the cluster did not start:\n{starting.stdout.read()}")
                time.sleep(1)
            endpoints = yaml.safe_load((state / "endpoints.yml").read_text())
            recorded = json.loads((state / "cluster.json").read_text())["processes"]
            redis_url = f"redis://127.0.0.1:{next(p['port'] for p in recorded if p['name'] == 'redis')}/0"
            stock_endpoints = WORK / "endpoints-stock.yml"
            stock_endpoints.write_text(yaml.safe_dump({"action_endpoint": endpoints["action_endpoint"]}))
            def kefu(model: Path, **environment: str) -> tuple[list[str], dict[str, str]]:
                """One Kefu `rasa run` on the cluster's Redis and action server."""
                return ([str(latency.BIN / "rasa"), "run", "--model", str(model), "--endpoints",
                         str(state / "endpoints.yml")], {**latency.ENV, "REDIS_URL": redis_url, **environment})

            commands = {
                "kefu": kefu(kefu_model),
                "kefu-workers": kefu(kefu_model, SANIC_WORKERS=str(args.workers), **thread_share(args.workers)),
                "stock": ([str(latency.BIN / "rasa"), "run", "--enable-api", "--model", str(stock_model),
                           "--endpoints", str(stock_endpoints)],
                          {k: v for k, v in latency.ENV.items() if k != "REDIS_URL"}),
                **{system: kefu(variant.model, **variant.environment()) for system, variant in variants.items()},
            }
            for system, (command, env) in commands.items():
                command += ["--credentials", str(ROOT / "credentials.yml"), "--interface", "127.0.0.1",
                            "--port", str(ports[system])]
                servers.enter_context(latency.serving(command, f"http://127.0.0.1:{ports[system]}/",
                                                      WORK / f"serve-{system}.log", env, args.start_seconds))
            output, _ = starting.communicate(timeout=args.start_seconds + 60)
            if starting.returncode != 0:
                raise RuntimeError(f"the cluster did not start:\n{output}")
            cluster_url = json.loads((state / "cluster.json").read_text())["url"]
            urls = {"cluster": cluster_url, **{system: f"http://127.0.0.1:{port}" for system, port in ports.items()}}
            webhook = {system: f"{url}/webhooks/rest/webhook" for system, url in urls.items()}

            for system in systems:  # warm-up, not counted: TensorFlow's and PyTorch's first calls
                warm, _ = scripts(f"warm-{run}-{system}", 4, 3)
                asyncio.run(run_conversations(webhook[system], warm, settings))
            for number in range(args.rounds):
                order = systems[number % len(systems):] + systems[:number % len(systems)]
                for system in order:
                    texts, languages = scripts(f"load-{run}-{system}-{number}", args.conversations, args.messages)
                    result = asyncio.run(run_conversations(webhook[system], texts, settings))
                    sent[system].append(result)
                    rounds[system].append(round_summary(system, result, languages))
                    print(json.dumps(rounds[system][-1]), flush=True)

            audits = {}
            with tempfile.TemporaryDirectory() as spool:
                for system in systems:
                    senders = [sender for result in sent[system] for sender in result.senders]
                    events = (api_events(urls[system], senders) if system == "stock"
                              else asyncio.run(stored_events(redis_url, senders, spool)))
                    audits[system] = audit_totals([a for result in sent[system] for a in audit(result, events)])
    finally:
        if starting.poll() is None:  # still starting: Ctrl-C makes it stop what it started
            starting.send_signal(signal.SIGINT)
            starting.wait(timeout=300)
        stop_cluster(state)
    shutil.rmtree(state, ignore_errors=True)
    return [median_row(system, rounds[system]) for system in systems], audits


def median_row(system: str, rounds: list[dict]) -> dict[str, Any]:
    """Medians over rounds of the rates and latencies; totals of the counts."""
    medians = ("p50_ms", "p50_en_ms", "p50_zh_ms", "p95_ms", "p99_ms", "messages_per_second")
    totals = ("messages", "errors", "failed_sends_5xx", "failed_sends_timeout", "failed_sends_connection",
              "unacknowledged", "unsent")
    row: dict[str, Any] = {"system": system, "rounds": len(rounds)}
    row |= {key: round(statistics.median(r[key] for r in rounds), 1) for key in medians
            if all(key in r for r in rounds)}
    row |= {key: sum(r[key] for r in rounds) for key in totals}
    row["messages_per_second_by_round"] = [r["messages_per_second"] for r in rounds]
    row["load_average_by_round"] = [r["load_average"] for r in rounds]
    return row


def report(command: str, args: argparse.Namespace, rows: list[dict], audits: dict[str, dict],
           meta: dict[str, Any]) -> list[str]:
    by_system = {row["system"]: row for row in rows}
    stock_rate = by_system["stock"]["messages_per_second"]
    ratios = {system: by_system[system]["messages_per_second"] / stock_rate if stock_rate else 0.0
              for system in by_system if system != "stock"}
    variants = dict(args.variant)
    singles = ("kefu", *variants)
    targets = {"cluster": 1.0} | {system: 0.9 for system in singles}
    names = {"cluster": f"Kefu, {args.replicas} replicas behind haproxy", "kefu": "Kefu, one `rasa run`",
             "kefu-workers": f"Kefu, one `rasa run` with {args.workers} Sanic workers",
             "stock": "stock config, one `rasa run`"}
    names |= {system: variant.label() for system, variant in variants.items()}
    lines = [*reproduce.lines(command), "", "# Load: the cluster against single processes", "",
             f"`benchmarks/load.py` on {meta['machine']}, {meta['date']}, commit {meta['commit']}, models "
             f"`{meta['kefu_model']}` (Kefu) and `{meta['stock_model']}` (stock). Each of {args.rounds} rounds "
             f"sends each system its own {args.conversations} "
             f"concurrent conversations × {args.messages} messages through the REST channel, every message with a "
             "`message_id` and sent again with it after a 5xx or a timeout; the systems take turns in an order that "
             "rotates each round. Rates and latencies are medians over the rounds (latency: from a message's first "
             "send to its answer), counts are totals. All servers run at once on 127.0.0.1 and share one action "
             "server (behind haproxy); the cluster's replicas and the Sanic workers get their share of the cores "
             "as TensorFlow and PyTorch threads, the single processes the defaults. "
             "1-minute load average at each round's end: "
             + "; ".join(f"{s} {by_system[s]['load_average_by_round']}" for s in by_system) + ".", "",
             "| system | messages | p50 (ms) | p50 English | p50 Chinese | p95 (ms) | p99 (ms) | messages/s "
             "| messages/s by round | 5xx sends | timeouts | unanswered |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {names[r['system']]} | {r['messages']} | {r['p50_ms']} | {r.get('p50_en_ms')} | {r.get('p50_zh_ms')} "
              f"| {r['p95_ms']} | {r['p99_ms']} | {r['messages_per_second']} | {r['messages_per_second_by_round']} "
              f"| {r['failed_sends_5xx']} | {r['failed_sends_timeout']} | {r['unacknowledged'] + r['unsent']} |"
              for r in rows]
    lines += ["", "Every conversation read back afterwards (Redis for Kefu, the HTTP API for stock): a message "
              "lost is one answered but not stored; duplicated, stored twice; unanswered, stored with no bot reply "
              "before the next message.", "",
              "| system | conversations | messages answered | stored | lost | duplicated | conversations out of order "
              "| stored unanswered |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {names[s]} | {a['conversations']} | {a['acknowledged']} | {a['stored']} | {a['lost']} "
              f"| {a['duplicated']} | {a['out_of_order']} | {a['unanswered']} |" for s, a in audits.items()]
    lines += ["", "Targets (messages/s against the stock process's, same load, same run):", ""]
    lines += [f"- {names[s]}: {ratios[s]:.2f}× stock (target ≥ {targets[s]:.1f}×: "
              f"{'met' if ratios[s] >= targets[s] else 'not met'}), p99 {by_system[s]['p99_ms']:.0f} ms"
              for s in ("cluster", *singles)]
    lines += [f"- {names['kefu-workers']}: {ratios['kefu-workers']:.2f}× stock, p99 "
              f"{by_system['kefu-workers']['p99_ms']:.0f} ms (one port, but {args.workers} processes: not held to "
              "the single process's target)"]
    lines += [f"- stock: p99 {by_system['stock']['p99_ms']:.0f} ms"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="per conversation")
    parser.add_argument("--rounds", type=int, default=3, help="turns each system's load is measured in")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="SANIC_WORKERS of the kefu-workers server")
    parser.add_argument("--variant", action="append", default=[], type=parse_variant, metavar="NAME=MODEL[@THREADS]",
                        help="also load one `rasa run` of another Kefu model (another config), as system kefu-NAME; "
                             "@THREADS gives it that many PyTorch and TensorFlow threads")
    parser.add_argument("--kefu-model", type=Path, help="default: the newest models/*.tar.gz, as make cluster")
    parser.add_argument("--reuse-models", action="store_true", help="serve the stock model a previous run trained")
    parser.add_argument("--stock-epochs", type=int, help="train the stock config's DIET and TED this many epochs "
                        "instead of its own (the same networks, so the same cost per message; quicker to train)")
    parser.add_argument("--round-seconds", type=float, default=900, help="bound on one system's turn")
    parser.add_argument("--start-seconds", type=float, default=900, help="bound on the servers' start")
    args = parser.parse_args()
    command = reproduce.command(__file__)

    WORK.mkdir(parents=True, exist_ok=True)
    latency.WORK.mkdir(parents=True, exist_ok=True)
    kefu_model = (args.kefu_model or newest_model()).resolve()
    stock = latency.stock_config(yaml.safe_load((ROOT / "config.yml").read_text()))
    name = "stock"
    if args.stock_epochs:  # what a message costs does not depend on how long the model trained
        for step in [*stock["pipeline"], *stock["policies"]]:
            if "epochs" in step:
                step["epochs"] = args.stock_epochs
        name = f"stock-{args.stock_epochs}-epochs"
    stock_path = latency.WORK / f"config-{name}.yml"
    stock_path.write_text(yaml.safe_dump(stock, sort_keys=False))
    stock_model = latency.train(stock_path, name, args.reuse_models)
    rows, audits = measure(args, kefu_model, stock_model)
    commit = reproduce.commit()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "kefu_model": kefu_model.name,
            "conversations": args.conversations, "messages": args.messages, "rounds": args.rounds,
            "replicas": args.replicas, "workers": args.workers,
            "variants": {system: variant.label() for system, variant in args.variant},
            "stock_model": stock_model.name}
    lines = report(command, args, rows, audits, meta)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.md").write_text("\n".join(lines) + "\n")
    document = {"command": command, "meta": meta, "results": rows, "audits": audits}
    (RESULTS / "load.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
