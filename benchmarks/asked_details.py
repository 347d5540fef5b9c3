"""Does an answer-time check of `answer_choice` offer a person (or say no) where it should, and
only there? Measured on the dev set written for each check:

- `asked_details`: benchmarks/data/dev_details_{en,zh}.yml, questions asking for an amount (a fee,
  a price, a limit, a duration) or a tax, each marked `covered` when the shop's facts give it (the
  answer should state it) or not (a person should answer);
- `waited_too_long`: benchmarks/data/dev_waited_{en,zh}.yml, customers saying how long they have
  waited, each marked `overdue` when the wait is past the answer's time (a person should look) or
  not (the answer still holds);
- `destinations` (`not_offered`'s `delivers_to`): benchmarks/data/dev_destinations_{en,zh}.yml,
  delivery and address questions naming a place outside the US and Canada (the answer should be
  the no that names it), in them, or naming no destination;
- `served_destinations` (`delivers_to`'s `served_response`): the same set; a place in the US or
  Canada should get the yes that names it, the others not;
- `intent_questions`: benchmarks/data/dev_coverage_{en,zh}.yml (questions the shop's texts do not
  cover) and dev_longtail_{en,zh}.yml (in-scope questions of the intents only the generator
  answers, where a person is wrong);
- `unknown_word_offer`: every dev set: dev_coverage_{en,zh}.yml (questions the shop's texts do
  not cover: the offer of a person after the answer is right) and the in-scope others (the offer
  is needless there, though the answer stays);
- `contrast`: benchmarks/data/dev_contrast_{en,zh}.yml, messages setting what the customer wants
  against what they do not, and messages whose "not" is the question itself, each labelled with
  the intent it should be answered as.

Neither language's sets are in a training file or in the held-out answer sets. Each question is
asked in a new conversation of a trained model, with the check on and off (the same model; the
checks are read at answer time).

    .venv/bin/python benchmarks/asked_details.py [--check NAME] [--model benchmarks/work/answers/full.tar.gz]

The default model is the one `benchmarks/answers.py` trains from config.yml. Results:
benchmarks/results/{asked_details,waited_too_long,destinations,served_destinations,contrast,
intent_questions,unknown_word_offer}.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml
from answers import WORK, ask_all  # a sibling module: the answer benchmark asks the same way
from latency import action_server

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
HANDOFF = "utter_offer_handoff"
OVERDUE_OFFER = "utter_offer_handoff_overdue"  # the offer of a person that says sorry for the wait
AFTER_ANSWER_OFFER = "utter_offer_handoff_after_answer"  # the offer of a person after the answer
IN_SCOPE_DEV_SETS = ("dev_intents", "dev_specific", "dev_longtail", "dev_details", "dev_destinations",
                     "dev_contrast", "dev_waited")
NO_DELIVERY, DELIVERY_THERE = "utter_no_delivery_there", "utter_delivery_there"
FALLBACKS = {"utter_default", "action_default_fallback", "utter_clarify"}


def shipped_not_offered() -> dict:
    """config.yml's `not_offered`."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    return next(p["answer_choice"] for p in config["policies"] if p.get("answer_choice")).get("not_offered", {})


def without_delivers_to() -> dict:
    """config.yml's `not_offered` without its `delivers_to` entries: the destinations check off."""
    return {intent: entry for intent, entry in shipped_not_offered().items() if "delivers_to" not in entry}


def without_served_response() -> dict:
    """config.yml's `not_offered` without `served_response`: no yes to a place it delivers to."""
    return {intent: {key: value for key, value in entry.items() if key != "served_response"}
            for intent, entry in shipped_not_offered().items()}


@dataclass(frozen=True)
class Check:
    dev_sets: tuple[str, ...]  # benchmarks/data/{dev_set}_{lang}.yml each
    person_right: Callable[[dict], bool]  # from a dev set row: the check's answer (a person, a no) is right
    kinds: tuple[str, str]  # (the check's answer is right, it is wrong)
    title: str
    about: str
    action: str = HANDOFF  # the check's answer
    counted: str = "person offered"
    # whether an answer counts (default: it is `action`), from the question and its outcome
    counts: Callable[[dict, dict], bool] | None = None
    switched_off: Callable[[], dict] | None = None  # the settings without the check; None: {name: False}


CHECKS = {
    "asked_details": Check(("dev_details",), lambda row: not row["covered"], ("not covered", "covered"),
                           "A person where the answer leaves out the amount asked",
                           "questions for an amount or a tax that the shop's facts give (covered: a person is a "
                           "wrong answer) or do not (not covered: a person is the right one)"),
    "waited_too_long": Check(("dev_waited",), lambda row: row["overdue"],
                             ("wait past the answer's time", "wait within it or whether"),
                             "A person where the customer has waited past the answer's time",
                             "customers saying how long they have waited, past the answer's time (a person is the "
                             "right answer) or within it, or asking whether they still may (a person is wrong)",
                             OVERDUE_OFFER),
    "contrast": Check(("dev_contrast",), lambda row: row["contrast"],
                      ("wants one thing, not another", "a not that is the question"),
                      "Answered as the intent of what the customer wants, not of what they do not",
                      "messages setting what the customer wants against what they do not (labelled with the "
                      "wanted part's intent) or whose not is the question itself (labelled with their own)",
                      counted="answered as the labelled intent",
                      counts=lambda question, outcome: answered_as(outcome) == question["intent"]),
    "destinations": Check(("dev_destinations",), lambda row: row["ships"] is False,
                          ("outside the US and Canada", "in them, or no destination"),
                          "A no where a delivery or address question names a place the shop does not ship to",
                          "delivery and address questions naming a place outside the US and Canada (the no that "
                          "names it is the right answer), in them, or naming no destination (a no is wrong)",
                          action=NO_DELIVERY, counted="no that names the place",
                          switched_off=lambda: {"not_offered": without_delivers_to()}),
    "intent_questions": Check(("dev_coverage", "dev_longtail"), lambda row: row["set"] == "dev_coverage",
                              ("not covered", "in scope, an intent only the generator answers"),
                              "A person where an intent only the generator answers never learnt the question",
                              "shop questions the shop's texts do not cover (a person is right where NLU gives "
                              "them an intent only the generator answers; most get a template intent, which "
                              "this check leaves alone) and in-scope questions of those intents (a person is "
                              "wrong)", switched_off=lambda: {"intent_question_similarity": None,
                                                              "intent_question_encoder_similarity": None}),
    "unknown_word_offer": Check(("dev_coverage", *IN_SCOPE_DEV_SETS), lambda row: row["set"] == "dev_coverage",
                                ("not covered", "in scope"),
                                "The offer of a person after the answer to a yes-or-no question about an unknown word",
                                "shop questions the shop's texts do not cover (the offer is right after an answer; "
                                "many get a person, a fallback or a question back instead) and the in-scope "
                                "questions of every other dev set (the offer is needless)", AFTER_ANSWER_OFFER,
                                "answer, then the offer"),
    "served_destinations": Check(("dev_destinations",), lambda row: row["ships"] is True,
                                 ("in the US and Canada", "outside them, or no destination"),
                                 "A yes where a delivery or address question names a place the shop ships to",
                                 "delivery and address questions naming a place in the US or Canada (the yes that "
                                 "names it, before the answer, is right), outside them, or naming no destination "
                                 "(a yes is wrong)", action=DELIVERY_THERE, counted="yes that names the place",
                                 switched_off=lambda: {"not_offered": without_served_response()}),
}


def answered_as(outcome: dict) -> str:
    """The intent a message was answered as: the one the answer choice read from the corpus, or NLU's."""
    understood = (outcome.get("answer_choice") or {}).get("understood_as")
    return understood["intent"] if understood else outcome["predicted_intent"]


def questions(check: Check, lang: str) -> list[dict]:
    rows = [{"text": row, "set": name} if isinstance(row, str) else {**row, "set": name}
            for name in check.dev_sets
            for row in yaml.safe_load((DATA / f"{name}_{lang}.yml").read_text(encoding="utf-8"))["questions"]]
    return [{"text": row["text"], "kind": check.kinds[0] if check.person_right(row) else check.kinds[1],
             "intent": row.get("intent", ""), "lang": lang, "accept": {}} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", choices=sorted(CHECKS), default="asked_details", help="the check to measure")
    parser.add_argument("--model", type=Path, default=WORK / "full.tar.gz", help="a model trained from config.yml")
    args = parser.parse_args()
    check = CHECKS[args.check]
    if not args.model.exists():
        parser.error(f"{args.model} does not exist: run benchmarks/answers.py first, or give --model")
    command = reproduce.command(__file__)
    asked = questions(check, "en") + questions(check, "zh")
    WORK.mkdir(parents=True, exist_ok=True)
    with action_server(WORK / f"{args.check}_actions.log") as endpoints:
        switches = {"off": check.switched_off() if check.switched_off else {args.check: False},
                    "on": {} if check.switched_off else {args.check: True}}
        runs = {setting: asyncio.run(ask_all(args.model, endpoints, asked, f"{args.check}-{setting}", switch))
                for setting, switch in switches.items()}
    rows = []
    for setting, outcomes in runs.items():
        for lang in ("en", "zh"):
            for kind in reversed(check.kinds):
                mine = [(question, o) for question, o in zip(asked, outcomes, strict=True)
                        if question["lang"] == lang and question["kind"] == kind]
                rows.append({args.check: setting, "language": lang, "kind": kind, "questions": len(mine),
                             "checked": sum(check.counts(q, o) if check.counts else check.action in o["actions"]
                                            for q, o in mine),
                             "fallback": sum(bool(FALLBACKS & set(o["actions"])) for _, o in mine)})
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", f"# {check.title}", "",
             f"{date}, commit {commit}, model {args.model.name}. "
             f"{', '.join(f'benchmarks/data/{name}_*.yml' for name in check.dev_sets)}: {check.about}.",
             "", f"| {args.check} | language | questions | {check.counted} | fallback or question back |",
             "|---|---|---|---|---|"]
    lines += [f"| {r[args.check]} | {r['language']} | {r['kind']} | {r['checked']} of {r['questions']} "
              f"| {r['fallback']} |" for r in rows]
    details = {setting: [{"text": q["text"], "kind": q["kind"], "actions": o["actions"], "replies": o["replies"]}
                         for q, o in zip(asked, outcomes, strict=True)] for setting, outcomes in runs.items()}
    reproduce.save(args.check, lines, {"command": command, "commit": commit, "date": date,
                                       "model": str(args.model), "rows": rows, "outcomes": details})


if __name__ == "__main__":
    main()
