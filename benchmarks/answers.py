"""Is the answer acceptable? Customer questions held out of every training file, each labelled
with the answers a shop would accept, put to whole assistants.

    .venv/bin/python benchmarks/answers.py                       # trains the three systems, then asks
    .venv/bin/python benchmarks/answers.py --model full=models/x.tar.gz   # that model instead of training `full`
    .venv/bin/python benchmarks/answers.py --model ... --choice corpus_similarity=0.3   # another threshold

Systems: `templates` is config.yml without the generative policy (every answer is a written
response or fallback); `full` is config.yml as it ships, with its answer choice; `full-rag` is
`full` with retrieval-augmented generation.
`generator` and `generator-rag` are those models with their answer choice switched off after
loading (the generator answers only what no rule answers), so each pair differs only by the
choice. Each question opens a new conversation on a running action server. An answer is
*acceptable* when a reply contains one of the question's key phrases, or the bot used an
accepted written response, or it handed over (or offered to) where a hand-off is accepted, or
it fell back where that is accepted; *fallback* when it fell back (utter_default) where that
is not accepted; *wrong* otherwise. The sets
(benchmarks/data/answers_{en,zh}.yml) compare systems; nothing is tuned on them.
Results: benchmarks/results/answers.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import subprocess
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml
from latency import BIN, ENV, action_server

from components.answers import ChoiceSettings
from components.loaded_components import loaded_components

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "answers"
SETS = {"en": ROOT / "benchmarks" / "data" / "answers_en.yml", "zh": ROOT / "benchmarks" / "data" / "answers_zh.yml"}
POLICY = "components.policies.GenerativeResponsePolicy"
# utter_complaint and the utter_offer_handoff responses offer a person
AFTER_ANSWER_OFFER = "utter_offer_handoff_after_answer"  # the offer after an answer (unknown_word_offer)
HANDOFF_ACTIONS = {"action_human_handoff", "utter_complaint", "utter_handoff", "utter_offer_handoff",
                   "utter_offer_handoff_overdue", AFTER_ANSWER_OFFER}
# a clarifying question answers nothing yet, so it counts as a fallback
FALLBACK_ACTIONS = {"utter_default", "action_default_fallback", "utter_clarify"}
TRAINED_SYSTEMS = ("templates", "full", "full-rag")
# full-rag: the generator reads the answers of the two nearest corpus questions and can copy from them.
RETRIEVAL = {"k": 2, "max_evidence_tokens": 96}


def system_config(name: str) -> dict:
    """config.yml as `name` runs it: without the generative policy (templates), as it ships
    (full), or with retrieval-augmented generation (full-rag)."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    if name == "templates":
        config["policies"] = [p for p in config["policies"] if p["name"] != POLICY]
        return config
    policy = next(p for p in config["policies"] if p["name"] == POLICY)
    if not policy.get("answer_choice"):
        raise SystemExit("config.yml's GenerativeResponsePolicy has no answer_choice: the full systems need one")
    if name == "full-rag":
        policy["model"] = {**(policy.get("model") or {}), "copy_attention": True}
        policy["retrieval"] = RETRIEVAL
    return config


def train_system(name: str) -> Path:
    config = system_config(name)
    path = WORK / f"config-{name}.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with (WORK / f"train-{name}.log").open("w") as log:
        subprocess.run([str(BIN / "rasa"), "train", "--config", str(path), "--domain", "domain.yml", "--data", "data",
                        "--out", str(WORK), "--fixed-model-name", name], cwd=ROOT, stdout=log, stderr=log, env=ENV,
                       check=True)
    return WORK / f"{name}.tar.gz"


def judge(question: dict, texts: list[str], actions: list[str]) -> str:
    accept = question["accept"]
    said = " ".join(texts).lower()
    if any(phrase.lower() in said for phrase in accept.get("contains") or []):
        return "acceptable"
    if set(accept.get("responses") or []) & set(actions):
        return "acceptable"
    if accept.get("handoff") and HANDOFF_ACTIONS & set(actions):
        return "acceptable"
    fell_back = bool(FALLBACK_ACTIONS & set(actions)) or not texts
    if fell_back:
        return "acceptable" if accept.get("fallback") else "fallback"
    return "wrong"


def switch_off_answer_choice(agent) -> None:  # noqa: ANN001 - rasa.core.agent.Agent
    """The generative policy as it was before the answer choice: only what no rule answers."""
    from components.policies import GenerativeResponsePolicy

    for policy in loaded_components(agent.processor, GenerativeResponsePolicy).values():
        policy.chooser = None
        policy.priority = policy.config["priority"]


def override_answer_choice(agent, overrides: dict[str, object]) -> None:  # noqa: ANN001 - rasa.core.agent.Agent
    """Thresholds of a trained model's answer choice, set anew: they are read when it answers, not learnt."""
    from components.policies import GenerativeResponsePolicy

    for policy in loaded_components(agent.processor, GenerativeResponsePolicy).values():
        if policy.chooser:
            policy.chooser.settings = dataclasses.replace(policy.chooser.settings, **overrides)


async def ask_all(model: Path, endpoints: Path, questions: list[dict], label: str,
                  overrides: dict[str, object] | None = None) -> list[dict]:
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    agent = await load_agent(model_path=str(model), endpoints=AvailableEndpoints.read_endpoints(str(endpoints)))
    if label.startswith("generator-"):
        switch_off_answer_choice(agent)
    elif overrides:
        override_answer_choice(agent, overrides)
    outcomes = []
    for number, question in enumerate(questions):
        sender = f"answers-{label}-{number}"
        await agent.handle_text(question["text"], sender_id=sender)
        tracker = await agent.tracker_store.retrieve(sender)
        events = list(tracker.events)
        last_user = max(i for i, e in enumerate(events) if isinstance(e, UserUttered))
        turn = events[last_user + 1:]
        actions = [e.action_name for e in turn if isinstance(e, ActionExecuted) and e.action_name]
        actions += [e.metadata.get("utter_action") for e in turn if isinstance(e, BotUttered) and e.metadata
                    and e.metadata.get("utter_action")]
        texts = [e.text for e in turn if isinstance(e, BotUttered) and e.text]
        choice = next((e.metadata["answer_choice"] for e in turn if isinstance(e, ActionExecuted) and e.metadata
                       and e.metadata.get("answer_choice")), None)
        outcome = judge(question, texts, actions)
        offered_after = AFTER_ANSWER_OFFER in actions
        if offered_after:
            # the same answer without the offer: how many answers only the offer makes acceptable
            answer_only = judge(question, texts[:-1], [a for a in actions if a != AFTER_ANSWER_OFFER])
        outcomes.append({"text": question["text"], "kind": question["kind"], "intent": question["intent"],
                         "predicted_intent": events[last_user].intent_name, "actions": actions, "replies": texts,
                         "answer_choice": choice, "outcome": outcome,
                         "offered_after_answer": offered_after,
                         "answer_alone": answer_only if offered_after else outcome})
    return outcomes


def shares(outcomes: list[dict]) -> dict[str, float]:
    counts = Counter(o["outcome"] for o in outcomes)
    return {kind: round(100 * counts[kind] / len(outcomes), 1) for kind in ("acceptable", "wrong", "fallback")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="score this trained model instead of training that system (templates, full)")
    parser.add_argument("--choice", action="append", default=[], metavar="SETTING=VALUE",
                        help="a threshold of the answer choice for the full systems, in place of the trained one")
    args = parser.parse_args()
    try:
        overrides = {key: float(value) for key, value in (item.split("=", 1) for item in args.choice)}
        dataclasses.replace(ChoiceSettings(), **overrides)
    except (ValueError, TypeError) as error:
        parser.error(f"--choice takes SETTING=NUMBER of the answer choice's settings: {error}")
    command = reproduce.command(__file__)
    WORK.mkdir(parents=True, exist_ok=True)
    given = dict(item.split("=", 1) for item in args.model)
    models = {name: given.get(name) or str(train_system(name)) for name in TRAINED_SYSTEMS}
    # Each full model also runs with its answer choice switched off: the generator answers only
    # what no rule answers (generator, generator-rag).
    rows = {"templates": models["templates"]}
    for name in TRAINED_SYSTEMS[1:]:
        rows[name.replace("full", "generator")] = models[name]
        rows[name] = models[name]
    models = rows
    sets = {lang: yaml.safe_load(path.read_text(encoding="utf-8"))["questions"] for lang, path in SETS.items()}
    results: dict[str, dict[str, list[dict]]] = {}
    with action_server(WORK / "actions.log") as endpoints:
        for name, model in models.items():
            results[name] = {lang: asyncio.run(ask_all(Path(model), endpoints, questions, f"{name}-{lang}",
                                                       overrides))
                             for lang, questions in sets.items()}
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# Acceptable answers on held-out questions", "",
             f"{date}, commit {commit}. {len(sets['en'])} English and {len(sets['zh'])} Chinese questions "
             "(benchmarks/data/answers_*.yml), none in any training file; each asked in a new conversation.", "",
             "| system | language | acceptable | wrong | fallback |", "|---|---|---|---|---|"]
    summary = {}
    for name, by_language in results.items():
        for lang, outcomes in by_language.items():
            summary[f"{name}/{lang}"] = shares(outcomes)
            row = summary[f"{name}/{lang}"]
            lines.append(f"| {name} | {lang} | {row['acceptable']}% | {row['wrong']}% | {row['fallback']}% |")
    kinds = sorted({o["kind"] for outcomes in next(iter(results.values())).values() for o in outcomes})
    lines += ["", "Acceptable by kind of question (both languages):", "",
              "| system | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, by_language in results.items():
        every = [o for outcomes in by_language.values() for o in outcomes]
        lines.append(f"| {name} | " + " | ".join(
            f"{shares([o for o in every if o['kind'] == kind])['acceptable']}%" for kind in kinds) + " |")
    lines += ["", "Answers followed by the offer of a person (`unknown_word_offer`), and how many of them only "
              "the offer makes acceptable (the answer alone would be wrong or a fallback):", "",
              "| system | language | answers with the offer | acceptable only by the offer |", "|---|---|---|---|"]
    for name, by_language in results.items():
        for lang, outcomes in by_language.items():
            offered = [o for o in outcomes if o["offered_after_answer"]]
            by_offer = sum(o["outcome"] != o["answer_alone"] for o in offered)
            lines.append(f"| {name} | {lang} | {len(offered)} of {len(outcomes)} | {by_offer} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "answers.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "answers.json").write_text(json.dumps({"command": command, "date": date, "commit": commit,
                                                      "summary": summary, "outcomes": results},
                                                     ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
