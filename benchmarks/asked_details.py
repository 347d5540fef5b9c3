"""Does `answer_choice.asked_details` offer a person where the answer leaves out the amount asked,
and only there? Measured on the dev set written for it.

benchmarks/data/dev_details_{en,zh}.yml: questions asking for an amount (a fee, a price, a limit,
a duration) or a tax, each marked `covered` when the shop's facts give it (the answer should
state it) or not (a person should answer). Neither language's set is in a training file or in the
held-out answer sets. Each question is asked in a new conversation of a trained model, with the
check on and off (the same model; the check is read at answer time).

    .venv/bin/python benchmarks/asked_details.py [--model benchmarks/work/answers/full.tar.gz]

The default model is the one `benchmarks/answers.py` trains from config.yml. Results:
benchmarks/results/asked_details.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timezone
from pathlib import Path

import reproduce  # a sibling module
import yaml
from answers import WORK, ask_all  # a sibling module: the answer benchmark asks the same way
from latency import action_server

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
HANDOFF = "utter_offer_handoff"
FALLBACKS = {"utter_default", "action_default_fallback", "utter_clarify"}


def questions(lang: str) -> list[dict]:
    rows = yaml.safe_load((DATA / f"dev_details_{lang}.yml").read_text(encoding="utf-8"))["questions"]
    return [{"text": row["text"], "kind": "covered" if row["covered"] else "not covered", "intent": "",
             "lang": lang, "accept": {}} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=WORK / "full.tar.gz", help="a model trained from config.yml")
    args = parser.parse_args()
    if not args.model.exists():
        parser.error(f"{args.model} does not exist: run benchmarks/answers.py first, or give --model")
    command = reproduce.command(__file__)
    asked = questions("en") + questions("zh")
    WORK.mkdir(parents=True, exist_ok=True)
    with action_server(WORK / "asked_details_actions.log") as endpoints:
        runs = {setting: asyncio.run(ask_all(args.model, endpoints, asked, f"details-{setting}",
                                             {"asked_details": setting == "on"}))
                for setting in ("off", "on")}
    rows = []
    for setting, outcomes in runs.items():
        for lang in ("en", "zh"):
            for kind in ("covered", "not covered"):
                mine = [o for question, o in zip(asked, outcomes, strict=True)
                        if question["lang"] == lang and question["kind"] == kind]
                rows.append({"asked_details": setting, "language": lang, "kind": kind, "questions": len(mine),
                             "person_offered": sum(HANDOFF in o["actions"] for o in mine),
                             "fallback": sum(bool(FALLBACKS & set(o["actions"])) for o in mine)})
    commit = reproduce.commit()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [*reproduce.lines(command), "", "# A person where the answer leaves out the amount asked", "",
             f"{date}, commit {commit}, model {args.model.name}. benchmarks/data/dev_details_*.yml: questions for an "
             "amount or a tax that the shop's facts give (covered: a person is a wrong answer) or do not (not "
             "covered: a person is the right one).", "",
             "| asked_details | language | facts | person offered | fallback or question back |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['asked_details']} | {r['language']} | {r['kind']} | {r['person_offered']} of {r['questions']} "
              f"| {r['fallback']} |" for r in rows]
    details = {setting: [{"text": q["text"], "kind": q["kind"], "actions": o["actions"], "replies": o["replies"]}
                         for q, o in zip(asked, outcomes, strict=True)] for setting, outcomes in runs.items()}
    reproduce.save("asked_details", lines, {"command": command, "commit": commit, "date": date,
                                            "model": str(args.model), "rows": rows, "outcomes": details})


if __name__ == "__main__":
    main()
