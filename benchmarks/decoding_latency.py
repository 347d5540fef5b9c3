"""CPU decoding latency of the Bitext generators that `generation_bitext.py` saved, measured again
with the current decoding code, without retraining.

    .venv/bin/python benchmarks/decoding_latency.py [--samples 50]

It loads benchmarks/work/bitext_{seq2seq,transformer} and the Bitext test split there, and
times one reply at a time forced to exactly 64 generated tokens, greedy and beam 4, as
`generation_bitext.py` does. Results: benchmarks/results/decoding_latency.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import datetime, timezone

import torch
from generation_bitext import ARCHITECTURES, RESULTS, ROOT, WORK, timed_replies  # a sibling script

from components.generator.data import read_split
from components.generator.decoding import DecodingSettings
from components.generator.evaluation import GeneratorSystem
from components.generator.generator import ResponseGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    questions = [d.question for d in read_split(WORK / "bitext_corpus", "test")[: args.samples]]
    fixed = {"min_length": 64, "max_length": 64, "no_repeat_ngram": 0}
    latency = {}
    for architecture in ARCHITECTURES:
        system = GeneratorSystem(ResponseGenerator.load(WORK / f"bitext_{architecture}", device="cpu"), architecture)
        latency[architecture] = {
            "greedy": timed_replies(system, questions, DecodingSettings(strategy="greedy", **fixed)),
            "beam 4": timed_replies(system, questions, DecodingSettings(strategy="beam", beam_width=4, **fixed))}
        print(architecture, latency[architecture], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit, "samples": len(questions),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}
    lines = ["# Decoding latency of the saved Bitext generators", "",
             f"`benchmarks/decoding_latency.py` on {meta['machine']}, {meta['date']}, commit {commit}: the models "
             "`benchmarks/generation_bitext.py` trained, one reply at a time on the first "
             f"{len(questions)} test questions, each forced to exactly 64 generated tokens.", "",
             "| system | greedy p50 (ms) | greedy p95 (ms) | beam 4 p50 (ms) | beam 4 p95 (ms) |",
             "|---|---|---|---|---|"]
    for name, row in latency.items():
        lines.append(f"| {name} | {row['greedy']['p50_ms']} | {row['greedy']['p95_ms']} | "
                     f"{row['beam 4']['p50_ms']} | {row['beam 4']['p95_ms']} |")
    (RESULTS / "decoding_latency.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "decoding_latency.json").write_text(json.dumps({"meta": meta, "latency": latency}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
