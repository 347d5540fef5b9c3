"""Data-parallel generator training: 1 process against 2 on this machine, with torchrun.

    .venv/bin/python benchmarks/distributed_training.py [--epochs 6] [--rounds 2]

Both runs train the Bitext seq2seq (benchmarks/configs/bitext_seq2seq.yml, fixed epochs, no
early stopping) with `torchrun --standalone --nproc-per-node N kefu generator train`, on the
corpus generation_bitext.py builds. The machine's cores are shared out: one process with all
threads, or N processes with one thread each. The runs alternate, `--rounds` times, since
this machine's speed drifts. Reported per run: training tokens/s (all ranks, median over
epochs) and the seconds to reach the same validation perplexity, the best one that every run
reached. Results: benchmarks/results/distributed_training.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml
from generation_bitext import BITEXT, RESULTS, ROOT, WORK

from components.corpus import BuildConfig, build_corpus

BIN = Path(sys.executable).parent
CONFIG = ROOT / "benchmarks" / "configs" / "bitext_seq2seq.yml"


def train(processes: int, corpus: Path, epochs: int, folder: Path) -> dict:
    config = yaml.safe_load(CONFIG.read_text())
    cores = os.cpu_count() or 1
    config["training"].update(epochs=epochs, patience=epochs + 1, max_minutes=0, progress=False,
                              threads=max(1, cores // processes))
    path = folder / f"config-{processes}.yml"
    path.write_text(yaml.safe_dump(config))
    out = folder / f"model-{processes}"
    subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", str(processes), "--no-python",
                    str(BIN / "kefu"), "generator", "train", "--corpus", str(corpus), "--out", str(out),
                    "--config", str(path)], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"})
    return json.loads((out / "training.json").read_text())


def seconds_to(history: list[dict], perplexity: float) -> float:
    return next(epoch["seconds"] for epoch in history if epoch["valid_perplexity"] <= perplexity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    command = reproduce.command(__file__)
    corpus = WORK / "bitext_corpus"
    if not (corpus / "train.jsonl").exists():
        build_corpus([BITEXT], corpus, BuildConfig(seed=13))
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kefu-ddp-") as scratch:
        for round_number in range(args.rounds):
            order = args.processes if round_number % 2 == 0 else args.processes[::-1]
            for processes in order:
                report = train(processes, corpus, args.epochs, Path(scratch))
                runs.append({"processes": processes, "round": round_number + 1, "history": report["history"]})
                print(f"round {round_number + 1}, {processes} process(es): "
                      f"{statistics.median(e['tokens_per_second'] for e in report['history']):.0f} tokens/s",
                      flush=True)
    target = max(min(e["valid_perplexity"] for e in run["history"]) for run in runs)
    rows = []
    for processes in args.processes:
        mine = [run for run in runs if run["processes"] == processes]
        rows.append({"processes": processes,
                     "tokens_per_second": round(statistics.median(
                         e["tokens_per_second"] for run in mine for e in run["history"])),
                     "seconds_to_target": round(statistics.median(seconds_to(run["history"], target) for run in mine)),
                     "best_perplexity": round(statistics.median(
                         min(e["valid_perplexity"] for e in run["history"]) for run in mine), 2)})
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# Data-parallel generator training", "",
             f"{date}, commit {commit}, {os.cpu_count()} CPU cores, gloo. Bitext seq2seq, {args.epochs} epochs per "
             f"run, {args.rounds} alternating round(s); medians. Target validation perplexity: {target:.2f} "
             "(the best that every run reached).", "",
             "| processes | threads each | tokens/s | seconds to target perplexity | best perplexity |",
             "|---|---|---|---|---|"]
    for row in rows:
        threads = max(1, (os.cpu_count() or 1) // row["processes"])
        lines.append(f"| {row['processes']} | {threads} | {row['tokens_per_second']:,} | {row['seconds_to_target']} "
                     f"| {row['best_perplexity']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "distributed_training.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "distributed_training.json").write_text(json.dumps(
        {"command": command, "date": date, "commit": commit, "target_perplexity": target, "rows": rows,
         "runs": runs}, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
