"""Why does the transformer lose to the seq2seq on Bitext within a CPU budget? One change at a
time to benchmarks/configs/bitext_transformer.yml, each trained for the same minutes.

Variants: the shipped transformer; smaller (d_model 128, feed-forward 512, 2 encoder layers);
a faster schedule (learning rate 2e-3, warm-up 100 steps); untied output embeddings; no label
smoothing; a 2,000-token vocabulary; and the shipped seq2seq for reference. Each trains on
Bitext's train split (as benchmarks/generation_bitext.py builds it) for `--minutes`, stopping
early on the validation split as usual, and is scored on the first `--pairs` validation pairs
with greedy decoding (the test split stays untouched). Validation perplexity is per subword
token, so it compares only variants with the same tokenizer; chrF and BLEU compare all.

    .venv/bin/python benchmarks/transformer_ablation.py --minutes 5

Results: benchmarks/results/transformer_ablation.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

from components.generator.data import read_split
from components.generator.decoding import DecodingSettings
from components.generator.metrics import bleu, chrf, rouge_l
from components.generator.training import GeneratorConfig, train_generator

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "benchmarks" / "work" / "bitext_corpus"  # benchmarks/generation_bitext.py builds it
CONFIGS = ROOT / "benchmarks" / "configs"
# name -> (config file, what changes: model sizes, training settings, tokenizer settings)
VARIANTS: dict[str, tuple[str, dict, dict, dict]] = {
    "transformer (shipped)": ("bitext_transformer", {}, {}, {}),
    "smaller": ("bitext_transformer", {"d_model": 128, "feedforward": 512, "encoder_layers": 2}, {}, {}),
    "faster schedule": ("bitext_transformer", {}, {"learning_rate": 0.002, "warmup_steps": 100}, {}),
    "untied embeddings": ("bitext_transformer", {"tie_embeddings": False}, {}, {}),
    "no label smoothing": ("bitext_transformer", {}, {"label_smoothing": 0.0}, {}),
    "2,000-token vocabulary": ("bitext_transformer", {}, {}, {"vocab_size": 2000}),
    "seq2seq (shipped)": ("bitext_seq2seq", {}, {}, {}),
}


def variant_config(name: str, minutes: float) -> GeneratorConfig:
    file, model, training, tokenizer = VARIANTS[name]
    path = CONFIGS / f"{file}.yml"
    config = GeneratorConfig.from_dict(yaml.safe_load(path.read_text()), str(path))
    config.model = {**config.model, **model}
    config.training = replace(config.training, **training, max_minutes=minutes, threads=os.cpu_count() or 1,
                              calibration_examples=20, progress=False)
    config.tokenizer = replace(config.tokenizer, **tokenizer)
    config.decoding = DecodingSettings(strategy="greedy", no_repeat_ngram=4, max_length=320)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each variant")
    parser.add_argument("--pairs", type=int, default=200, help="validation pairs scored")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="train these variants only")
    args = parser.parse_args()
    train, valid = read_split(CORPUS, "train"), read_split(CORPUS, "valid")
    scored = valid[: args.pairs]
    references = [d.answer for d in scored]
    rows = []
    for name in args.only or VARIANTS:
        result = train_generator(train, valid, variant_config(name, args.minutes))
        replies = [r.text for r in result.generator.replies([d.question for d in scored])]
        best = result.history[result.best_epoch - 1]
        rows.append({"variant": name, "parameters": result.generator.parameter_count(),
                     "epochs": len(result.history), "best_epoch": result.best_epoch,
                     "tokens_per_second": round(statistics.median(h["tokens_per_second"] for h in result.history)),
                     "valid_perplexity": round(best["valid_perplexity"], 2),
                     "bleu": round(bleu(replies, references).score, 2),
                     "chrf": round(chrf(replies, references).score, 2),
                     "rouge_l": round(rouge_l(replies, references), 2)})
        print(rows[-1], flush=True)
    command = reproduce.command(__file__)
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# The transformer, one change at a time", "",
             f"{date}, commit {commit}, {os.cpu_count()} cores. Each variant trained for {args.minutes:g} minutes "
             f"on Bitext's train split ({len(train)} pairs); greedy replies to the first {len(scored)} validation "
             "pairs. Perplexity is per subword token: comparable only between variants with the same tokenizer.",
             "", "| variant | parameters | epochs (best) | tokens/s | valid perplexity | BLEU | chrF | ROUGE-L |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['parameters']:,} | {r['epochs']} ({r['best_epoch']}) | {r['tokens_per_second']} "
              f"| {r['valid_perplexity']} | {r['bleu']} | {r['chrf']} | {r['rouge_l']} |" for r in rows]
    reproduce.save("transformer_ablation", lines, {"command": command, "commit": commit, "date": date,
                                                   "minutes": args.minutes, "rows": rows})


if __name__ == "__main__":
    main()
