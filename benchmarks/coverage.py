"""Can the answer choice tell a question the shop's texts cover from one they do not, by how
close its nearest corpus question is? Measured on dev sets written for it.

In scope: benchmarks/data/dev_intents_{en,zh}.yml without small talk and out-of-scope chat
(their templates answer whatever is close). Not covered: benchmarks/data/dev_coverage_{en,zh}.yml,
shop questions the facts and corpus do not answer. Neither is in a training file or in the
held-out answer sets. The nearest corpus question is found as `CorpusAnswers` finds it for the
policy (the single-turn pairs of data/corpus/*.jsonl): in meaning (MiniLM on ONNX Runtime) and
in characters (TF-IDF over character n-grams). A question *is flagged* when that nearest
question is below the threshold; flagged in-scope questions would get a person wrongly.

    .venv/bin/python benchmarks/coverage.py

Results: benchmarks/results/coverage.{md,json}.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml

from components.answers import CorpusAnswers, CorpusPair
from components.corpus import corpus_paths
from components.featurizers.encoder import EncoderSettings, WordEncoder
from components.text import detect_language

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
ENCODER = ROOT / ".kefu" / "encoders" / "all-minilm-l6-v2"
# answered by their templates whatever they resemble (`keep_template_intents`), or by their rule
NOT_CHECKED = {"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "out_of_scope"}
THRESHOLDS = {"meaning": [0.4, 0.45, 0.5, 0.55, 0.6], "characters": [0.2, 0.25, 0.3, 0.35, 0.4]}


def corpus_pairs() -> list[CorpusPair]:
    """The corpus's single-turn pairs with an intent, as the policy keeps them."""
    pairs = []
    for path in corpus_paths(str(ROOT / "data" / "corpus" / "*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            pair = json.loads(line) if line.strip() else {}
            if pair.get("answer") and pair.get("intent") and not pair.get("context"):
                pairs.append(CorpusPair(pair["question"], pair["answer"], pair["intent"],
                                        pair.get("lang") or detect_language(pair["question"])))
    return pairs


def dev_questions(lang: str) -> dict[str, list[str]]:
    in_scope = yaml.safe_load((DATA / f"dev_intents_{lang}.yml").read_text(encoding="utf-8"))["questions"]
    uncovered = yaml.safe_load((DATA / f"dev_coverage_{lang}.yml").read_text(encoding="utf-8"))["questions"]
    return {"in scope": [q["text"] for q in in_scope if q["intent"] not in NOT_CHECKED], "not covered": uncovered}


def main() -> None:
    pairs = corpus_pairs()
    encoder = WordEncoder(ENCODER, EncoderSettings(runtime="onnx"))
    measures = {"meaning": CorpusAnswers(pairs, encoder.sentence_vectors, ["en"]), "characters": CorpusAnswers(pairs)}
    rows, medians = [], []
    for lang in ("en", "zh"):
        sets = dev_questions(lang)
        for measure, corpus in measures.items():
            if measure == "meaning" and lang != "en":
                continue  # the encoder is English
            nearest = {name: [corpus.nearest(q, lang).similarity for q in questions]
                       for name, questions in sets.items()}
            medians.append({"language": lang, "measure": measure,
                            **{name: round(statistics.median(values), 3) for name, values in nearest.items()}})
            for threshold in THRESHOLDS[measure]:
                flagged = {name: sum(value < threshold for value in values) for name, values in nearest.items()}
                rows.append({"language": lang, "measure": measure, "threshold": threshold,
                             "in_scope": len(nearest["in scope"]), "in_scope_flagged": flagged["in scope"],
                             "not_covered": len(nearest["not covered"]),
                             "not_covered_flagged": flagged["not covered"]})
    command = reproduce.command(__file__)
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# Covered or not: the nearest corpus question", "",
             f"{date}, commit {commit}. {len(pairs)} single-turn corpus pairs. A question is flagged when its "
             "nearest corpus question is below the threshold: right for a question the shop's texts do not "
             "cover, a wrong hand-off for one in scope.", "",
             "| language | measure | median nearest, in scope | median nearest, not covered |", "|---|---|---|---|"]
    lines += [f"| {m['language']} | {m['measure']} | {m['in scope']} | {m['not covered']} |" for m in medians]
    lines += ["", "| language | measure | threshold | in scope flagged (wrong) | not covered flagged (right) |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['language']} | {r['measure']} | {r['threshold']} | {r['in_scope_flagged']} of {r['in_scope']} "
              f"| {r['not_covered_flagged']} of {r['not_covered']} |" for r in rows]
    reproduce.save("coverage", lines, {"command": command, "commit": commit, "date": date, "medians": medians,
                                       "rows": rows})


if __name__ == "__main__":
    main()
