"""The test stories in tests/ pass with `rasa test core`, and the data validates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.conftest import PROJECT, RASA, run_command

STORY_FILES = ("test_stories.yml", "test_stories_zh.yml")


def test_all_test_stories_pass(trained_model: Path, tmp_path: Path) -> None:
    # one `rasa test core` over both languages' stories: the model loads once
    stories = tmp_path / "stories"
    stories.mkdir()
    for name in STORY_FILES:
        shutil.copy(PROJECT / "tests" / name, stories / name)
    run_command(
        [RASA, "test", "core", "--model", str(trained_model), "--stories", str(stories),
         "--out", str(tmp_path / "results"), "--no-plot"],
        tmp_path / "test.log",
    )
    accuracy = json.loads((tmp_path / "results" / "story_report.json").read_text())["conversation_accuracy"]
    story_count = sum(len(yaml.safe_load((stories / name).read_text())["stories"]) for name in STORY_FILES)
    failed = (tmp_path / "results" / "failed_test_stories.yml").read_text()
    assert accuracy["total"] == story_count
    assert accuracy["correct"] == story_count, failed


def generator_intents() -> set[str]:
    """The shop questions the generative policy answers: by design no rule or story uses them."""
    path = PROJECT / "data" / "corpus" / "shop_long_tail.jsonl"
    return {json.loads(line)["intent"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def test_training_data_validates_without_conflicts(tmp_path: Path) -> None:
    log = tmp_path / "validate.log"
    # without --fail-on-warnings: Rasa warns about every intent no story uses, the generator's included
    completed = run_command([RASA, "data", "validate"], log)
    output = log.read_text()
    assert completed.returncode == 0
    assert "No story structure conflicts found" in output
    expected = [f"The intent '{intent}' is not used in any story or rule." for intent in generator_intents()]
    for problem in ("is not in the domain", "not used in any story", "inconsistent"):
        assert not [
            line for line in output.splitlines()
            if problem in line and "utterance" not in line and not any(e in line for e in expected)
        ], output

