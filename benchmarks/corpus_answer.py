"""How close must a corpus question be for the answer choice to send its answer? Leave-one-out
on the shop corpus's own single-turn pairs, in characters (TF-IDF) and in meaning (MiniLM).

Each pair's question is put to the other pairs of its language. The corpus answer *fires* when
the nearest question is at least the threshold close, is of the pair's intent, and its answer
says more than the intent's written response (token F1 below 0.45, as `template_overlap`). It
is *better* when the fired answer matches the pair's own answer (token F1 >= 0.5) and the
written response did not (F1 < 0.45), *worse* the other way round.

Then on dev sets written for it (in no training file, not the held-out answer sets):
benchmarks/data/dev_specific_{en,zh}.yml, new questions whose right answer is a specific corpus
answer, and the shop questions of dev_intents_{en,zh}.yml, which their written response answers.
A specific question is *right* when the fired answer matches its answer (the same, or token F1
>= 0.5), *wrong* when another fires; a plain question that fires gets a corpus answer where its
written response was due. The nearest question is searched among all (as the policy does) or
only among the intent's own.

    .venv/bin/python benchmarks/corpus_answer.py

Results: benchmarks/results/corpus_answer.{md,json}.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import reproduce  # a sibling module
import yaml

from components.featurizers.encoder import EncoderSettings, WordEncoder
from components.generator.metrics import token_f1
from components.generator.retrieval import RetrievalIndex

ROOT = Path(__file__).resolve().parents[1]
CORPUS = {"en": ROOT / "data" / "corpus" / "shop_en.jsonl", "zh": ROOT / "data" / "corpus" / "shop_zh.jsonl"}
ENCODER = ROOT / ".kefu" / "encoders" / "all-minilm-l6-v2"
THRESHOLDS = {"characters": [0.3, 0.4, 0.5], "meaning": [0.45, 0.5, 0.55, 0.6, 0.65, 0.7]}
DEV_THRESHOLDS = {"characters": [0.2, 0.3, 0.4], "meaning": [0.45, 0.55, 0.65]}
SMALL_TALK = {"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "out_of_scope"}
TEMPLATE_OVERLAP, GOOD_ANSWER, GOOD_TEMPLATE = 0.45, 0.5, 0.45


def written_responses(lang: str) -> dict[str, str]:
    """Each intent's written response in `lang`, from the rules that answer it with one."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    text: dict[str, str] = {}
    for rule in yaml.safe_load((ROOT / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]:
        for step, after in itertools.pairwise(rule["steps"]):
            if "intent" in step and after.get("action", "").startswith("utter_") and step["intent"] not in text:
                variants = domain["responses"].get(after["action"], [])
                chosen = [v["text"] for v in variants if bool(v.get("condition")) == (lang != "en")]
                if chosen:
                    text[step["intent"]] = chosen[0]
    return text


def counts(pairs: list[dict], similarity: np.ndarray, threshold: float, templates: dict[str, str]) -> dict:
    similarity = similarity.copy()
    np.fill_diagonal(similarity, -1.0)  # never the pair itself
    fires = better = worse = 0
    for index, pair in enumerate(pairs):
        template = templates[pair["intent"]]
        answer = fired_answer(pairs, similarity[index], pair["intent"], threshold, template, among_intent=False)
        if answer is None:
            continue
        fires += 1
        right, template_right = (token_f1(answer, pair["answer"]) >= GOOD_ANSWER,
                                 token_f1(template, pair["answer"]) >= GOOD_TEMPLATE)
        better += right and not template_right
        worse += template_right and not right
    return {"fires": fires, "better": better, "worse": worse}


def fired_answer(pairs: list[dict], similarity: np.ndarray, intent: str, threshold: float, template: str,
                 among_intent: bool) -> str | None:
    """The corpus answer the choice would send for a question of `intent`, else None."""
    if among_intent:
        similarity = np.where([p["intent"] == intent for p in pairs], similarity, -1.0)
    nearest = int(similarity.argmax())
    if (similarity[nearest] < threshold or pairs[nearest]["intent"] != intent
            or token_f1(pairs[nearest]["answer"], template) >= TEMPLATE_OVERLAP):
        return None
    return pairs[nearest]["answer"]


def dev_rows(lang: str, measure: str, pairs: list[dict], similarities: Callable[[list[str]], np.ndarray],
             templates: dict[str, str]) -> list[dict]:
    data = ROOT / "benchmarks" / "data"
    specific = yaml.safe_load((data / f"dev_specific_{lang}.yml").read_text(encoding="utf-8"))["questions"]
    plain = [q for q in yaml.safe_load((data / f"dev_intents_{lang}.yml").read_text(encoding="utf-8"))["questions"]
             if q["intent"] in templates and q["intent"] not in SMALL_TALK]
    specific_similarity = similarities([q["text"] for q in specific])
    plain_similarity = similarities([q["text"] for q in plain])
    rows = []
    for threshold, among_intent in itertools.product(DEV_THRESHOLDS[measure], (False, True)):
        sent = [fired_answer(pairs, row, q["intent"], threshold, templates[q["intent"]], among_intent)
                for q, row in zip(specific, specific_similarity, strict=True)]
        right = sum(a is not None and (a == q["answer"] or token_f1(a, q["answer"]) >= GOOD_ANSWER)
                    for a, q in zip(sent, specific, strict=True))
        plain_fires = sum(fired_answer(pairs, row, q["intent"], threshold, templates[q["intent"]], among_intent)
                          is not None for q, row in zip(plain, plain_similarity, strict=True))
        rows.append({"language": lang, "measure": measure, "threshold": threshold,
                     "nearest_among": "the intent's" if among_intent else "all", "specific": len(specific),
                     "right": right, "wrong": sum(a is not None for a in sent) - right, "plain": len(plain),
                     "plain_fires": plain_fires})
    return rows


def main() -> None:
    encoder = WordEncoder(ENCODER, EncoderSettings(runtime="onnx"))
    rows, dev = [], []
    for lang, path in CORPUS.items():
        templates = written_responses(lang)
        pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs = [p for p in pairs if p.get("intent") in templates and not p.get("context")]
        questions = [p["question"] for p in pairs]
        measures: dict[str, Callable[[list[str]], np.ndarray]] = {
            "characters": RetrievalIndex(questions, questions).similarities}
        if lang == "en":  # the encoder is English
            vectors = encoder.sentence_vectors(questions)
            measures["meaning"] = lambda texts, vectors=vectors: encoder.sentence_vectors(texts) @ vectors.T
        for measure, similarities in measures.items():
            similarity = similarities(questions)
            for threshold in THRESHOLDS[measure]:
                rows.append({"language": lang, "measure": measure, "threshold": threshold, "pairs": len(pairs),
                             **counts(pairs, similarity, threshold, templates)})
            dev += dev_rows(lang, measure, pairs, similarities, templates)
    command = reproduce.command(__file__)
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# Corpus answers by leave-one-out on the corpus", "",
             f"{date}, commit {commit}. Characters: TF-IDF over character n-grams; meaning: cosine of MiniLM "
             "sentence vectors (English only).", "",
             "| language | measure | threshold | pairs | fires | better than the template | worse |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['language']} | {r['measure']} | {r['threshold']} | {r['pairs']} | {r['fires']} | {r['better']} "
              f"| {r['worse']} |" for r in rows]
    lines += ["", "## Dev sets: specific questions, and plain ones", "",
              "| language | measure | threshold | nearest among | specific: right / wrong | plain questions fired |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['language']} | {r['measure']} | {r['threshold']} | {r['nearest_among']} | {r['right']} / "
              f"{r['wrong']} of {r['specific']} | {r['plain_fires']} of {r['plain']} |" for r in dev]
    reproduce.save("corpus_answer", lines, {"command": command, "commit": commit, "date": date, "rows": rows,
                                            "dev": dev})


if __name__ == "__main__":
    main()
