"""How close must a corpus question be for the answer choice to send its answer? Leave-one-out
on the shop corpus's own single-turn pairs, in characters (TF-IDF) and in meaning (MiniLM).

Each pair's question is put to the other pairs of its language. The corpus answer *fires* when
the nearest question is at least the threshold close, is of the pair's intent, and its answer
says more than the intent's written response (token F1 below 0.45, as `template_overlap`). It
is *better* when the fired answer matches the pair's own answer (token F1 >= 0.5) and the
written response did not (F1 < 0.45), *worse* the other way round.

    .venv/bin/python benchmarks/corpus_answer.py

Results: benchmarks/results/corpus_answer.{md,json}.
"""

from __future__ import annotations

import itertools
import json
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
        nearest = int(similarity[index].argmax())
        answer, template = pairs[nearest]["answer"], templates[pair["intent"]]
        if (similarity[index, nearest] < threshold or pairs[nearest]["intent"] != pair["intent"]
                or token_f1(answer, template) >= TEMPLATE_OVERLAP):
            continue
        fires += 1
        right, template_right = (token_f1(answer, pair["answer"]) >= GOOD_ANSWER,
                                 token_f1(template, pair["answer"]) >= GOOD_TEMPLATE)
        better += right and not template_right
        worse += template_right and not right
    return {"fires": fires, "better": better, "worse": worse}


def main() -> None:
    encoder = WordEncoder(ENCODER, EncoderSettings(runtime="onnx"))
    rows = []
    for lang, path in CORPUS.items():
        templates = written_responses(lang)
        pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs = [p for p in pairs if p.get("intent") in templates and not p.get("context")]
        questions = [p["question"] for p in pairs]
        measures = {"characters": RetrievalIndex(questions, questions).similarities(questions)}
        if lang == "en":  # the encoder is English
            vectors = encoder.sentence_vectors(questions)
            measures["meaning"] = vectors @ vectors.T
        for measure, similarity in measures.items():
            for threshold in THRESHOLDS[measure]:
                rows.append({"language": lang, "measure": measure, "threshold": threshold, "pairs": len(pairs),
                             **counts(pairs, similarity, threshold, templates)})
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
    reproduce.save("corpus_answer", lines, {"command": command, "commit": commit, "date": date, "rows": rows})


if __name__ == "__main__":
    main()
