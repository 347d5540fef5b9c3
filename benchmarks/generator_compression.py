"""Generator compression on Bitext: the shipped seq2seq in fp32 next to its int8 and pruned copies.

    .venv/bin/python benchmarks/generator_compression.py               # trains the seq2seq first (about 25 minutes)
    .venv/bin/python benchmarks/generator_compression.py --model DIR   # compresses a trained fp32 Bitext seq2seq
    .venv/bin/python benchmarks/generator_compression.py --quick       # a few minutes, to check the script; not saved

Steps: the Bitext split of benchmarks/generation_bitext.py (`kefu corpus build`, seed 13, 80/10/10); the
seq2seq trains from benchmarks/configs/bitext_seq2seq.yml on one thread within `--minutes`; each variant
is compressed with `ResponseGenerator.compress`, saved, packed as .tar.gz (gzip level 6, as `tar czf`
ships it) and loaded back from its folder, as the policy loads it; every variant answers the whole test
split with greedy decoding (as the policy decodes), scored by components.generator.metrics; latency is
one reply at a time forced to exactly 64 generated tokens, the variants taking turns on each question
(generation_bitext.interleaved_latency), so that the machine's drifting speed falls on all alike.
Everything runs on one thread. Last, int8 arithmetic is timed against the float weights: the int8
folder with torch's dynamic quantization on the modules it can reach, and the output layer's
matrix product alone. Results: benchmarks/results/generator_compression.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tarfile
import time
import warnings
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import torch
from generation_bitext import BITEXT, RESULTS, WORK, interleaved_latency, load_config  # a sibling
from torch.nn import functional as F

from components.corpus import BuildConfig, build_corpus
from components.generator.compression import CompressionSettings, sparsity
from components.generator.data import Dialogue, read_split
from components.generator.evaluation import GeneratorSystem, signatures
from components.generator.generator import ResponseGenerator
from components.generator.metrics import bleu, chrf, rouge_l
from components.generator.training import train_generator

VARIANTS: dict[str, CompressionSettings | None] = {
    "fp32": None,
    "int8": CompressionSettings(int8=True),
    "pruned 30%": CompressionSettings(prune=0.3),
    "pruned 50%": CompressionSettings(prune=0.5),
    "int8 + pruned 30%": CompressionSettings(int8=True, prune=0.3),
}
INT8_RUNTIME = "int8, run in int8 (torch dynamic)"
# the modules torch's dynamic quantization can swap without changing the model: the decoder's GRU
# step, the attention keys and the tied output layer read their weights directly, so they stay float
DYNAMIC_MODULES = ("encoder", "combine", "to_embedding")
OUT = WORK / "compression"


def archive_bytes(folder: Path) -> int:
    """The folder as it ships: a .tar.gz beside it, gzip level 6 (the `tar czf` default)."""
    archive = folder.with_suffix(".tar.gz")
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=folder.name)
    return archive.stat().st_size


def folder_megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20


def run_in_int8(generator: ResponseGenerator) -> ResponseGenerator:
    """A copy whose reachable modules run int8 matrix products (per-channel weights, activations
    quantised on the fly): what "run in int8" can mean for this model without changing it."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        model = quantize_dynamic(generator.model, {name: per_channel_dynamic_qconfig for name in DYNAMIC_MODULES},
                                 dtype=torch.qint8)
    return ResponseGenerator(model, generator.tokenizer, generator.inputs, generator.decoding,
                             generator.calibration, "cpu")


def output_layer_microseconds(generator: ResponseGenerator, rows: int, repeats: int = 3000) -> dict[str, float]:
    """Median µs of the output layer's product (the largest of a decoding step) for `rows` decoder
    states: float weights against torch's int8 dynamic linear, taking turns."""
    weight = generator.model.embedding.weight.detach()
    states = torch.randn(rows, weight.size(1))
    scales = weight.abs().amax(dim=1).double().clamp(min=1e-12) / 127
    quantized = torch.quantize_per_channel(weight, scales, torch.zeros(weight.size(0), dtype=torch.long), 0,
                                           torch.qint8)
    packed = torch.ops.quantized.linear_prepack(quantized, None)
    products = {"fp32": lambda: F.linear(states, weight),
                "int8": lambda: torch.ops.quantized.linear_dynamic(states, packed)}
    seconds: dict[str, list[float]] = {name: [] for name in products}
    for _ in range(repeats):
        for name, product in products.items():
            start = time.perf_counter()
            product()
            seconds[name].append(time.perf_counter() - start)
    return {name: round(1e6 * statistics.median(values), 1) for name, values in seconds.items()}


def train_seq2seq(train: list[Dialogue], valid: list[Dialogue], minutes: float, quick: bool,
                  folder: Path) -> tuple[ResponseGenerator, dict]:
    config = load_config("seq2seq", quick)
    config.training = replace(config.training, threads=1, progress=False,
                              max_minutes=config.training.max_minutes if quick else minutes)
    result = train_generator(train, valid, config)
    result.generator.save(folder)
    best = result.history[result.best_epoch - 1]
    return result.generator, {"seconds": round(result.seconds), "epochs": len(result.history),
                              "best_epoch": result.best_epoch, "valid_perplexity": round(best["valid_perplexity"], 2),
                              "max_minutes": config.training.max_minutes, "threads": 1}


def score(generator: ResponseGenerator, test: list[Dialogue]) -> tuple[dict[str, float], list[str]]:
    system = GeneratorSystem(generator, "", replace(generator.decoding, strategy="greedy"))
    hypotheses = system.replies([d.question for d in test], [d.context for d in test])
    references = [d.answer for d in test]
    return ({"bleu": round(bleu(hypotheses, references).score, 2), "chrf": round(chrf(hypotheses, references).score, 2),
             "rouge_l": round(rouge_l(hypotheses, references), 2)}, hypotheses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="a trained fp32 Bitext seq2seq folder to compress instead of training one")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget (one thread)")
    parser.add_argument("--latency-samples", type=int, default=50, help="test questions timed, one reply each")
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script; nothing is saved")
    args = parser.parse_args()
    command = reproduce.command(__file__)
    torch.set_num_threads(1)  # a replica's share of this two-core machine; also what training may use here

    corpus = WORK / "bitext_corpus"
    build_corpus([BITEXT], corpus, BuildConfig(seed=13, valid_fraction=0.1, test_fraction=0.1))
    train, valid, test = (read_split(corpus, name) for name in ("train", "valid", "test"))
    if args.quick:
        train, valid, test = train[::36], valid[::20], test[::40]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                            text=True).stdout.strip()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    OUT.mkdir(parents=True, exist_ok=True)
    training = None
    if args.model:
        fp32 = ResponseGenerator.load(args.model, device="cpu")
        if fp32.compression:
            parser.error(f"{args.model} is already compressed ({fp32.compression.describe()}); give an fp32 model")
        fp32.save(OUT / "fp32")
    else:
        fp32, training = train_seq2seq(train, valid, args.minutes, args.quick, OUT / "fp32")
        training["trained"] = f"{today}, {commit}"
        print("trained", training, flush=True)

    generators: dict[str, ResponseGenerator] = {}
    sizes: dict[str, dict[str, float]] = {}
    for name, settings in VARIANTS.items():
        folder = OUT / name.replace(" ", "_").replace("%", "").replace("+", "and")
        if settings:
            copy = ResponseGenerator.load(OUT / "fp32", device="cpu")
            copy.compress(settings)
            copy.save(folder)
        generators[name] = ResponseGenerator.load(folder, device="cpu")  # as the policy loads it
        sizes[name] = {"archive_bytes": archive_bytes(folder), "folder_mb": round(folder_megabytes(folder), 2),
                       "sparsity": round(sparsity(generators[name].model), 3)}
    generators[INT8_RUNTIME] = run_in_int8(generators["int8"])
    sizes[INT8_RUNTIME] = sizes["int8"]

    quality, replies = {}, {}
    for name, generator in generators.items():
        start = time.perf_counter()
        quality[name], replies[name] = score(generator, test)
        quality[name]["same_as_fp32"] = round(100 * statistics.fmean(
            a == b for a, b in zip(replies[name], replies["fp32"], strict=True)), 1)
        print(name, sizes[name], quality[name], f"{time.perf_counter() - start:.0f} s", flush=True)

    questions = [d.question for d in test[: args.latency_samples]]
    latency = interleaved_latency(generators, questions, rounds=2)
    output_layer = {f"{rows} row(s)": output_layer_microseconds(generators["fp32"], rows) for rows in (1, 4)}
    meta = {"date": today, "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
            "pairs": {"train": len(train), "valid": len(valid), "test": len(test)},
            "parameters": fp32.parameter_count(), "model": asdict(fp32.model.config)}
    rows = [{"variant": name, **sizes[name], "archive_mb": round(sizes[name]["archive_bytes"] / 2**20, 2),
             "archive_vs_fp32": round(sizes[name]["archive_bytes"] / sizes["fp32"]["archive_bytes"], 3),
             **quality[name], "greedy": latency[name]["greedy"]["traced"],
             "beam 4": latency[name]["beam 4"]["traced"]} for name in generators]
    if args.quick:
        print("--quick: results are not saved")
        print(json.dumps({"training": training, "rows": rows, "output_layer_us": output_layer}, indent=1))
        return
    write_results(command, args, meta, training, rows, output_layer, signatures(test))


def write_results(command: str, args: argparse.Namespace, meta: dict, training: dict | None, rows: list[dict],
                  output_layer: dict, signature: dict[str, str]) -> None:
    note = (f"compresses the fp32 model in `{args.model}`" if args.model else
            f"trains the seq2seq for up to {args.minutes:g} minutes on one thread, then compresses it; about "
            f"{args.minutes + 6:.0f} minutes in all")
    fp32, int8 = rows[0], rows[1]
    lines = [*reproduce.lines(command, note), "", "# Generator compression on Bitext", "",
             f"`benchmarks/generator_compression.py` on {meta['machine']}, {meta['date']}, commit {meta['commit']}. "
             f"The seq2seq of `benchmarks/configs/bitext_seq2seq.yml` ({meta['parameters']:,} parameters), "
             f"Bitext split by `kefu corpus build` (seed 13, 80/10/10): train {meta['pairs']['train']}, "
             f"valid {meta['pairs']['valid']}, test {meta['pairs']['test']} pairs.", "",
             "Quality: the whole test split, greedy decoding (as the policy decodes) with the model's other "
             f"settings, full length. BLEU: sacrebleu `{signature['bleu']}`; chrF: `{signature['chrf']}`; "
             "ROUGE-L on lower-cased words and punctuation. \"same\": replies identical to fp32's. Archive: the "
             "model folder as .tar.gz (gzip level 6). Latency: one reply at a time, forced to exactly 64 "
             f"generated tokens, on the first {args.latency_samples} test questions, twice, the variants taking "
             "turns on each question. Each folder is loaded back as the policy loads it, to float weights; only the "
             "last row then runs some of them in int8 (see below).", "",
             "| variant | archive (MB) | vs fp32 | folder (MB) | zeros | BLEU | chrF | ROUGE-L | same % "
             "| greedy p50 (ms) | greedy p95 (ms) | beam 4 p50 (ms) |", "|---|" + "---|" * 11]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['archive_mb']} | {row['archive_vs_fp32']:.0%} | {row['folder_mb']} | "
                     f"{row['sparsity']:.0%} | {row['bleu']} | {row['chrf']} | {row['rouge_l']} | "
                     f"{row['same_as_fp32']} | {row['greedy']['p50_ms']} | {row['greedy']['p95_ms']} | "
                     f"{row['beam 4']['p50_ms']} |")
    size_ok = int8["archive_vs_fp32"] <= 0.30
    bleu_ok = abs(int8["bleu"] - fp32["bleu"]) <= 0.5
    lines += ["", "## Targets", "",
              f"- int8 archive at most 30% of fp32's: {int8['archive_vs_fp32']:.1%} "
              f"({'met' if size_ok else 'not met'}).",
              f"- int8 BLEU within 0.5 of fp32: {int8['bleu']} vs {fp32['bleu']}, "
              f"{int8['bleu'] - fp32['bleu']:+.2f} ({'met' if bleu_ok else 'not met'}).",
              "", "## Running in int8", "",
              f"The row \"{INT8_RUNTIME}\" is the int8 folder with torch's dynamic quantization "
              "(per-channel weights, activations quantised on the fly) on "
              f"{', '.join(DYNAMIC_MODULES)}: the modules it can swap without changing the model. The output "
              "layer (tied to the embedding), the attention keys "
              "and the decoder's GRU step read their weights directly, and stay float. The output layer's product "
              "alone, median µs over 3,000 turns each:", "",
              "| decoder states | fp32 | int8 (dynamic) |", "|---|---|---|"]
    for rows_name, timing in output_layer.items():
        lines.append(f"| {rows_name} | {timing['fp32']} | {timing['int8']} |")
    if training:
        lines += ["", "## Training", "",
                  f"{training['epochs']} epochs (best {training['best_epoch']}) in {training['seconds']} s on "
                  f"{training['threads']} thread (budget {training['max_minutes']:g} min), valid perplexity "
                  f"{training['valid_perplexity']}; trained {training['trained']}."]
    markdown = "\n".join(lines) + "\n"
    (RESULTS / "generator_compression.md").write_text(markdown, encoding="utf-8")
    (RESULTS / "generator_compression.json").write_text(json.dumps(
        {"command": command, "meta": meta, "training": training, "rows": rows, "output_layer_us": output_layer,
         "signatures": signature}, indent=2) + "\n", encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
