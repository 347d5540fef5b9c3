"""When NLU is unsure of a message, can the nearest corpus question name its intent? Chooses the
answer choice's `unsure_corpus_similarity` (characters) and `unsure_corpus_encoder_similarity`
(meaning).

Three views, none of them the held-out answer sets:
- *corpus, leave-one-out*: each single-turn corpus question (out-of-scope chat aside) put to the
  other pairs of its language; right when the nearest one has its intent;
- *dev intents*: benchmarks/data/dev_intents_{en,zh}.yml (two questions per intent);
- *not covered*: benchmarks/data/dev_coverage_{en,zh}.yml, shop questions the texts do not
  answer: every one that fires would get an answer where a person or a fallback was due.

A question *fires* when its nearest question is at least the threshold close. Meaning: cosine of
MiniLM sentence vectors (English, as `corpus_encoder`); characters: TF-IDF over character
n-grams (as `CorpusAnswers` for the other languages).

    .venv/bin/python benchmarks/unsure_messages.py

Results: benchmarks/results/unsure_messages.{md,json}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import numpy as np
import reproduce  # a sibling module
import yaml
from coverage import DATA, ENCODER, corpus_pairs

from components.featurizers.encoder import EncoderSettings, WordEncoder
from components.generator.retrieval import RetrievalIndex

THRESHOLDS = {"meaning": [0.6, 0.65, 0.7, 0.75, 0.8], "characters": [0.4, 0.45, 0.5, 0.55, 0.6]}
SKIPPED = {"out_of_scope"}  # the generator never learns them; their rule answers


def in_meaning(encoder: WordEncoder, questions: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
    """Texts -> their cosines with `questions`, [texts, questions]."""
    vectors = encoder.sentence_vectors(questions)
    return lambda texts: encoder.sentence_vectors(texts) @ vectors.T


def fired(similarity: np.ndarray, threshold: float) -> np.ndarray:
    return similarity.max(axis=1) >= threshold


def main() -> None:
    encoder = WordEncoder(ENCODER, EncoderSettings(runtime="onnx"))
    pairs = [p for p in corpus_pairs() if p.intent not in SKIPPED]
    rows = []
    for lang, measure in (("en", "meaning"), ("en", "characters"), ("zh", "characters")):
        chosen = [p for p in pairs if p.lang == lang]
        questions = [p.question for p in chosen]
        similarities = (in_meaning(encoder, questions) if measure == "meaning"
                        else RetrievalIndex(questions, questions).similarities)
        own = similarities(questions)
        np.fill_diagonal(own, -1.0)  # never the question itself
        dev = yaml.safe_load((DATA / f"dev_intents_{lang}.yml").read_text(encoding="utf-8"))["questions"]
        dev = [q for q in dev if q["intent"] not in SKIPPED]
        uncovered = yaml.safe_load((DATA / f"dev_coverage_{lang}.yml").read_text(encoding="utf-8"))["questions"]
        dev_similarity, uncovered_similarity = similarities([q["text"] for q in dev]), similarities(uncovered)
        for threshold in THRESHOLDS[measure]:
            row = {"language": lang, "measure": measure, "threshold": threshold}
            for name, similarity, intents in (("corpus", own, [p.intent for p in chosen]),
                                              ("dev", dev_similarity, [q["intent"] for q in dev])):
                fires = fired(similarity, threshold)
                nearest = similarity.argmax(axis=1)
                row[f"{name}_questions"] = len(intents)
                row[f"{name}_fires"] = int(fires.sum())
                row[f"{name}_right"] = int(sum(chosen[j].intent == intent
                                               for j, intent, fire in zip(nearest, intents, fires, strict=True)
                                               if fire))
            row["uncovered_questions"] = len(uncovered)
            row["uncovered_fires"] = int(fired(uncovered_similarity, threshold).sum())
            rows.append(row)
    command = reproduce.command(__file__)
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# Messages NLU is unsure of: the nearest corpus question's intent", "",
             f"{date}, commit {commit}. {len(pairs)} single-turn corpus pairs (out-of-scope chat aside). *Fires*: "
             "the nearest corpus question is at least the threshold close; *right*: it has the question's intent; "
             "*not covered, fires*: answered where a person or a fallback was due.", "",
             "| language | measure | threshold | corpus (leave-one-out): fires / right | dev intents: fires / right "
             "| not covered: fires |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['language']} | {r['measure']} | {r['threshold']} | {r['corpus_fires']} / {r['corpus_right']} "
              f"of {r['corpus_questions']} | {r['dev_fires']} / {r['dev_right']} of {r['dev_questions']} "
              f"| {r['uncovered_fires']} of {r['uncovered_questions']} |" for r in rows]
    reproduce.save("unsure_messages", lines, {"command": command, "commit": commit, "date": date, "rows": rows})


if __name__ == "__main__":
    main()
