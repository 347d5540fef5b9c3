"""CrossWOZ intent classification (Chinese): Rasa's stock Chinese pipeline against Kefu's.

CrossWOZ (../shared/datasets/crosswoz, Zhu et al., TACL 2020) ships only its validation and
test splits here, 500 dialogues each: the models train on the validation split and are scored
on the test split. The zip files are read where they lie; no text is copied into the repository.

A user turn's label is the set of (intent, domain) pairs of its dialogue acts, sorted and joined
into one string ("Inform+酒店|Request+酒店"); slots and values are ignored. Turns without acts are
dropped, only labels with at least --min-count training turns are kept, and test turns whose
label is not among them are dropped. Each pipeline is trained with `rasa train nlu` (language
zh, an empty Rasa cache) and every kept test turn is parsed once with the loaded model: accuracy
and macro-F1 over the kept labels (scikit-learn), training wall time, and the median time of one
`Agent.parse_message`.

    nice -n 10 .venv/bin/python benchmarks/crosswoz_nlu.py --epochs 10
    .venv/bin/python benchmarks/crosswoz_nlu.py --quick      # a small subset, 2 epochs; not saved

DIET runs 10 epochs in both pipelines, not 40: on this shared 2-core machine a 3-epoch probe of
the stock pipeline trained in 205 s and 10 epochs in 339 s, so 40 would take 20-30 minutes per
pipeline against the ~10 minutes allowed.

Each run merges its rows into benchmarks/results/crosswoz_nlu.{json,md}; a row keeps the
command, date and commit of the run that made it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import reproduce  # a sibling module
import yaml
from banking77 import results_table, write_nlu  # a sibling module

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "crosswoz" / "data" / "crosswoz"
RESULTS = ROOT / "benchmarks" / "results"
RASA = str(Path(sys.executable).parent / "rasa")
# the commit the run started from; commits made while it runs do not change its rows
COMMIT = reproduce.commit()
QUICK_DIALOGUES = 60  # --quick: the first 60 dialogues of each split

# Context only: a different task (every dialogue act with its slot and value, multi-label, trained on
# the 5,012 training dialogues, system and user turns), so not comparable number for number.
PUBLISHED = (
    "For context only, not comparable number for number: BERTNLU, the CrossWOZ authors' NLU, "
    "predicts every dialogue act of a turn (multi-label intents plus slot tagging of values) and is "
    "scored by dialogue-act F1. The ConvLab-2 README for BERTNLU on CrossWOZ (convlab2/nlu/jointBERT/"
    "crosswoz/README.md in thu-coai/CrossWOZ) gives F1 91.85 without context and 95.53 with the last "
    "three utterances as context, trained on the 5,012 training dialogues and on all utterances, "
    "system and user. The TACL 2020 paper's own NLU table was not retrieved here, so no figure is "
    "quoted from it. This benchmark trains on the 500 validation dialogues and classifies one "
    "label per user turn, its (intent, domain) pairs, with no slots."
)


def turn_label(acts: list[list[str]]) -> str:
    """'Inform+酒店|Request+酒店': the (intent, domain) pairs of a turn's [intent, domain, slot, value] acts."""
    return "|".join(sorted({f"{act[0]}+{act[1]}" for act in acts}))


def read_turns(split: str, dialogues: int | None = None) -> tuple[list[dict], int]:
    """The user turns of a split as {"category", "text"} rows, and how many were left out for having no
    dialogue acts (or no text)."""
    with zipfile.ZipFile(DATA / f"{split}.json.zip") as archive:
        data = json.loads(archive.read(f"{split}.json"))
    rows, without = [], 0
    for dialogue in list(data.values())[:dialogues]:
        for message in dialogue["messages"]:
            if message["role"] != "usr":
                continue
            text = " ".join(message["content"].split())
            if message["dialog_act"] and text:
                rows.append({"category": turn_label(message["dialog_act"]), "text": text})
            else:
                without += 1
    return rows, without


def pipelines(epochs: int) -> dict[str, tuple[str, list[dict]]]:
    diet = {"name": "DIETClassifier", "epochs": epochs, "entity_recognition": False, "random_seed": 1}
    counts = [{"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
              {"name": "CountVectorsFeaturizer"}]
    # jieba's own dictionary only: the shop words of data/shop_words.txt do not apply to travel
    mixed = {"name": "components.tokenizers.MixedTokenizer", "user_dictionary": None}
    lexical = {"name": "LexicalSyntacticFeaturizer"}
    vectors = {"name": "components.featurizers.WordEmbeddingFeaturizer", "source": "train", "unit": "char",
               "dimensions": 100, "epochs": 20, "pooling": "sif"}
    return {
        "stock": ("JiebaTokenizer, char_wb 1-4 + word CountVectorsFeaturizer, DIET",
                  [{"name": "JiebaTokenizer"}, *counts, diet]),
        "kefu": ("MixedTokenizer (no user dictionary), LexicalSyntacticFeaturizer, char_wb 1-4 + word "
                 "CountVectorsFeaturizer, WordEmbeddingFeaturizer (trained, char, 100 dims, sif), DIET",
                 [mixed, lexical, *counts, vectors, diet]),
        # two changes to try if kefu loses to stock; not run on 2026-12-02, as it won
        "kefu-word": ("kefu with WordEmbeddingFeaturizer unit: word",
                      [mixed, lexical, *counts, {**vectors, "unit": "word"}, diet]),
        "kefu-nolex": ("kefu without LexicalSyntacticFeaturizer", [mixed, *counts, vectors, diet]),
    }


def score(model: Path, rows: list[dict], labels: list[str]) -> dict[str, Any]:
    """Parse every test row once with the loaded model: accuracy, macro-F1 and the median parse time."""
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog
    from sklearn.metrics import accuracy_score, f1_score

    configure_structlog(logging.WARNING)  # a debug line per message would be timed too
    agent = Agent.load(str(model))

    async def parse_all() -> tuple[list[str], list[float]]:
        await agent.parse_message(rows[0]["text"])  # the first call builds graphs
        predicted, seconds = [], []
        for row in rows:
            start = time.perf_counter()
            parsed = await agent.parse_message(row["text"])
            seconds.append(time.perf_counter() - start)
            predicted.append((parsed.get("intent") or {}).get("name") or "")
        return predicted, seconds

    predicted, seconds = asyncio.run(parse_all())
    truth = [row["category"] for row in rows]
    return {"accuracy": round(100 * accuracy_score(truth, predicted), 2),
            "macro_f1": round(100 * f1_score(truth, predicted, labels=labels, average="macro", zero_division=0), 2),
            "parse_ms_median": round(1000 * statistics.median(seconds), 2)}


def run(key: str, label: str, pipeline: list[dict], work: Path, train: Path, test_rows: list[dict],
        labels: list[str]) -> dict:
    folder = work / key
    folder.mkdir()
    config = folder / "config.yml"
    config.write_text(yaml.safe_dump({"recipe": "default.v1", "language": "zh", "assistant_id": "crosswoz",
                                      "pipeline": pipeline, "policies": []}, allow_unicode=True))
    # an empty cache per run: a component cached by an earlier run would not be timed
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "RASA_CACHE_DIRECTORY": str(folder / "cache")}
    start = time.perf_counter()
    with (folder / "train.log").open("w") as log:
        # from the repository root, so that `components.` resolves as in the bot
        trained = subprocess.run([RASA, "train", "nlu", "--config", str(config), "--nlu", str(train),
                                  "--out", str(folder), "--fixed-model-name", key],
                                 stdout=log, stderr=log, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    model = folder / f"{key}.tar.gz"
    epochs = next(step["epochs"] for step in pipeline if step["name"] == "DIETClassifier")
    row = {"pipeline": label, "diet_epochs": epochs, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "commit": COMMIT}
    if trained.returncode != 0 or not model.exists():
        tail = (folder / "train.log").read_text(errors="replace").splitlines()[-5:]
        return {**row, "error": "training failed: " + " | ".join(tail)}
    return {**row, **score(model, test_rows, labels), "train_seconds": round(seconds),
            "archive_mb": round(model.stat().st_size / 2**20, 1)}


def write_results(rows: dict[str, dict], meta: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    commands = {row["command"]: [] for row in rows.values()}
    for key, row in rows.items():
        commands[row["command"]].append(key)
    head = (reproduce.lines(next(iter(commands))) if len(commands) == 1 else
            reproduce.lines({command: ("configs " if len(keys) > 1 else "config ") + ", ".join(keys)
                             for command, keys in commands.items()}))
    (RESULTS / "crosswoz_nlu.json").write_text(json.dumps(
        {"command": next(iter(commands)) if len(commands) == 1 else list(commands), "meta": meta,
         "results": rows}, indent=2, ensure_ascii=False) + "\n")
    lines = [*head, "", "# CrossWOZ intent classification (Chinese)", "",
             f"`benchmarks/crosswoz_nlu.py` on {meta['machine']}. Trained on CrossWOZ's validation split, "
             f"scored on its test split: {meta['train_turns']} training and {meta['test_turns']} test user turns, "
             f"{meta['labels']} labels. A label is a turn's set of (intent, domain) pairs, e.g. "
             "`Inform+酒店|Request+酒店`; labels with fewer than "
             f"{meta['min_count']} training turns are left out ({meta['dropped_train_turns']} training and "
             f"{meta['dropped_test_turns']} test turns), as are turns without dialogue acts "
             f"({meta['no_act_turns']['val']} and {meta['no_act_turns']['test']}; of "
             f"{meta['user_turns']['val']} and {meta['user_turns']['test']} user turns). Accuracy and macro-F1 "
             "(scikit-learn, over the kept labels) from parsing each test turn once with the trained model; "
             "training is the wall time of `rasa train nlu` with an empty cache; parse is the median time of "
             "one `Agent.parse_message`.", "", *results_table(list(rows.items()))]
    lines += ["", "DIET has the same settings in every config: entity recognition off, random seed 1, and 10 "
              "epochs rather than 40, so that one training stays within about 10 minutes on this shared 2-core "
              "machine (40 would take 20-30). One seed each: the rows are single runs. Other jobs shared the "
              "machine during the runs, so training times compare only roughly.", "",
              f"Wall time of the run(s): {meta['run_seconds']}.", "",
              "Labels kept (training / test turns): "
              + ", ".join(f"`{name}` {n}/{meta['test_counts'].get(name, 0)}"
                          for name, n in meta["train_counts"].items()) + ".", "", PUBLISHED]
    (RESULTS / "crosswoz_nlu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["stock", "kefu"],
                        choices=["stock", "kefu", "kefu-word", "kefu-nolex"])
    parser.add_argument("--epochs", type=int, default=None, help="DIET epochs, the same for every config "
                        "(default 10; 2 with --quick)")
    parser.add_argument("--min-count", type=int, default=20, help="fewest training turns a label needs")
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_DIALOGUES} dialogues of each split; nothing is saved")
    args = parser.parse_args()
    command = reproduce.command(__file__)
    began = time.perf_counter()

    dialogues = QUICK_DIALOGUES if args.quick else None
    (train_all, train_without), (test_all, test_without) = read_turns("val", dialogues), read_turns("test", dialogues)
    counts = Counter(row["category"] for row in train_all)
    labels = sorted(name for name, n in counts.items() if n >= args.min_count)
    train_rows = [row for row in train_all if row["category"] in labels]
    test_rows = [row for row in test_all if row["category"] in labels]
    test_counts = Counter(row["category"] for row in test_rows)
    epochs = args.epochs or (2 if args.quick else 10)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "train_split": "val", "test_split": "test", "min_count": args.min_count, "labels": len(labels),
            "train_turns": len(train_rows), "test_turns": len(test_rows),
            "user_turns": {"val": len(train_all) + train_without, "test": len(test_all) + test_without},
            "no_act_turns": {"val": train_without, "test": test_without},
            "dropped_train_turns": len(train_all) - len(train_rows),
            "dropped_test_turns": len(test_all) - len(test_rows),
            "train_counts": {name: counts[name] for name in sorted(labels, key=lambda n: (-counts[n], n))},
            "test_counts": dict(test_counts)}
    print(f"{len(labels)} labels with >= {args.min_count} training turns; train {len(train_rows)} turns "
          f"(of {meta['user_turns']['val']} user turns), test {len(test_rows)} turns "
          f"(of {meta['user_turns']['test']})", flush=True)

    previous = RESULTS / "crosswoz_nlu.json"
    saved = json.loads(previous.read_text()) if previous.exists() and not args.quick else {}
    rows = saved.get("results", {})
    run_seconds = dict(saved.get("meta", {}).get("run_seconds_by_command", {}))
    configs = pipelines(epochs)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        write_nlu(train_rows, work / "train.yml")
        for key in args.configs:
            label, pipeline = configs[key]
            rows[key] = {**run(key, label, pipeline, work, work / "train.yml", test_rows, labels),
                         "command": command}
            print(key, rows[key], flush=True)
            if not args.quick:  # saved after each config, so a stopped run keeps what it finished
                run_seconds[command] = round(time.perf_counter() - began)
                meta["run_seconds_by_command"] = run_seconds
                meta["run_seconds"] = "; ".join(f"{seconds} s for `{cmd}`" for cmd, seconds in run_seconds.items())
                write_results(rows, meta)
    print(f"run took {round(time.perf_counter() - began)} s")
    if args.quick:
        print("--quick: a check of the script; results are not saved.")


if __name__ == "__main__":
    main()
