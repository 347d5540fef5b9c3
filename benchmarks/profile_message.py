"""Where a message's time goes: Kefu's model against the stock config's, node by node.

    .venv/bin/python benchmarks/profile_message.py [--kefu-model models/<newest>.tar.gz]
        [--stock-model benchmarks/work/latency/stock.tar.gz] [--conversations 20] [--messages 10] [--blocks 4]
        [--torch-threads 1 2] [--choice-off]

Both models are loaded in this one process (`Agent.load`, the project's action server on a free
port, Rasa's in-memory tracker store) and answer the same conversations (latency.py's questions,
English and Chinese), one message at a time, taking turns in `--blocks` blocks so both see the
same minutes of this machine. With `--torch-threads`, Kefu answers once per thread count
(torch.set_num_threads before each of its blocks; PyTorch's default of one per core
otherwise). With `--choice-off`, Kefu's model answers a second time with its answer choice
switched off after loading (the generator then answers only what no rule answers), so the
choice's cost is the difference. Every node of Rasa's graph (tokenizer, featurizers, DIET, each policy, the
ensemble) is timed as it runs; the rest of a message's time is Rasa's processor
(tracker updates, running actions, the action server's HTTP round trip, events). Results:
benchmarks/results/profile_message.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import latency  # a sibling module: the questions, the action server
import reproduce  # a sibling module
import yaml
from answers import switch_off_answer_choice  # a sibling module

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROCESSOR = "Rasa's processor (tracker, actions, events)"
CALLS = "calls:"  # a row's key for how often a node ran for the message


class NodeTimer:
    """Seconds per graph node while a message is handled; nodes run one at a time in Rasa 3.6."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)

    @contextmanager
    def installed(self) -> Iterator[None]:
        from rasa.engine.graph import GraphNode

        original = GraphNode.__call__
        timer = self

        def timed(node: GraphNode, *inputs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(node, *inputs)
            finally:
                timer.seconds[node_label(node._node_name)] += time.perf_counter() - started
                timer.calls[node_label(node._node_name)] += 1

        GraphNode.__call__ = timed
        try:
            yield
        finally:
            GraphNode.__call__ = original


def node_label(name: str) -> str:
    """`run_components.featurizers.PretrainedEncoderFeaturizer4` -> `PretrainedEncoderFeaturizer`."""
    name = re.sub(r"^(run|provide)_", "", name)
    return re.sub(r"\d+$", "", name.rsplit(".", 1)[-1])


async def profile_block(agent: Any, timer: NodeTimer, prefix: str, conversations: int,
                        messages: int) -> list[dict[str, float]]:
    """One dict of seconds per node (and the processor's rest) per message."""
    rows = []
    for number in range(conversations):
        language = list(latency.LANGUAGE_MESSAGES)[number % len(latency.LANGUAGE_MESSAGES)]
        texts = latency.LANGUAGE_MESSAGES[language]
        for turn in range(messages):
            timer.seconds.clear()
            timer.calls.clear()
            started = time.perf_counter()
            await agent.handle_text(texts[(number + turn) % len(texts)], sender_id=f"{prefix}-{number}")
            total = time.perf_counter() - started
            row = dict(timer.seconds)
            row[PROCESSOR] = total - sum(row.values())
            row["total"] = total
            row |= {f"{CALLS}{name}": calls for name, calls in timer.calls.items()}
            rows.append(row)
    return rows


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per node: mean ms per message and share of the mean total; the total's median and p95 too."""
    names = {name for row in rows for name in row if not name.startswith(CALLS)}
    means = {name: 1000 * statistics.fmean(row.get(name, 0.0) for row in rows) for name in names}
    totals = sorted(1000 * row["total"] for row in rows)
    summary = {name: {"mean_ms": round(ms, 2), "share": round(ms / means["total"], 4),
                      "calls_per_message": round(statistics.fmean(row.get(CALLS + name, 0) for row in rows), 2)}
               for name, ms in sorted(means.items(), key=lambda item: -item[1])}
    summary["total"] |= {"median_ms": round(statistics.median(totals), 1),
                         "p95_ms": round(totals[int(0.95 * (len(totals) - 1))], 1)}
    return summary


CHOICE_OFF = "kefu, answer choice off"


def systems(torch_threads: list[int], choice_off: bool = False) -> dict[str, tuple[str, int | None]]:
    """Each profiled system: its model's name and the PyTorch threads it answers with (None: as loaded)."""
    kefu = {f"kefu, {n} torch thread{'s' if n > 1 else ''}": ("kefu", n) for n in torch_threads}
    off = {CHOICE_OFF: (CHOICE_OFF, None)} if choice_off else {}
    return {**(kefu or {"kefu": ("kefu", None)}), **off, "stock": ("stock", None)}


def measure(models: dict[str, Path], endpoints: Path, args: argparse.Namespace) -> dict[str, dict]:
    import torch
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    action_url = yaml.safe_load(endpoints.read_text())["action_endpoint"]["url"]
    timer = NodeTimer()
    profiled = systems(args.torch_threads, args.choice_off)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in profiled}

    async def run() -> None:
        agents = {name: Agent.load(str(path), action_endpoint=EndpointConfig(action_url))
                  for name, path in models.items()}
        if args.choice_off:
            agents[CHOICE_OFF] = Agent.load(str(models["kefu"]), action_endpoint=EndpointConfig(action_url))
            switch_off_answer_choice(agents[CHOICE_OFF])
        with timer.installed():
            for name, agent in agents.items():  # warm-up: TensorFlow's and PyTorch's first calls
                await profile_block(agent, timer, f"warm-{name}", 2, 3)
            loaded_threads = torch.get_num_threads()
            for block in range(args.blocks):
                order = list(profiled) if block % 2 == 0 else list(reversed(profiled))
                for name in order:
                    model, threads = profiled[name]
                    torch.set_num_threads(threads or loaded_threads)
                    rows[name] += await profile_block(agents[model], timer, f"{name}-{block}",
                                                      args.conversations // args.blocks or 1, args.messages)

    asyncio.run(run())
    return {name: summarise(found) for name, found in rows.items()}


def report(command: str, summaries: dict[str, dict], meta: dict[str, Any]) -> list[str]:
    lines = [*reproduce.lines(command), "", "# Where a message's time goes", "",
             f"`benchmarks/profile_message.py` on {meta['machine']}, {meta['date']}, commit {meta['commit']}; "
             f"models {', '.join(f'{name} `{path}`' for name, path in meta['models'].items())}. One process, "
             f"the systems taking turns in blocks, {meta['messages']} messages each, one at a time (no queueing). "
             "Mean ms per message of each graph node (NLU components, policies, the ensemble) and of Rasa's "
             "processor (the rest: tracker, actions, the action server's HTTP round trip).", ""]
    for name, summary in summaries.items():
        total = summary["total"]
        lines += [f"## {name}: {total['mean_ms']} ms mean, {total['median_ms']} ms median, "
                  f"{total['p95_ms']} ms p95 per message", "",
                  "| part | ms per message | share | runs per message |", "|---|---|---|---|"]
        lines += [f"| {part} | {values['mean_ms']} | {100 * values['share']:.1f}% | {values['calls_per_message']} |"
                  for part, values in summary.items() if part != "total"]
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kefu-model", type=Path, help="default: the newest models/*.tar.gz")
    parser.add_argument("--stock-model", type=Path, default=latency.WORK / "stock.tar.gz",
                        help="latency.py's stock config, trained (latency.py --reuse-models keeps it)")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10, help="per conversation")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--torch-threads", type=int, nargs="*", default=[],
                        help="profile Kefu once per PyTorch thread count, taking turns with stock")
    parser.add_argument("--choice-off", action="store_true",
                        help="also profile Kefu's model with its answer choice switched off")
    args = parser.parse_args()
    kefu = args.kefu_model or max(ROOT.glob("models/*.tar.gz"), key=lambda p: p.stat().st_mtime, default=None)
    for path in (kefu, args.stock_model):
        if path is None or not Path(path).is_file():
            sys.exit(f"no model at {path}: train one (make train; benchmarks/latency.py for the stock config)")
    models = {"kefu": Path(kefu), "stock": args.stock_model}
    with latency.action_server(latency.WORK / "profile-actions.log") as endpoints:
        summaries = measure(models, endpoints, args)
    commit = reproduce.commit()
    meta = {"machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit,
            "models": {name: str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT)
                       else str(path) for name, path in models.items()},
            "messages": len(range(args.blocks)) * (args.conversations // args.blocks or 1) * args.messages}
    lines = report(reproduce.command(__file__), summaries, meta)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile_message.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "profile_message.json").write_text(json.dumps({"meta": meta, "summaries": summaries}, indent=2),
                                                  encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
