"""How long `Agent.load` takes with Rasa's own TensorFlow model load and with Kefu's quick load
(components/tf_loading.py), and whether the two loaded assistants answer alike.

Each round loads the model once each way, in a new process each time, the two taking turns;
the table gives the medians. The first load each way then answers every dev-set question
(benchmarks/data/dev_*.yml) in a conversation of its own, without an action server, and the
benchmark compares the actions, the policies, their confidences and the intent rankings, and
every weight of each loaded TensorFlow model (a model that failed to load counts as different).

    .venv/bin/python benchmarks/model_load.py --model benchmarks/work/answers/full.tar.gz [--rounds 3]

Results: benchmarks/results/model_load.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parents[1]
LOADS = ("rasa", "kefu")


def dev_questions() -> list[str]:
    texts = []
    for path in sorted((ROOT / "benchmarks" / "data").glob("dev_*.yml")):
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
        texts += [row if isinstance(row, str) else row["text"] for row in rows]
    return texts


def _rounded(confidence: float | None) -> float | None:
    return None if confidence is None else round(confidence, 9)


def child(model: str, load: str, answer: bool, out: Path) -> None:
    """One load in this process; with `answer`, also every dev question's events."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    sys.path.insert(0, str(ROOT))
    from rasa.core.agent import Agent
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.shared.core.trackers import EventVerbosity
    from rasa.utils.tensorflow.models import RasaModel

    import components.extractors  # noqa: F401 - each package installs the quick load
    import components.featurizers  # noqa: F401
    import components.policies  # noqa: F401
    import components.tokenizers  # noqa: F401
    from components import tf_loading
    from components.loaded_components import loaded_components

    if load == "rasa":
        RasaModel.load = classmethod(tf_loading.RASA_LOAD)
    started = time.perf_counter()
    agent = Agent.load(model)
    seconds = time.perf_counter() - started
    weights = {}  # each TensorFlow model's variables, hashed; None where its component has no model
    for name, component in loaded_components(agent.processor, DIETClassifier, TEDPolicy).items():
        variables = component.model.variables if component.model is not None else None
        weights[name] = None if variables is None else {
            variable.name: hashlib.sha1(variable.numpy().tobytes()).hexdigest() for variable in variables}

    async def events_of(index: int, text: str) -> list:
        await agent.handle_text(text, sender_id=f"load-{index}")
        tracker = await agent.tracker_store.retrieve(f"load-{index}")
        events = tracker.current_state(EventVerbosity.ALL)["events"]
        # confidences to 9 places: the intent ranking's last bits vary from process to process
        # (about 1e-16), which is no difference in the answer
        return [[event["event"], event.get("name"), event.get("policy"), _rounded(event.get("confidence")),
                 [{**intent, "confidence": _rounded(intent["confidence"])}
                  for intent in (event.get("parse_data") or {}).get("intent_ranking") or []]]
                for event in events if event["event"] in ("user", "action")]

    async def answer_all() -> list:
        return [await events_of(index, text) for index, text in enumerate(dev_questions())]

    out.write_text(json.dumps({"seconds": seconds, "weights": weights,
                               "events": asyncio.run(answer_all()) if answer else None}))


def load_once(model: Path, load: str, answer: bool) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "load.json"
        command = [sys.executable, __file__, "--model", str(model), "--child", load, "--out", str(out)]
        subprocess.run(command + (["--answer"] if answer else []), check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model, e.g. config.yml's")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=LOADS, help=argparse.SUPPRESS)
    parser.add_argument("--answer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(str(args.model), args.child, args.answer, args.out)
        return
    if not args.model.exists():
        parser.error(f"{args.model} does not exist")
    command = reproduce.command(__file__)
    seconds: dict[str, list[float]] = {load: [] for load in LOADS}
    events: dict[str, list] = {}
    weights: dict[str, list] = {load: [] for load in LOADS}
    for round_ in range(args.rounds):
        for load in LOADS if round_ % 2 == 0 else LOADS[::-1]:
            result = load_once(args.model, load, answer=round_ == 0)
            seconds[load].append(result["seconds"])
            events.setdefault(load, result["events"])
            weights[load].append(result["weights"])
            print(f"round {round_ + 1}: {load}'s load {result['seconds']:.1f} s", flush=True)
    same = sum(a == b for a, b in zip(*events.values(), strict=True))
    reference = weights["rasa"][0]
    same_weights = sum(loaded == reference for runs in weights.values() for loaded in runs)
    described = ", ".join(f"{name.removeprefix('run_')}: {len(variables or {})} variables"
                          for name, variables in reference.items())
    rows = [{"load": load, "median_s": statistics.median(times), "runs_s": [round(t, 1) for t in times]}
            for load, times in seconds.items()]
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# Loading the trained assistant", "",
             f"{date}, commit {commit}, model {args.model.name}, {args.rounds} rounds, each load in a new process, "
             "the two taking turns.", "",
             "| TensorFlow models' load | `Agent.load` median (s) | runs (s) |", "|---|---|---|"]
    lines += [f"| {row['load']} | {row['median_s']:.1f} | {', '.join(map(str, row['runs_s']))} |" for row in rows]
    lines += ["", f"Loads whose TensorFlow models hold the same weights as Rasa's first load ({described}): "
                  f"{same_weights} of {2 * args.rounds}.",
              "", f"Dev-set questions answered alike (actions, policies, confidences, intent rankings): "
                  f"{same} of {len(dev_questions())}."]
    reproduce.save("model_load", lines, {"command": command, "commit": commit, "date": date, "model": str(args.model),
                                         "rows": rows, "same_weights": same_weights, "loads": 2 * args.rounds,
                                         "answered_alike": same, "questions": len(dev_questions())})


if __name__ == "__main__":
    main()
