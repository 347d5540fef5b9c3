"""Intent accuracy per language on the held-out phrasings: which NLU pipeline serves English
and Chinese best together, and whether English lost anything to Chinese.

Each pipeline is trained with `rasa train nlu` on the project's NLU data and scored on
tests/data/unseen_phrasings.yml (English) and unseen_phrasings_zh.yml (Chinese), none of
which is in any training file, and on the dev sets the answer choice was tuned on
(benchmarks/data/dev_intents_*.yml and dev_specific_*.yml, with their intents), and on how often it
falls back on the dev questions the shop's facts do not answer (dev_coverage_*.yml). Rows:

- kefu: config.yml's pipeline as shipped (its encoder reads English messages only);
- kefu-no-encoder: the same without the English MiniLM encoder (PretrainedEncoderFeaturizer);
- kefu-no-corpus: the same without the corpus questions as NLU examples (config.yml's `importers`);
- kefu-fp32 / kefu-int8: the same with the encoder's `precision` set to fp32 or int8 (both on the torch
  runtime);
- kefu-no-linear: the same without the second intent opinion (LinearIntentClassifier), DIET alone;
- kefu-all-languages-encoder: the encoder reading every message (`languages: null`, before 2026-12-05);
- kefu-tuned-encoder: the encoder fine-tuned on the English intents during `rasa train` (4 epochs, lr 1e-4,
  a supervised contrastive loss beside the intent head's; Banking77's d-ft settings);
- before: config.yml and data/nlu.yml of the commit before Chinese NLU (English only);
- ROW@N: that row with N DIET epochs (`kefu@40`).

    .venv/bin/python benchmarks/nlu_languages.py
    .venv/bin/python benchmarks/nlu_languages.py --rows kefu before --epochs 20   # quicker, not comparable

Results: benchmarks/results/nlu_languages.{md,json}.
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
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RASA = str(Path(sys.executable).parent / "rasa")
HELD_OUT = {"en": ROOT / "tests" / "data" / "unseen_phrasings.yml",
            "zh": ROOT / "tests" / "data" / "unseen_phrasings_zh.yml"}
DEV = {lang: [ROOT / "benchmarks" / "data" / f"dev_{name}_{lang}.yml" for name in ("intents", "specific")]
       for lang in ("en", "zh")}
# shop questions the shop's facts do not answer: falling back (asking again) is right
NOT_COVERED = {lang: ROOT / "benchmarks" / "data" / f"dev_coverage_{lang}.yml" for lang in ("en", "zh")}
# The last commit whose NLU was English only (WhitespaceTokenizer, no Chinese core intents).
BEFORE_CHINESE = "d95442a"
ENCODER = "components.featurizers.PretrainedEncoderFeaturizer"
LINEAR = "components.classifiers.LinearIntentClassifier"


def git_show(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def rows_to_run(epochs: int | None) -> dict[str, tuple[dict, list[Path] | str]]:
    """Each row's config and its NLU data: files of the working tree, or one file's text at a commit."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    without_encoder = {**config, "pipeline": [c for c in config["pipeline"] if c["name"] != ENCODER]}
    before = yaml.safe_load(git_show(BEFORE_CHINESE, "config.yml"))
    data = sorted((ROOT / "data").glob("nlu*.yml"))
    without_corpus = {key: value for key, value in config.items() if key != "importers"}
    rows = {"kefu": (config, data), "kefu-no-encoder": (without_encoder, data),
            "kefu-no-corpus": (without_corpus, data), "before": (before, git_show(BEFORE_CHINESE, "data/nlu.yml"))}
    for precision in ("fp32", "int8"):
        rows[f"kefu-{precision}"] = ({**config, "pipeline": [
            # both on the torch runtime: onnx runs fp32 only
            {**c, "precision": precision, "runtime": "torch"} if c["name"] == ENCODER else dict(c)
            for c in config["pipeline"]]}, data)
    # the encoder tuned on the English intents as Banking77's best single encoder was (docs/banking77.md, d-ft)
    tuning = {"finetune": True, "finetune_epochs": 4, "finetune_learning_rate": 1e-4,
              "finetune_contrastive_weight": 0.5}
    rows["kefu-tuned-encoder"] = ({**config, "pipeline": [
        {**c, **tuning} if c["name"] == ENCODER else dict(c) for c in config["pipeline"]]}, data)
    rows["kefu-no-linear"] = ({**config, "pipeline": [c for c in config["pipeline"] if c["name"] != LINEAR]}, data)
    rows["kefu-all-languages-encoder"] = ({**config, "pipeline": [
        {**c, "languages": None} if c["name"] == ENCODER else dict(c) for c in config["pipeline"]]}, data)
    for row_config, _ in rows.values():
        row_config["policies"] = []
        for component in row_config["pipeline"]:
            if component["name"] == "DIETClassifier" and epochs:
                component["epochs"] = epochs
    return rows


def accuracy(model: Path) -> dict[str, dict]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))
    scores = {}

    async def score(phrasings: list[dict]) -> tuple[int, list[float]]:
        """Right intents (an absent intent is right when NLU falls back) and parse seconds."""
        await agent.parse_message(phrasings[0]["text"])  # the first call builds graphs
        right, seconds = 0, []
        for phrasing in phrasings:
            start = time.perf_counter()
            parsed = await agent.parse_message(phrasing["text"])
            seconds.append(time.perf_counter() - start)
            right += parsed["intent"]["name"] == phrasing.get("intent", "nlu_fallback")
        return right, seconds

    for language, path in HELD_OUT.items():
        phrasings = yaml.safe_load(path.read_text(encoding="utf-8"))["phrasings"]
        right, seconds = asyncio.run(score(phrasings))
        scores[language] = {"accuracy": round(100 * right / len(phrasings), 1), "right": right,
                            "phrasings": len(phrasings), "parse_ms_median": round(1000 * statistics.median(seconds), 1)}
        questions = [q for path in DEV[language] for q in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]]
        right = asyncio.run(score(questions))[0]
        scores[f"dev_{language}"] = {"accuracy": round(100 * right / len(questions), 1), "right": right,
                                     "questions": len(questions)}
        texts = yaml.safe_load(NOT_COVERED[language].read_text(encoding="utf-8"))["questions"]
        fallbacks = asyncio.run(score([{"text": text} for text in texts]))[0]
        scores[f"not_covered_{language}"] = {"fallbacks": fallbacks, "questions": len(texts)}
    return scores


def train(key: str, config: dict, data: list[Path] | str, work: Path) -> tuple[Path, float]:
    folder = work / key
    (folder / "data").mkdir(parents=True)
    if isinstance(data, str):
        (folder / "data" / "nlu.yml").write_text(data, encoding="utf-8")
    else:
        for path in data:
            (folder / "data" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "RASA_CACHE_DIRECTORY": str(folder / "cache")}
    start = time.perf_counter()
    with (folder / "train.log").open("w") as log:
        # From the project root, so the config's relative paths (corpus, encoder, shop words) resolve.
        subprocess.run([RASA, "train", "nlu", "--config", str(folder / "config.yml"), "--nlu", str(folder / "data"),
                        "--out", str(folder), "--fixed-model-name", key], cwd=ROOT, stdout=log, stderr=log,
                       env=env, check=True)
    return folder / f"{key}.tar.gz", time.perf_counter() - start


def write_results(rows: list[dict], meta: dict) -> None:
    lines = [*reproduce.lines(meta["command"]), "",
             "# Intent accuracy per language on held-out phrasings", "",
             f"{meta['date']}, commit {meta['commit']}, {meta['machine']}. Held-out phrasings: "
             f"{meta['phrasings']['en']} English, {meta['phrasings']['zh']} Chinese, none in any training file. "
             "`before` is the English-only NLU of commit "
             f"{BEFORE_CHINESE} (its config.yml and data/nlu.yml); it never saw Chinese core intents. "
             "Dev: the dev sets' questions (plain and specific, English / Chinese), right of all. "
             "Not covered: the dev questions the shop's facts do not answer (dev_coverage), fallbacks of all.", "",
             "| row | English | Chinese | both | dev en | dev zh | not covered en | not covered zh | training s "
             "| parse ms (en / zh) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        en, zh = row["en"], row["zh"]
        both = round(100 * (en["right"] + zh["right"]) / (en["phrasings"] + zh["phrasings"]), 1)
        dev = " | ".join(f"{row[f'dev_{lang}']['right']} of {row[f'dev_{lang}']['questions']}" for lang in ("en", "zh"))
        for lang in ("en", "zh"):
            dev += f" | {row[f'not_covered_{lang}']['fallbacks']} of {row[f'not_covered_{lang}']['questions']}"
        lines.append(f"| {row['row']} | {en['accuracy']}% | {zh['accuracy']}% | {both}% | {dev} "
                     f"| {row['train_seconds']} | {en['parse_ms_median']} / {zh['parse_ms_median']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nlu_languages.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "nlu_languages.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=["kefu", "kefu-no-encoder", "before"])
    parser.add_argument("--epochs", type=int, default=None, help="DIET epochs for every row (default: each config's)")
    args = parser.parse_args()
    command = reproduce.command(__file__)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kefu-nlu-languages-") as work:
        for key in args.rows:
            name, _, row_epochs = key.partition("@")
            config, data = rows_to_run(int(row_epochs) if row_epochs else args.epochs)[name]
            model, seconds = train(key, config, data, Path(work))
            rows.append({"row": key, "train_seconds": round(seconds), **accuracy(model)})
            print(json.dumps(rows[-1]), flush=True)
    meta = {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "commit": reproduce.commit(),
            "machine": f"{os.cpu_count()}-core {platform.machine()}, no GPU",
            "phrasings": {lang: len(yaml.safe_load(p.read_text(encoding="utf-8"))["phrasings"])
                          for lang, p in HELD_OUT.items()}}
    write_results(rows, meta)


if __name__ == "__main__":
    main()
