"""CPU decoding latency of the Bitext generators that `generation_bitext.py` saved, measured again
with the current decoding code, without retraining.

    .venv/bin/python benchmarks/decoding_latency.py [--samples 50] [--rounds 2]

It loads benchmarks/work/bitext_{seq2seq,transformer} and the Bitext test split there, and
times one reply at a time forced to exactly 64 generated tokens, greedy and beam 4, as
`generation_bitext.py` does, each with the traced CPU step (what the bot runs) and with the
eager step. This machine's speed drifts by a third over minutes, so the variants take turns
on every question and their figures come from the same minutes.
Results: benchmarks/results/decoding_latency.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone

import reproduce  # a sibling module
import torch
from generation_bitext import ARCHITECTURES, RESULTS, WORK, interleaved_latency  # a sibling script

from components.generator.data import read_split
from components.generator.generator import ResponseGenerator

STEPS = {"traced": True, "eager": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    args = parser.parse_args()
    command = reproduce.command(__file__)
    torch.set_num_threads(os.cpu_count() or 1)
    questions = [d.question for d in read_split(WORK / "bitext_corpus", "test")[: args.samples]]
    generators = {a: ResponseGenerator.load(WORK / f"bitext_{a}", device="cpu") for a in ARCHITECTURES}
    latency = interleaved_latency(generators, questions, args.rounds, STEPS)
    commit = reproduce.commit()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit, "samples": len(questions),
            "rounds": args.rounds, "machine": machine}
    lines = [*reproduce.lines(command, "after `benchmarks/generation_bitext.py` has saved the models in "
                                       "`benchmarks/work/`"), "",
             "# Decoding latency of the saved Bitext generators", "",
             f"`benchmarks/decoding_latency.py` on {meta['machine']}, {meta['date']}, commit {commit}: the models "
             "`benchmarks/generation_bitext.py` trained, one reply at a time on the first "
             f"{len(questions)} test questions ({args.rounds} passes), each forced to exactly 64 generated "
             "tokens. *traced*: the decoding step as a TorchScript trace, which the bot runs on a CPU; "
             "*eager*: the same step op by op from Python. The variants take turns on every question, "
             "so both columns come from the same minutes of this machine.", "",
             "| system | step | greedy p50 (ms) | greedy p95 (ms) | beam 4 p50 (ms) | beam 4 p95 (ms) |",
             "|---|---|---|---|---|---|"]
    for architecture, row in latency.items():
        for step in STEPS:
            greedy, beam = row["greedy"][step], row["beam 4"][step]
            lines.append(f"| {architecture} | {step} | {greedy['p50_ms']} | {greedy['p95_ms']} | "
                         f"{beam['p50_ms']} | {beam['p95_ms']} |")
    (RESULTS / "decoding_latency.md").write_text("\n".join(lines) + "\n")
    document = {"command": command, "meta": meta, "latency": latency}
    (RESULTS / "decoding_latency.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
