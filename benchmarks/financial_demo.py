"""Kefu's components dropped into another Rasa bot: financial-demo, stock against Kefu.

    .venv/bin/python benchmarks/financial_demo.py      # about 15 minutes on 2 cores

The bot comes from ../shared/datasets/rasa_bots/financial-demo and is used in place. Both
configs leave out the components that cannot run here (spaCy's `en_core_web_md` is not
installed and there is no Duckling server). Kefu's config adds `WordEmbeddingFeaturizer`
before DIET and `GenerativeResponsePolicy` after the stock policies; its domain gets the
`generated_reply` slot and the `utter_generated_reply` response the policy needs. Each config
is trained with `rasa train` and tested with `rasa test core` on the bot's test stories. The
bot's custom action code is not included: stories that run a custom action or a form (whose
validation is custom code) are counted as excluded, in both runs, and reported separately.
Results: benchmarks/results/financial_demo.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT.parent / "shared" / "datasets" / "rasa_bots" / "financial-demo"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "financial_demo"  # models and logs, kept for a look after a failure
RASA = str(Path(sys.executable).parent / "rasa")
# No training cache: each config trains from scratch, so the training times compare.
ENV = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "RASA_MAX_CACHE_SIZE": "0"}
UNAVAILABLE = {"SpacyNLP", "SpacyEntityExtractor", "DucklingEntityExtractor"}

KEFU_FEATURIZER = {"name": "components.featurizers.WordEmbeddingFeaturizer", "source": "train", "pooling": "sif"}
KEFU_POLICY = {"name": "components.policies.GenerativeResponsePolicy", "corpus": [],
               "nlu": [str(BOT / "data" / "nlu" / "nlu.yml")], "facts": None, "architecture": "seq2seq",
               "model": {"embedding_dim": 128, "hidden_size": 256}, "tokenizer": {"vocab_size": 2000},
               "training": {"epochs": 30, "max_minutes": 5, "patience": 4, "progress": False}}


def configs() -> dict[str, dict]:
    stock = yaml.safe_load((BOT / "config.yml").read_text())
    stock["pipeline"] = [step for step in stock["pipeline"] if step["name"] not in UNAVAILABLE]
    stock["assistant_id"] = "financial-demo"
    pipeline = []
    for step in stock["pipeline"]:
        if step["name"] == "DIETClassifier":
            pipeline.append(KEFU_FEATURIZER)
        pipeline.append(step)
    kefu = {**stock, "pipeline": pipeline, "policies": [*stock["policies"], KEFU_POLICY]}
    return {"stock": stock, "kefu": kefu}


def kefu_domain(folder: Path) -> Path:
    """The bot's domain file as it is, plus a second file with what the policy needs.

    The bot's file is copied byte for byte: a YAML round trip would turn its `yes` button
    titles into booleans, which Rasa's domain schema rejects."""
    folder.mkdir()
    shutil.copyfile(BOT / "domain.yml", folder / "domain.yml")
    additions = {"version": "3.1",
                 "slots": {"generated_reply": {"type": "text", "influence_conversation": False,
                                               "mappings": [{"type": "custom"}]}},
                 "responses": {"utter_generated_reply": [{"text": "{generated_reply}"}]}}
    (folder / "kefu.yml").write_text(yaml.safe_dump(additions, sort_keys=False))
    return folder


def needs_custom_code(story: dict, custom_actions: set[str], forms: set[str]) -> bool:
    steps = [step for step in story.get("steps", []) if isinstance(step, dict)]
    return any(step.get("action") in custom_actions | forms or "active_loop" in step for step in steps)


def split_test_stories(work: Path) -> dict[str, Path]:
    domain = yaml.safe_load((BOT / "domain.yml").read_text())
    custom = {a for a in domain.get("actions", []) if not a.startswith("utter_")}
    forms = set(domain.get("forms", {}))
    document = yaml.safe_load((BOT / "tests" / "test_stories.yml").read_text())
    plain = [s for s in document["stories"] if not needs_custom_code(s, custom, forms)]
    files = {"all": work / "all.yml", "without_custom_code": work / "without_custom_code.yml"}
    files["all"].write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    files["without_custom_code"].write_text(yaml.safe_dump({**document, "stories": plain}, sort_keys=False,
                                                           allow_unicode=True))
    return files


def story_names(path: Path) -> list[str]:
    return [story["story"] for story in yaml.safe_load(path.read_text())["stories"]]


def failed_stories(results: Path) -> int:
    failed = results / "failed_test_stories.yml"
    if not failed.exists():
        return 0
    document = yaml.safe_load(failed.read_text()) or {}
    return len(document.get("stories") or [])


def run(name: str, config: dict, domain: Path, stories: dict[str, Path], work: Path) -> dict:
    folder = work / name
    folder.mkdir()
    (folder / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.monotonic()
    with (folder / "train.log").open("w") as log:
        subprocess.run([RASA, "train", "--config", str(folder / "config.yml"), "--domain", str(domain),
                        "--data", str(BOT / "data"), "--out", str(folder), "--fixed-model-name", name],
                       stdout=log, stderr=log, env=ENV, check=True)
    row: dict = {"train_seconds": round(time.monotonic() - started)}
    for subset, path in stories.items():
        results = folder / f"results_{subset}"
        with (folder / f"test_{subset}.log").open("w") as log:
            subprocess.run([RASA, "test", "core", "--model", str(folder / f"{name}.tar.gz"), "--stories", str(path),
                            "--out", str(results), "--no-plot"], stdout=log, stderr=log, env=ENV, check=True)
        total = len(story_names(path))
        row[subset] = {"stories": total, "passed": total - failed_stories(results)}
    return row


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options; --help is safe
    command = reproduce.command(__file__)
    commit = reproduce.commit()
    rows = {}
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    stories = split_test_stories(WORK)
    domains = {"stock": BOT / "domain.yml", "kefu": kefu_domain(WORK / "kefu_domain")}
    for name, config in configs().items():
        rows[name] = run(name, config, domains[name], stories, WORK)
        print(name, rows[name], flush=True)
    all_count = rows["stock"]["all"]["stories"]
    plain_count = rows["stock"]["without_custom_code"]["stories"]
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    lines = [*reproduce.lines(command), "", "# financial-demo with Kefu's components", "",
             f"`benchmarks/financial_demo.py` on {meta['machine']}, {meta['date']}, commit {commit}. Both configs "
             "leave out SpacyNLP, SpacyEntityExtractor and DucklingEntityExtractor (no spaCy model, no Duckling "
             "server here). `rasa test core` on the bot's test stories: all of them, and those that run no "
             f"custom action or form ({plain_count} of {all_count}; the bot's action code is not included).", "",
             "| config | stories passed (all) | stories passed (no custom code) | training (s) |",
             "|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['all']['passed']} / {row['all']['stories']} | "
                     f"{row['without_custom_code']['passed']} / {row['without_custom_code']['stories']} | "
                     f"{row['train_seconds']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "financial_demo.md").write_text("\n".join(lines) + "\n")
    document = {"command": command, "meta": meta, "results": rows}
    (RESULTS / "financial_demo.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
