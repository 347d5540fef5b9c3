"""Reply generation on Bitext customer support: Kefu's generators against two baselines.

    .venv/bin/python benchmarks/generation_bitext.py            # the full run (about 20 minutes a generator)
    .venv/bin/python benchmarks/generation_bitext.py --quick    # a few minutes, to check the script; not saved
    .venv/bin/python benchmarks/generation_bitext.py --reuse transformer  # score the saved transformer again
    .venv/bin/python benchmarks/generation_bitext.py --generators seq2seq seq2seq_rag

Generators: seq2seq, transformer, and seq2seq_rag (the seq2seq reading the two nearest training
answers beside the question, with copy attention).

Steps: `kefu corpus build` splits Bitext 80/10/10 with a fixed seed; each architecture
trains from `benchmarks/configs/bitext_<architecture>.yml` within its time budget; every
system is scored on the whole test split with `components.generator.evaluation` (full-length
replies, never cut to 64 tokens); CPU latency is then timed on replies of exactly 64
generated tokens, greedy and beam 4, one question at a time, the systems taking turns on each
question so that the machine's drifting speed falls on all of them alike. Where CUDA is present, the
transformer's training throughput is also measured with bf16 autocast for two epochs.
Results go to benchmarks/results/generation_bitext.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import torch
import yaml

from components.corpus import BuildConfig, build_corpus
from components.generator.data import read_split
from components.generator.decoding import DecodingSettings
from components.generator.evaluation import (
    GeneratorSystem,
    IntentPrototypeBaseline,
    RetrievalBaseline,
    evaluate_system,
    signatures,
    write_report,
)
from components.generator.generator import ResponseGenerator
from components.generator.training import GeneratorConfig, train_generator

ROOT = Path(__file__).resolve().parent.parent
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext_customer_support" / \
    "Bitext_Sample_Customer_Support_Training_Dataset_4514.csv"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work"  # corpus and models; git-ignored
# Generator configurations, each benchmarks/configs/bitext_<name>.yml.
ARCHITECTURES = ("seq2seq", "transformer", "seq2seq_rag")


def load_config(architecture: str, quick: bool) -> GeneratorConfig:
    path = ROOT / "benchmarks" / "configs" / f"bitext_{architecture}.yml"
    config = GeneratorConfig.from_dict(yaml.safe_load(path.read_text()), str(path))
    config.training.threads = os.cpu_count() or 1
    if quick:
        config.training = replace(config.training, epochs=1, max_minutes=1.0, threads=1)
        config.decoding = replace(config.decoding, max_length=64)
    return config


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    seconds = sorted(seconds)
    return {"p50_ms": round(1000 * statistics.median(seconds), 1),
            "p95_ms": round(1000 * seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))], 1)}


FORCED_64 = {"min_length": 64, "max_length": 64, "no_repeat_ngram": 0}
LATENCY_STRATEGIES = {"greedy": DecodingSettings(strategy="greedy", **FORCED_64),
                      "beam 4": DecodingSettings(strategy="beam", beam_width=4, **FORCED_64),
                      "mbr 16": DecodingSettings(strategy="mbr", beam_width=4, samples=16, temperature=0.7,
                                                 top_p=0.9, **FORCED_64)}


def interleaved_latency(generators: dict[str, ResponseGenerator], questions: list[str], rounds: int = 1,
                        steps: dict[str, bool] | None = None) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """architecture -> strategy -> step -> p50/p95 of one reply at a time, forced to exactly 64
    generated tokens. `steps` names the decoding steps to time (True: traced, as the bot runs).
    This machine's speed drifts by a third over minutes, so every variant is timed on each
    question in turn, the order rotating, and all figures come from the same minutes."""
    steps = steps or {"traced": True}
    variants = [(a, s, t) for a in generators for s in LATENCY_STRATEGIES for t in steps]
    for generator in generators.values():  # the first reply of each strategy builds its trace
        for decoding in LATENCY_STRATEGIES.values():
            generator.reply(questions[0], decoding=decoding)
    seconds: dict[tuple[str, str, str], list[float]] = {variant: [] for variant in variants}
    for round_index in range(rounds):
        for question_index, question in enumerate(questions):
            shift = (round_index * len(questions) + question_index) % len(variants)
            for architecture, strategy, step in variants[shift:] + variants[:shift]:
                generator = generators[architecture]
                generator.trace_steps = steps[step]
                start = time.perf_counter()
                reply = generator.reply(question, decoding=LATENCY_STRATEGIES[strategy])
                seconds[architecture, strategy, step].append(time.perf_counter() - start)
                assert reply.tokens == FORCED_64["max_length"], reply.tokens
    for generator in generators.values():
        generator.trace_steps = True  # as the bot runs
    return {a: {s: {t: percentiles(seconds[a, s, t]) for t in steps} for s in LATENCY_STRATEGIES}
            for a in generators}


def gpu_throughput(train: list, valid: list) -> dict[str, float] | None:
    if not torch.cuda.is_available():
        return None
    config = load_config("transformer", quick=False)
    config.training = replace(config.training, epochs=2, device="cuda", max_minutes=5, progress=False)
    result = train_generator(train, valid, config)
    return {"device": torch.cuda.get_device_name(0), "bf16_tokens_per_second":
            round(statistics.median(h["tokens_per_second"] for h in result.history))}


def reproduce_note(reused: list[str]) -> str:
    """What the command does, for the first line of the results."""
    if not reused:
        return ("trains each generator, about 20 minutes each on 2 cores; `--reuse NAME` scores the model an "
                "earlier run saved in `benchmarks/work/` instead of training it again")
    models = list(dict.fromkeys(reused))
    what = f"the {models[0]} model" if len(models) == 1 else f"the {', '.join(models)} models"
    return (f"scores {what} an earlier run saved in `benchmarks/work/`, decoding as `benchmarks/configs/` says "
            "now, with the training figures that run recorded, instead of training again; without `--reuse` each "
            "generator trains, about 20 minutes each on 2 cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script; nothing is saved")
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--generators", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES,
                        help="which generator configurations to train and score")
    parser.add_argument("--reuse", action="append", default=[], choices=ARCHITECTURES,
                        help="evaluate this architecture's model from the last run (benchmarks/work) instead of "
                             "training it again; its training figures are copied from the last results")
    args = parser.parse_args()
    command = reproduce.command(__file__)

    corpus = WORK / "bitext_corpus"
    build_corpus([BITEXT], corpus, BuildConfig(seed=13, valid_fraction=0.1, test_fraction=0.1))
    train, valid, test = (read_split(corpus, name) for name in ("train", "valid", "test"))
    if args.quick:
        train, valid, test = train[::36], valid[::20], test[::40]  # every intent, few pairs
    commit = reproduce.commit()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    last = json.loads((RESULTS / "generation_bitext.json").read_text()) if args.reuse else {}
    systems, training = [RetrievalBaseline(train), IntentPrototypeBaseline(train)], {}
    for architecture in args.generators:
        folder = WORK / f"bitext_{architecture}"
        if architecture in args.reuse:
            generator = ResponseGenerator.load(folder, device="cpu")
            # decoding is a setting, not learnt: the saved model decodes as its config says now
            generator.decoding = load_config(architecture, args.quick).decoding
            trained = last["training"][architecture]
            training[architecture] = {**trained, "trained": trained.get("trained", "{date}, {commit}".format(
                **last["meta"]))}
        else:
            result = train_generator(train, valid, load_config(architecture, args.quick))
            generator = result.generator
            generator.save(folder)
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            training[architecture] = {
                "seconds": round(result.seconds), "epochs": len(result.history), "best_epoch": result.best_epoch,
                "stopped_early": result.stopped_early, "parameters": generator.parameter_count(),
                "model_mb": round(size_mb, 1),
                "tokens_per_second": round(statistics.median(h["tokens_per_second"] for h in result.history)),
                "valid_perplexity": round(result.history[result.best_epoch - 1]["valid_perplexity"], 2),
                "trained": f"{today}, {commit}"}
        print(architecture, training[architecture], flush=True)
        systems.append(GeneratorSystem(generator, architecture))
        if generator.decoding.strategy == "mbr":  # what the same model says with the beam alone
            systems.append(GeneratorSystem(generator, f"{architecture}, beam 4",
                                           replace(generator.decoding, strategy="beam")))

    rows = [evaluate_system(system, test, args.latency_samples) for system in systems]
    questions = [d.question for d in test[: args.latency_samples]]
    traced = interleaved_latency({system.name: system.generator for system in systems[2:]
                                  if system.decoding is None}, questions)
    latency = {name: {strategy: steps["traced"] for strategy, steps in strategies.items()}
               for name, strategies in traced.items()}
    gpu = gpu_throughput(train, valid)
    meta = {"date": today, "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
            "pairs": {"train": len(train), "valid": len(valid), "test": len(test)}}
    signature = signatures(test)
    notes = [f"`benchmarks/generation_bitext.py` on {meta['machine']}, {meta['date']}, commit {commit}.",
             f"Bitext split by `kefu corpus build` (seed 13, 80/10/10): train {len(train)}, valid {len(valid)}, "
             f"test {len(test)} pairs. Generators decode with their saved settings (mbr: the beam's best and 16 "
             "samples, the one with the highest mean chrF against the others and the answers of the 8 nearest "
             "training questions; `, beam 4`: the same model with the beam alone), full length, within each "
             "config's `min_length` and `max_length`.",
             f"BLEU: sacrebleu `{signature['bleu']}`; chrF: `{signature['chrf']}`. ROUGE-L, distinct-n, exact "
             "match and length use lower-cased words and punctuation. Latency columns: one reply at a time, "
             "as the bot answers, on the first test questions; ECE: calibration of P(token F1 >= 0.5)."]
    if args.quick:
        print("--quick: results are not saved")
        print(json.dumps({"training": training, "latency": latency,
                          "quality": [asdict(r) for r in rows]}, indent=1))
        return
    markdown = write_report(rows, RESULTS / "generation_bitext_report", "Reply generation on Bitext", notes)
    lines = [*reproduce.lines(command, reproduce_note(args.reuse)), "", markdown,
             "## Training", "", "| architecture | parameters | model (MB) | training (s) | epochs (best) "
             "| tokens/s (median epoch) | valid perplexity | trained (date, commit) |", "|---" * 8 + "|"]
    for name, row in training.items():
        lines.append(f"| {name} | {row['parameters']:,} | {row['model_mb']} | {row['seconds']} | "
                     f"{row['epochs']} ({row['best_epoch']}) | {row['tokens_per_second']} | "
                     f"{row['valid_perplexity']} | {row['trained']} |")
    lines += ["", "## CPU latency, replies of exactly 64 generated tokens", "",
              "| system | " + " | ".join(f"{s} p50 (ms) | {s} p95 (ms)" for s in LATENCY_STRATEGIES) + " |",
              "|---" * (1 + 2 * len(LATENCY_STRATEGIES)) + "|"]
    for name, row in latency.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[s]['p50_ms']} | {row[s]['p95_ms']}"
                                                 for s in LATENCY_STRATEGIES) + " |")
    lines += ["", "## GPU", "", f"bf16 training throughput: {gpu}" if gpu else
              "No GPU on this machine: the bf16 training throughput was not measured."]
    (RESULTS / "generation_bitext.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "generation_bitext.json").write_text(json.dumps(
        {"command": command, "meta": meta, "training": training, "latency": latency, "gpu": gpu,
         "quality": [asdict(r) for r in rows]}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
