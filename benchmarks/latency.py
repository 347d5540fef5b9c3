"""REST latency of the assistant: Kefu's config against the stock config, same data.

    .venv/bin/python benchmarks/latency.py [--kefu-config config.yml] [--messages 300] [--conversations 10]
                                           [--blocks 6] [--reuse-models]

Each config is trained with `rasa train` (Rasa's cache makes a rerun quick), served with
`rasa run --enable-api` next to one action server, and sent the same messages through the
REST channel from concurrent conversations, each conversation one message at a time, as
customers do. Both servers run at once and the load alternates between them in blocks. The
stock config is Kefu's with every `components.*` entry left out. Results:
benchmarks/results/latency.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "latency"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}

# What customers ask, written for this benchmark; the conversations cycle through them.
MESSAGES = [
    "hi", "where is my order 12345?", "how long does delivery take?", "do you ship to canada?",
    "can I return a jacket I bought last week?", "when will I get my refund?", "what payment methods do you take?",
    "my payment was declined", "I forgot my password", "is the blue sweater back in stock?",
    "the parcel arrived damaged", "can I change my delivery address?", "I want to cancel my order",
    # (no hand-off request: it pauses the bot for the rest of the conversation)
    "how much is express shipping?", "thanks!", "are you a bot?",
    "order 48213 status please", "do you accept paypal?", "bye",
    # questions only the corpus covers, which Kefu's generator answers
    "could you gift wrap it?", "is there a size chart?", "my promo code is rejected", "how do I delete my account?",
]
# The same kinds of question in Chinese; odd-numbered conversations ask these.
MESSAGES_ZH = [
    "你好", "我的订单 12345 到哪了？", "配送要几天？", "能寄到加拿大吗？", "上周买的外套能退吗？", "退款什么时候到账？",
    "你们支持哪些付款方式？", "付款被拒了", "我忘记密码了", "蓝色毛衣补货了吗？", "包裹到的时候是坏的",
    "可以改收货地址吗？", "我要取消订单", "加急运费多少钱？", "谢谢！", "你是机器人吗？", "查一下订单 48213",
    "可以用 PayPal 吗？", "再见", "可以帮我包装成礼物吗？", "有尺码表吗？", "优惠码用不了", "怎么注销账号？",
]
LANGUAGE_MESSAGES = {"en": MESSAGES, "zh": MESSAGES_ZH}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stock_config(config: dict) -> dict:
    """The same config without Kefu's components (Rasa's WhitespaceTokenizer for Kefu's tokenizer)."""
    keep = [{"name": "WhitespaceTokenizer"} if step["name"] == "components.tokenizers.MixedTokenizer" else step
            for step in config.get("pipeline", [])]
    keep = [step for step in keep if not step["name"].startswith("components.")]
    policies = [step for step in config.get("policies", []) if not step["name"].startswith("components.")]
    return {**config, "pipeline": keep, "policies": policies}


def train(config: Path, name: str, reuse: bool) -> Path:
    if reuse and (WORK / f"{name}.tar.gz").exists():
        return WORK / f"{name}.tar.gz"
    with (WORK / f"train-{name}.log").open("w") as log:
        subprocess.run([str(BIN / "rasa"), "train", "--config", str(config), "--out", str(WORK),
                        "--fixed-model-name", name], cwd=ROOT, stdout=log, stderr=log, env=ENV, check=True)
    return WORK / f"{name}.tar.gz"


def wait_for(url: str, process: subprocess.Popen, seconds: float = 600) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@contextmanager
def serving(command: list[str], health: str, log: Path, env: dict[str, str] | None = None,
            seconds: float = 600) -> Iterator[None]:
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=handle, env=env or ENV)
        try:
            wait_for(health, process, seconds)
            yield
        finally:
            process.terminate()
            process.wait(timeout=60)


@contextmanager
def action_server(log: Path) -> Iterator[Path]:
    """The project's action server on a free port; yields an endpoints.yml that points at it."""
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        endpoints = Path(scratch) / "endpoints.yml"
        endpoints.write_text(yaml.safe_dump({"action_endpoint": {"url": f"http://127.0.0.1:{port}/webhook"}}))
        actions = [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)]
        with serving(actions, f"http://127.0.0.1:{port}/health", log):
            yield endpoints


async def send_all(url: str, conversations: int, messages: int) -> tuple[dict[str, list[float]], int, float]:
    """Latencies per language: even-numbered conversations write English, odd ones Chinese."""
    import aiohttp

    latencies: dict[str, list[float]] = {language: [] for language in LANGUAGE_MESSAGES}
    errors = 0
    per_conversation = messages // conversations

    async def conversation(session: aiohttp.ClientSession, index: int) -> None:
        nonlocal errors
        language = list(LANGUAGE_MESSAGES)[index % len(LANGUAGE_MESSAGES)]
        for turn in range(per_conversation):
            texts = LANGUAGE_MESSAGES[language]
            text = texts[(index + turn) % len(texts)]
            start = time.perf_counter()
            try:
                async with session.post(url, json={"sender": f"load-{index}", "message": text}) as response:
                    replies = await response.json()
                    if response.status != 200 or not replies:
                        errors += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                errors += 1
            latencies[language].append(time.perf_counter() - start)

    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(conversation(session, i) for i in range(conversations)))
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(name: str, by_language: dict[str, list[float]], errors: int, seconds: float) -> dict:
    latencies = [value for values in by_language.values() for value in values]
    return {"config": name, "messages": len(latencies), "errors": errors,
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            **{f"p50_{language}_ms": round(1000 * statistics.median(values), 1)
               for language, values in by_language.items() if values},
            "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
            "messages_per_second": round(len(latencies) / seconds, 1)}


def measure(models: dict[str, Path], endpoints: Path, args: argparse.Namespace) -> list[dict]:
    """Both servers up at once, loaded in turns: this machine's speed drifts over minutes, so
    each config gets `blocks` slices of the messages, alternating, instead of one long run."""
    ports = {name: free_port() for name in models}
    urls = {name: f"http://127.0.0.1:{port}/webhooks/rest/webhook" for name, port in ports.items()}
    with ExitStack() as servers:
        for name, model in models.items():
            command = [str(BIN / "rasa"), "run", "--enable-api", "--model", str(model), "--port", str(ports[name]),
                       "--endpoints", str(endpoints), "--credentials", str(ROOT / "credentials.yml")]
            servers.enter_context(serving(command, f"http://127.0.0.1:{ports[name]}/status",
                                          WORK / f"serve-{name}.log"))
        for url in urls.values():
            asyncio.run(send_all(url, 2, 10))  # warm-up, not counted
        totals = {name: ({language: [] for language in LANGUAGE_MESSAGES}, 0, 0.0) for name in models}
        order = list(models)
        for block in range(args.blocks):
            for name in order if block % 2 == 0 else order[::-1]:
                latencies, errors, seconds = asyncio.run(
                    send_all(urls[name], args.conversations, args.messages // args.blocks))
                kept = totals[name]
                totals[name] = ({language: kept[0][language] + latencies[language] for language in kept[0]},
                                kept[1] + errors, kept[2] + seconds)
    return [summary(name, *totals[name]) for name in models]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kefu-config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=6, help="turns each config's load is split into")
    parser.add_argument("--reuse-models", action="store_true", help="serve the models a previous run trained")
    args = parser.parse_args()
    command = reproduce.command(__file__)

    WORK.mkdir(parents=True, exist_ok=True)
    kefu = yaml.safe_load(args.kefu_config.read_text())
    stock_path = WORK / "config-stock.yml"
    stock_path.write_text(yaml.safe_dump(stock_config(kefu), sort_keys=False))
    models = {"kefu": train(args.kefu_config, "kefu", args.reuse_models),
              "stock": train(stock_path, "stock", args.reuse_models)}
    with action_server(WORK / "actions.log") as endpoints:
        rows = measure(models, endpoints, args)
    commit = reproduce.commit()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "conversations": args.conversations,
            "blocks": args.blocks}
    ratio = rows[0]["p50_ms"] / rows[1]["p50_ms"]
    lines = [*reproduce.lines(command), "", "# REST latency", "",
             f"`benchmarks/latency.py` on {meta['machine']}, {meta['date']}, commit {commit}: {args.messages} "
             f"messages per config through the REST channel from {args.conversations} concurrent conversations "
             "(each one message at a time), after a warm-up; in-memory tracker store, one action server. Both "
             f"servers run at once and take turns in {args.blocks} blocks, so both see the same minutes of "
             "this machine.", "",
             "Half the conversations write English, half Chinese (`MESSAGES`, `MESSAGES_ZH`); the stock config "
             "tokenises both with WhitespaceTokenizer.", "",
             "| config | messages | errors | p50 (ms) | p50 English | p50 Chinese | p95 (ms) | p99 (ms) | messages/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['messages']} | {r['errors']} | {r['p50_ms']} | {r.get('p50_en_ms')} "
              f"| {r.get('p50_zh_ms')} | {r['p95_ms']} | {r['p99_ms']} | {r['messages_per_second']} |" for r in rows]
    lines += ["", f"Kefu's p50 is {ratio:.2f}x the stock bot's."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency.md").write_text("\n".join(lines) + "\n")
    document = {"command": command, "meta": meta, "results": rows}
    (RESULTS / "latency.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
