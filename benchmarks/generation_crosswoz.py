"""Chinese reply generation on CrossWOZ: Kefu's generator against TF-IDF retrieval.

    .venv/bin/python benchmarks/generation_crosswoz.py            # the full run (see the results' first line)
    .venv/bin/python benchmarks/generation_crosswoz.py --quick    # a few minutes, to check the script; not saved
    .venv/bin/python benchmarks/generation_crosswoz.py --reuse    # score the models the last run saved, untrained
    .venv/bin/python benchmarks/generation_crosswoz.py --config crosswoz_seq2seq --out benchmarks/work/try1

Data: only CrossWOZ's val and test dialogues are at hand (500 each, read from their zip files).
Each user turn and the system reply after it make a pair, with up to the last four earlier turns
as its context (the config's `inputs.context_turns` says how many the model reads). The generators
learn from 90% of the val dialogues, stop early on the other 10% (whole dialogues held out, seeded)
and everyone is scored on the test dialogues. Each split goes through `kefu corpus build` on its own
(normalised, PII masked, de-duplicated), so no dialogue is split across train and test.

Systems: TF-IDF retrieval (the train answer of the most similar train question) and one generator
per `benchmarks/configs/<config>.yml`, each trained within its `max_minutes`, scored in the same run
on the same test pairs with `components.generator.evaluation` (full-length beam-4 replies; BLEU with
sacrebleu's zh tokeniser, chrF, ROUGE-L over characters). Replies that carry database values
(the values of the system turn's Inform/Recommend acts that appear in its text: names, addresses,
prices, ratings) are also scored apart, with the share of those values each system reproduces.
Results go to benchmarks/results/generation_crosswoz.{md,json}; models and corpus to benchmarks/work/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import torch
import yaml
from generation_bitext import RESULTS, ROOT, WORK  # a sibling module

from components.corpus import BuildConfig, build_corpus
from components.generator.data import Dialogue, read_split
from components.generator.evaluation import GeneratorSystem, RetrievalBaseline, evaluate_system, signatures
from components.generator.generator import ResponseGenerator
from components.generator.metrics import bleu, chrf, distinct_n, metric_tokens
from components.generator.training import GeneratorConfig, train_generator, training_report
from components.text import PiiMasker, normalise

CROSSWOZ = ROOT.parent / "shared" / "datasets" / "crosswoz" / "data" / "crosswoz"
CONFIGS = ROOT / "benchmarks" / "configs"
DEFAULT_CONFIGS = ["crosswoz_seq2seq_char"]  # the best of the attempts in docs/generation_crosswoz.md
CONTEXT_TURNS = 4  # earlier turns kept in each record
SEED = 13
VALID_FRACTION = 0.1  # of the val dialogues, held out for early stopping
VALUE_ACTS = ("Inform", "Recommend")  # system acts whose values come from the database


def read_dialogues(name: str) -> dict[str, dict]:
    """CrossWOZ's `{name}.json.zip`, read in place: dialogue id -> dialogue."""
    with zipfile.ZipFile(CROSSWOZ / f"{name}.json.zip") as archive:
        return json.loads(archive.read(f"{name}.json"))


def pair_records(dialogues: dict[str, dict], ids: Sequence[str]) -> tuple[list[dict], list[list[str]]]:
    """Kefu corpus records (user turn -> the system reply after it, with up to CONTEXT_TURNS earlier
    turns), and each reply's database values: Inform/Recommend act values that appear in its text."""
    records, values = [], []
    for dialogue_id in ids:
        messages = dialogues[dialogue_id]["messages"]
        turns = [m["content"] for m in messages]
        for i, (user, system) in enumerate(zip(messages, messages[1:], strict=False)):
            if user["role"] == "usr" and system["role"] == "sys":
                records.append({"question": user["content"], "answer": system["content"],
                                "context": turns[max(0, i - CONTEXT_TURNS): i], "lang": "zh"})
                values.append(sorted({act[3] for act in system["dialog_act"] if act[0] in VALUE_ACTS
                                      and len(act[3]) >= 2 and act[3] in system["content"]}))
    return records, values


def build_splits(corpus: Path, test_dialogues: int) -> tuple[dict[str, list[Dialogue]], dict, dict[str, list[str]]]:
    """train/valid/test.jsonl in `corpus` (for `kefu generator train` too), each built by the corpus
    pipeline from its own dialogues; returns the splits, their build figures, and the database
    values of each cleaned test answer."""
    val, test = read_dialogues("val"), read_dialogues("test")
    ids = sorted(val)
    random.Random(SEED).shuffle(ids)
    held_out = round(VALID_FRACTION * len(ids))
    chosen = {"train": (val, sorted(ids[held_out:])), "valid": (val, sorted(ids[:held_out])),
              "test": (test, sorted(test)[:test_dialogues])}
    corpus.mkdir(parents=True, exist_ok=True)
    figures, answer_values, masker = {}, {}, PiiMasker()
    for name, (dialogues, split_ids) in chosen.items():
        records, values = pair_records(dialogues, split_ids)
        raw = WORK / "crosswoz_raw" / f"{name}.jsonl"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        built = WORK / "crosswoz_build" / name
        report = build_corpus([raw], built, BuildConfig(seed=SEED, lang="zh", valid_fraction=0.0,
                                                        test_fraction=0.0, input_format="kefu"))
        shutil.copyfile(built / "train.jsonl", corpus / f"{name}.jsonl")
        figures[name] = {"dialogues": len(split_ids), "pairs": len(records), "kept": report.splits["train"]["pairs"],
                         "exact_duplicates": report.stages["exact_dedup"]["removed"],
                         "near_duplicates": report.stages["near_dedup"]["collapsed"],
                         "pii_masked": {k: v for k, v in report.pii_masked.items() if v}}
        if name == "test":  # the answers as the pipeline cleaned them
            for record, found in zip(records, values, strict=True):
                answer = masker.mask(normalise(record["answer"]))
                answer_values[answer] = sorted({*answer_values.get(answer, ()), *map(normalise, found)})
    return {name: read_split(corpus, name) for name in chosen}, figures, answer_values


def load_config(name: str, quick: bool) -> GeneratorConfig:
    path = CONFIGS / f"{name}.yml"
    config = GeneratorConfig.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    config.training = replace(config.training, threads=os.cpu_count() or 1, progress=False)
    if quick:
        config.training = replace(config.training, epochs=1, max_minutes=1.0, threads=1, calibration_examples=20)
        config.decoding = replace(config.decoding, max_length=32)
    return config


class Recorded:
    """Keeps the replies of the first call: evaluate_system's scoring pass over the whole test split."""

    hypotheses: list[str] | None = None

    def replies(self, questions: Sequence[str], contexts: Sequence[Sequence[str]] = ()) -> list[str]:
        texts = super().replies(questions, contexts)
        if self.hypotheses is None:
            self.hypotheses = texts
        return texts


class RecordedRetrieval(Recorded, RetrievalBaseline):
    pass


class RecordedGenerator(Recorded, GeneratorSystem):
    pass


def value_scores(hypotheses: list[str], test: list[Dialogue], answer_values: dict[str, list[str]]) -> dict:
    """Replies whose reference carries database values, scored apart from the rest, and the share
    of those values that the system's reply contains verbatim."""
    values = [[v for v in answer_values.get(d.answer, ()) if v in d.answer] for d in test]
    with_values = [i for i, found in enumerate(values) if found]
    without = [i for i, found in enumerate(values) if not found]
    wanted = sum(len(values[i]) for i in with_values)
    reproduced = sum(value in hypotheses[i] for i in with_values for value in values[i])

    def scores(indices: list[int]) -> dict[str, float]:
        hyps, refs = [hypotheses[i] for i in indices], [test[i].answer for i in indices]
        return {"pairs": len(indices), "bleu": round(bleu(hyps, refs).score, 2),
                "chrf": round(chrf(hyps, refs).score, 2)}

    return {"value_recall": round(100 * reproduced / max(wanted, 1), 2), "values": wanted,
            "with_values": scores(with_values), "without_values": scores(without)}


def train_or_reuse(name: str, train: list[Dialogue], valid: list[Dialogue], args: argparse.Namespace,
                   stamp: str) -> tuple[ResponseGenerator, dict]:
    folder = WORK / name
    if args.reuse:
        report = json.loads((folder / "training.json").read_text())
        return ResponseGenerator.load(folder, device="cpu"), report
    config = load_config(name, args.quick)
    result = train_generator(train, valid, config)
    report = training_report(result, config)
    report["trained"] = stamp
    if not args.quick:
        result.generator.save(folder)
        (folder / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return result.generator, report


def training_row(name: str, report: dict, generator: ResponseGenerator) -> dict:
    config, history = report["config"], report["history"]
    limit = config["training"]["max_minutes"]
    out_of_time = history[-1]["seconds"] >= 60 * limit if limit and "seconds" in history[-1] else \
        len(history) < config["training"]["epochs"]
    stopped = "early stopping" if report["stopped_early"] else f"{limit}-minute limit" if out_of_time else "epoch limit"
    return {"config": name, "architecture": generator.architecture, "parameters": report["parameters"],
            "vocabulary": generator.tokenizer.vocab_size, "context_turns": config["inputs"]["context_turns"],
            "learning_rate": config["training"]["learning_rate"], "seconds": round(report["seconds"]),
            "epochs": len(history), "best_epoch": report["best_epoch"], "stopped_by": stopped,
            "valid_perplexity": round(history[report["best_epoch"] - 1]["valid_perplexity"], 2),
            "tokens_per_second": round(statistics.median(h["tokens_per_second"] for h in history)),
            "trained": report["trained"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script; nothing is saved")
    parser.add_argument("--config", action="append", default=[],
                        help=f"a generator config in benchmarks/configs (repeatable; default: {DEFAULT_CONFIGS})")
    parser.add_argument("--test-dialogues", type=int, default=500, help="score the first N test dialogues")
    parser.add_argument("--reuse", action="store_true",
                        help="score the models the last run saved in benchmarks/work instead of training them")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for generation_crosswoz.{md,json}")
    args = parser.parse_args()
    command = reproduce.command(__file__)
    started = time.perf_counter()
    names = args.config or DEFAULT_CONFIGS
    commit = reproduce.commit()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")

    splits, figures, answer_values = build_splits(WORK / "crosswoz_corpus", args.test_dialogues)
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    if args.quick:
        train, valid, test = train[::20], valid[::10], test[::40]
    print({name: (figures[name]["dialogues"], figures[name]["kept"]) for name in figures}, flush=True)

    start = time.perf_counter()
    systems = [RecordedRetrieval(train)]
    seconds = {systems[0].name: round(time.perf_counter() - start, 1)}
    training = []
    for name in names:
        generator, report = train_or_reuse(name, train, valid, args, f"{today}, {commit}")
        training.append(training_row(name, report, generator))
        print(training[-1], flush=True)
        system = RecordedGenerator(generator, f"{generator.architecture} ({name})")
        systems.append(system)
        seconds[system.name] = training[-1]["seconds"]

    rows, values = [], {}
    for system in systems:
        start = time.perf_counter()
        rows.append(evaluate_system(system, test, latency_samples=10))
        values[system.name] = value_scores(system.hypotheses, test, answer_values)
        print(f"{system.name}: scored in {time.perf_counter() - start:.0f} s", asdict(rows[-1]), values[system.name],
              flush=True)
    samples = WORK / ("crosswoz_replies_quick.jsonl" if args.quick else "crosswoz_replies.jsonl")
    samples.write_text("".join(json.dumps({"context": d.context, "question": d.question, "answer": d.answer,
                                           **{s.name: s.hypotheses[i] for s in systems}}, ensure_ascii=False) + "\n"
                               for i, d in enumerate(test)), encoding="utf-8")
    references = [d.answer for d in test]
    reference = {"distinct_2": round(distinct_n(references, 2), 2),
                 "mean_length": round(sum(len(metric_tokens(r)) for r in references) / len(references), 2)}
    signature = signatures(test)
    minutes = round((time.perf_counter() - started) / 60, 1)
    meta = {"date": today, "commit": commit, "minutes": minutes,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
            "pairs": {"train": len(train), "valid": len(valid), "test": len(test)}, "splits": figures}
    quality = [{**asdict(row), "training_seconds": seconds[row.system]} for row in rows]
    result = {"command": command, "meta": meta, "signatures": signature, "reference": reference,
              "training": training, "quality": quality, "database_values": values}
    if args.quick:
        print("--quick: results are not saved")
        print(json.dumps(result, indent=1, ensure_ascii=False))
        return

    reused = "scores the models an earlier run saved in `benchmarks/work/`, with the training figures it recorded"
    note = (reused if args.reuse else
            f"builds the corpus, trains {len(names)} generator{'s' if len(names) > 1 else ''} and scores "
            f"everything: {minutes} minutes on {os.cpu_count()} cores; `--reuse` scores the saved models")
    split_line = "; ".join(f"{name} {f['dialogues']} dialogues, {f['pairs']} pairs, {f['kept']} kept"
                           for name, f in figures.items())
    lines = [*reproduce.lines(command, note), "", "# Chinese reply generation on CrossWOZ", "",
             f"`benchmarks/generation_crosswoz.py` on {meta['machine']}, {today}, commit {commit}; "
             f"the whole run took {minutes} minutes.",
             f"Only CrossWOZ's val and test dialogues are available: generators train on 90% of the val dialogues, "
             f"stop early on the other 10% (seed {SEED}) and everyone is scored on the test dialogues. Pairs: each "
             f"user turn -> the system reply after it, with up to {CONTEXT_TURNS} earlier turns as context. Each "
             "split went through `kefu corpus build` on its own (normalised, PII masked, exact and near-duplicate "
             f"pairs dropped): {split_line}."
             + (f" Scored on {len(test)} test pairs." if args.test_dialogues < 500 else ""),
             f"BLEU: sacrebleu `{signature['bleu']}`; chrF: `{signature['chrf']}`. ROUGE-L, distinct-2 and "
             "length count each Chinese character as a token (other words and punctuation marks one each). "
             "Generators decode with beam 4, full length; retrieval's training time is its TF-IDF index.", "",
             "| system | BLEU | chrF | ROUGE-L | distinct-2 | avg length | training time (s) |",
             "|---|---|---|---|---|---|---|"]
    for row in quality:
        lines.append(f"| {row['system']} | {row['bleu']:.2f} | {row['chrf']:.2f} | {row['rouge_l']:.2f} | "
                     f"{row['distinct_2']:.2f} | {row['mean_length']:.1f} | {row['training_seconds']} |")
    lines.append(f"| (reference replies) | – | – | – | {reference['distinct_2']:.2f} | {reference['mean_length']:.1f} "
                 "| – |")
    first = next(iter(values.values()))
    lines += ["", "## Replies that carry database values", "",
              f"{first['with_values']['pairs']} test replies contain values of their Inform/Recommend acts "
              f"({first['values']} values: names, addresses, prices, ratings, times), "
              f"{first['without_values']['pairs']} do not. Value recall: the share of those values that the "
              "system's reply contains verbatim.", "",
              "| system | value recall % | BLEU (with values) | chrF (with values) | BLEU (without) | chrF (without) |",
              "|---|---|---|---|---|---|"]
    for name, found in values.items():
        lines.append(f"| {name} | {found['value_recall']:.1f} | {found['with_values']['bleu']:.2f} | "
                     f"{found['with_values']['chrf']:.2f} | {found['without_values']['bleu']:.2f} | "
                     f"{found['without_values']['chrf']:.2f} |")
    lines += ["", "## Training", "", "Training stops at the config's epochs or after its `max_minutes` of wall-clock "
              "time, whichever comes first, so on a busy machine fewer epochs fit and the scores drop "
              "(docs/generation_crosswoz.md has a run of this config under load).", "",
              "| config | architecture | parameters | vocabulary | context turns | "
              "learning rate | epochs (best) | stopped by | valid perplexity | tokens/s (median epoch) | "
              "training (s) | trained (date, commit) |", "|---" * 12 + "|"]
    for row in training:
        lines.append(f"| `{row['config']}` | {row['architecture']} | {row['parameters']:,} | {row['vocabulary']} | "
                     f"{row['context_turns']} | {row['learning_rate']} | {row['epochs']} ({row['best_epoch']}) | "
                     f"{row['stopped_by']} | {row['valid_perplexity']} | {row['tokens_per_second']} | "
                     f"{row['seconds']} | {row['trained']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation_crosswoz.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / "generation_crosswoz.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                       encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
