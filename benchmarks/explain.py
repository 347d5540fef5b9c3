"""Faithfulness of `kefu explain`'s word attributions: comprehensiveness, as in ERASER.

For each sentence the predicted intent (the classifier's first, the fallback set aside) is
explained the way `kefu explain` does it (components/explain: LIME-style ridge fit over the
whole Rasa NLU pipeline). Then the k words with the largest weights are removed and the sentence
is parsed again: how often does the intent change? The same for k random words (the mean of
`--random-draws` draws) and for the k words whose removal alone lowers the intent's confidence
most (single-word occlusion). A sentence counts for k only if it has more than k words, since
removing every word leaves nothing to choose. Also ERASER's comprehensiveness proper: the mean
drop of the predicted intent's confidence. Time per explanation: wall time of one attribution.

Data: the held-out phrasings (tests/data/unseen_phrasings*.yml, none of them in the training
data) with the project's trained model, and a seeded sample of Banking77's test split with a
Banking77 model (`--banking77-model`, or trained here: stock sparse features, logistic regression).

    .venv/bin/python benchmarks/explain.py --model models/kefu-choice.tar.gz --limit 40 --banking77-sample 0 \
        --whole-timings 3
    .venv/bin/python benchmarks/explain.py --no-held-out --banking77-sample 200 --merge

Results: benchmarks/results/explain.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import banking77  # a sibling module
import numpy as np
import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.explain.attribution import (  # noqa: E402 - after the path is set
    MessageTokens,
    classify_unique,
    lime_attributions,
    occlusion_attributions,
    top_tokens,
)

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "explain"
RASA = str(Path(sys.executable).parent / "rasa")
HELD_OUT = {"en": ROOT / "tests" / "data" / "unseen_phrasings.yml",
            "zh": ROOT / "tests" / "data" / "unseen_phrasings_zh.yml"}
KS = (1, 3)
METHODS = ("lime", "occlusion", "random")
COMMIT = reproduce.commit()


def held_out(language: str) -> list[str]:
    document = yaml.safe_load(HELD_OUT[language].read_text(encoding="utf-8"))
    return [row["text"] for row in document["phrasings"]]


def banking77_sample(size: int, seed: int) -> list[str]:
    rows = banking77.read_split("test", None)
    return [row["text"] for row in random.Random(seed).sample(rows, size)]


# Fast to train and to parse, so a few hundred explanations stay bounded: banking77.py's stock
# sparse featurizers with Rasa's logistic regression instead of DIET.
BANKING77_PIPELINE = [*banking77.STOCK_FEATURIZERS, {"name": "LogisticRegressionClassifier", "max_iter": 300}]
BANKING77_NOTE = ("banking77.py's stock featurizers (whitespace tokens, regex, lexical-syntactic, word and char "
                  "1-4-gram counts) with Rasa's LogisticRegressionClassifier (max_iter 300), trained on the full "
                  "train split")


def train_banking77() -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    model = WORK / "banking77-stock-lr.tar.gz"
    if model.exists():
        return model
    train = WORK / "banking77_train.yml"
    banking77.write_nlu(banking77.read_split("train", None), train)
    config = WORK / "banking77_config.yml"
    config.write_text(yaml.safe_dump({"recipe": "default.v1", "language": "en", "assistant_id": "banking77",
                                      "pipeline": BANKING77_PIPELINE, "policies": []}))
    with (WORK / "train.log").open("w") as log:
        subprocess.run([RASA, "train", "nlu", "--config", str(config), "--nlu", str(train), "--out", str(WORK),
                        "--fixed-model-name", model.name.removesuffix(".tar.gz")], stdout=log, stderr=log,
                       check=True, env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"})
    return model


def top_intent(confidences: dict[str, float]) -> str | None:
    return max(confidences, key=confidences.get) if confidences else None


def measure(explainer: Any, texts: Sequence[str], samples: int, draws: int, seed: int) -> dict[str, list]:  # noqa: ANN401
    """Per sentence: intent changed and confidence dropped for each method and k, and timings."""
    rng = random.Random(seed)
    raw: dict[str, list] = {"words": [], "lime_seconds": [], "occlusion_seconds": []}
    for method in METHODS:
        for k in KS:
            raw[f"changed {method} {k}"], raw[f"dropped {method} {k}"] = [], []
    for number, text in enumerate(texts, 1):
        message = MessageTokens.of(text)
        [whole] = explainer.classify([text])
        intent = top_intent(whole)
        if intent is None or not len(message):
            continue
        raw["words"].append(len(message))
        start = time.perf_counter()
        lime = lime_attributions(message, explainer.classify, [intent], samples, seed)[intent]
        raw["lime_seconds"].append(time.perf_counter() - start)
        start = time.perf_counter()
        occlusion = occlusion_attributions(message, explainer.classify, [intent])[intent]
        raw["occlusion_seconds"].append(time.perf_counter() - start)
        removals: list[tuple[str, int, list[int]]] = []
        for k in KS:
            if len(message) <= k:
                continue
            removals += [("lime", k, top_tokens(lime, k)), ("occlusion", k, top_tokens(occlusion, k))]
            removals += [("random", k, rng.sample(range(len(message)), k)) for _ in range(draws)]
        found = classify_unique(explainer.classify, [message.without(removed) for _, _, removed in removals])
        per_sentence: dict[str, list] = {}
        for (method, k, _), after in zip(removals, found, strict=True):
            per_sentence.setdefault(f"changed {method} {k}", []).append(top_intent(after) != intent)
            per_sentence.setdefault(f"dropped {method} {k}", []).append(whole[intent] - after.get(intent, 0.0))
        for key, values in per_sentence.items():  # random: the mean of its draws
            raw[key].append(float(np.mean(values)))
        if number % 25 == 0:
            print(f"  {number}/{len(texts)} sentences", file=sys.stderr, flush=True)
    return raw


def whole_explanation_seconds(explainer: Any, texts: Sequence[str]) -> float:  # noqa: ANN401
    """Median wall time of `kefu explain`'s whole explanation (words, policies, generator) of each text."""
    seconds = []
    for text in texts:
        start = time.perf_counter()
        asyncio.run(explainer.explain_message(text))
        seconds.append(time.perf_counter() - start)
    return round(statistics.median(seconds), 3)


def summarise(raw: dict[str, list]) -> dict[str, Any]:
    result: dict[str, Any] = {"sentences": len(raw["words"]), "mean_words": round(statistics.mean(raw["words"]), 2),
                              "seconds_per_explanation": {
                                  "lime_median": round(statistics.median(raw["lime_seconds"]), 3),
                                  "lime_mean": round(statistics.mean(raw["lime_seconds"]), 3),
                                  "occlusion_median": round(statistics.median(raw["occlusion_seconds"]), 3)}}
    for k in KS:
        counted = len(raw[f"changed lime {k}"])
        result[f"k{k}"] = {"sentences": counted, **{
            method: {"intent_changed": round(100 * float(np.mean(raw[f"changed {method} {k}"])), 1) if counted
                     else None,
                     "confidence_drop": round(float(np.mean(raw[f"dropped {method} {k}"])), 3) if counted else None}
            for method in METHODS}}
    return result


def ratio(row: dict[str, Any], k: int) -> float | None:
    cell = row[f"k{k}"]
    lime, rand = cell["lime"]["intent_changed"], cell["random"]["intent_changed"]
    return round(lime / rand, 2) if lime is not None and rand else None


def write_results(rows: dict[str, dict[str, Any]], settings: dict[str, Any], command: str) -> str:
    runs = {row.get("command", command): "" for row in rows.values()}
    lines = [*(reproduce.lines(command) if len(runs) == 1 else reproduce.lines(runs)), "",
             "# Faithfulness of `kefu explain`: comprehensiveness", "",
             f"`benchmarks/explain.py` on {platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, {settings['date']}, commit {settings['commit']}. Word weights: "
             f"LIME-style ridge fit over the whole Rasa NLU pipeline (components/explain/attribution.py), "
             f"{settings['samples']} perturbed messages per sentence (all subsets for short ones), seed "
             f"{settings['seed']}. Words: components/text.py's tokens (spaCy rules; jieba for Chinese), "
             "punctuation never removed.", "",
             "Intent changed: share of sentences (with more than k words) whose top intent changes when the k "
             f"words are removed; random: the mean of {settings['random_draws']} draws per sentence; occlusion: "
             "the k words whose removal alone lowers the intent's confidence most. Confidence drop: ERASER's "
             "comprehensiveness, the mean fall of the predicted intent's confidence. Time: wall time of one "
             "attribution on this machine, shared with other jobs.", "",
             "| data | model | sentences | k | LIME changed (%) | occlusion changed (%) | random changed (%) | "
             "LIME / random | LIME drop | occlusion drop | random drop | s per attribution (median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        for k in KS:
            cell = row[f"k{k}"]
            lines.append(f"| {name} | {row['model']} | {cell['sentences']} | {k} | "
                         f"{cell['lime']['intent_changed']} | {cell['occlusion']['intent_changed']} | "
                         f"{cell['random']['intent_changed']} | {ratio(row, k)} | {cell['lime']['confidence_drop']} | "
                         f"{cell['occlusion']['confidence_drop']} | {cell['random']['confidence_drop']} | "
                         f"{row['seconds_per_explanation']['lime_median']} |")
    wholes = [f"{name} {row['seconds_per_explanation']['whole_median']} s" for name, row in rows.items()
              if "whole_median" in row["seconds_per_explanation"]]
    if wholes:
        lines += ["", f"Whole `kefu explain` (word weights, every policy, the generator's attention and checks, "
                      f"evidence), median over the first {settings['whole_timings']} phrasings: "
                  + ", ".join(wholes) + "."]
    held = rows.get("held-out (en + zh)")
    if held:
        target = ratio(held, 3)
        lines += ["", f"Target, top-3 comprehensiveness at least 2x random on the held-out phrasings: "
                      f"{target}x, {'met' if target and target >= 2 else 'not met'}."]
    lines += ["", "Models: " + "; ".join(f"{name}: {row['model_note']}" for name, row in rows.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "kefu-choice.tar.gz",
                        help="the project's trained model, for the held-out phrasings")
    parser.add_argument("--banking77-model", type=Path, default=None,
                        help="a Banking77 NLU model (default: train BANKING77_PIPELINE here)")
    parser.add_argument("--banking77-sample", type=int, default=300, help="test sentences (0: skip Banking77)")
    parser.add_argument("--samples", type=int, default=128, help="perturbed messages per attribution")
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="a seeded sample of N held-out phrasings per language")
    parser.add_argument("--held-out", action=argparse.BooleanOptionalAction, default=True,
                        help="measure on the held-out phrasings (--no-held-out: Banking77 only)")
    parser.add_argument("--merge", action="store_true", help="keep the rows of earlier runs in the results")
    parser.add_argument("--whole-timings", type=int, default=10,
                        help="phrasings per language timed through the whole explanation")
    args = parser.parse_args()
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from components.explain.assistant import AssistantExplainer

    command = reproduce.command(__file__)
    settings = {"samples": args.samples, "seed": args.seed, "random_draws": args.random_draws,
                "whole_timings": args.whole_timings,
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": COMMIT}
    rows: dict[str, dict[str, Any]] = {}
    explainer = AssistantExplainer.load(args.model, args.samples, args.seed) if args.held_out else None
    both: dict[str, list] = {}
    for language in HELD_OUT if args.held_out else ():
        phrasings = held_out(language)
        if args.limit and args.limit < len(phrasings):  # a seeded sample, every intent a chance
            phrasings = random.Random(args.seed).sample(phrasings, args.limit)
        print(f"held-out {language}: {len(phrasings)} phrasings", file=sys.stderr)
        raw = measure(explainer, phrasings, args.samples, args.random_draws, args.seed)
        rows[f"held-out {language}"] = {**summarise(raw), "model": args.model.name,
                                        "model_note": "the project's model"}
        for key, values in raw.items():
            both.setdefault(key, []).extend(values)
    if args.held_out:
        rows["held-out (en + zh)"] = {**summarise(both), "model": args.model.name,
                                      "model_note": "the project's model"}
    for language in HELD_OUT if args.held_out else ():  # the whole `kefu explain`, on the first phrasings
        rows[f"held-out {language}"]["seconds_per_explanation"]["whole_median"] = whole_explanation_seconds(
            explainer, held_out(language)[: args.whole_timings])
    if args.banking77_sample:
        model = args.banking77_model or train_banking77()
        note = BANKING77_NOTE if args.banking77_model is None else str(args.banking77_model)
        sample = banking77_sample(args.banking77_sample, args.seed)
        print(f"Banking77: {len(sample)} test sentences", file=sys.stderr)
        banking = AssistantExplainer.load(model, args.samples, args.seed)
        rows[f"Banking77 test ({len(sample)}, seed {args.seed})"] = {
            **summarise(measure(banking, sample, args.samples, args.random_draws, args.seed)), "model": model.name,
            "model_note": note}
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "explain.json"
    # a run adds or replaces its own rows, so the held-out phrasings and Banking77 can run apart
    earlier = json.loads(saved.read_text(encoding="utf-8"))["rows"] if saved.exists() and args.merge else {}
    for row in rows.values():
        row["command"] = command
    rows = {**earlier, **rows}
    saved.write_text(json.dumps({**settings, "rows": rows}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report = write_results(rows, settings, command)
    (RESULTS / "explain.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
