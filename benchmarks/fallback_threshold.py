"""Where NLU's fallback threshold should sit, per language, on a dev set written for it.

Parses benchmarks/data/dev_intents_{en,zh}.yml (questions in no training file and in none of the
held-out benchmark sets) with a trained model and, for each FallbackClassifier threshold, counts
the questions that would be answered as the right intent, answered as a wrong one, or fall back
(the top intent below the threshold, or within `ambiguity_threshold` of the runner-up). The model's
own threshold does not matter: the intents' confidences are read from the ranking.

    .venv/bin/python benchmarks/fallback_threshold.py --model models/<model>.tar.gz

Results: benchmarks/results/fallback_threshold.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEV_SETS = {lang: ROOT / "benchmarks" / "data" / f"dev_intents_{lang}.yml" for lang in ("en", "zh")}
FALLBACK_INTENT = "nlu_fallback"


async def rankings(model: Path) -> dict[str, list[dict]]:
    """Each dev question with its expected intent and NLU's ranking (the fallback left out)."""
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))
    found: dict[str, list[dict]] = {}
    for lang, path in DEV_SETS.items():
        found[lang] = []
        for question in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]:
            parsed = await agent.parse_message(question["text"])
            ranking = [(r["name"], r["confidence"]) for r in parsed["intent_ranking"] if r["name"] != FALLBACK_INTENT]
            found[lang].append({**question, "ranking": ranking[:2]})
    return found


def outcome(question: dict, threshold: float, ambiguity: float) -> str:
    (top, confidence), runner_up = question["ranking"][0], question["ranking"][1][1]
    if confidence < threshold or confidence - runner_up < ambiguity:
        return "fallback"
    return "right" if top == question["intent"] else "wrong"


def table(found: dict[str, list[dict]], thresholds: list[float], ambiguity: float) -> list[dict]:
    rows = []
    for lang, questions in found.items():
        for threshold in thresholds:
            outcomes = [outcome(q, threshold, ambiguity) for q in questions]
            rows.append({"language": lang, "threshold": threshold, "questions": len(questions),
                         **{kind: outcomes.count(kind) for kind in ("right", "wrong", "fallback")}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6])
    parser.add_argument("--ambiguity", type=float, default=0.1, help="FallbackClassifier's ambiguity_threshold")
    args = parser.parse_args()
    found = asyncio.run(rankings(args.model))
    rows = table(found, args.thresholds, args.ambiguity)
    commit = reproduce.commit()
    meta = {"command": reproduce.command(__file__), "commit": commit, "model": args.model.name,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "ambiguity_threshold": args.ambiguity}
    lines = [*reproduce.lines(meta["command"]), "", "# The fallback threshold per language, on a dev set", "",
             f"{meta['date']}, commit {commit}, model `{args.model.name}`; ambiguity threshold {args.ambiguity}. "
             "Dev questions: benchmarks/data/dev_intents_{en,zh}.yml, written for this check only.", "",
             "| language | threshold | right | wrong | fallback |", "|---|---|---|---|---|"]
    lines += [f"| {r['language']} | {r['threshold']} | {r['right']} | {r['wrong']} | {r['fallback']} |" for r in rows]
    lines += ["", "Questions below 0.5, or answered wrong at 0.2 (top two intents with confidence):", ""]
    for lang, questions in found.items():
        for q in questions:
            (top, confidence), (second, runner_up) = q["ranking"][0], q["ranking"][1]
            if confidence < 0.5 or top != q["intent"]:
                lines.append(f"- {lang} `{q['text']}` ({q['intent']}): {top} {confidence:.2f}, "
                             f"{second} {runner_up:.2f}")
    reproduce.save("fallback_threshold", lines, {**meta, "rows": rows, "questions": found})


if __name__ == "__main__":
    main()
