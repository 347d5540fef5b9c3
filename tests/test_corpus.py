"""`kefu corpus build` on the shared data sets and on seeded cases."""

from __future__ import annotations

import json
import re
import subprocess
from itertools import combinations
from pathlib import Path

import pytest

from components.corpus import BuildConfig, CorpusError, build_corpus, shingles
from tests.conftest import KEFU, PROJECT

DATASETS = PROJECT.parent / "shared" / "datasets"
BITEXT = DATASETS / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset_4514.csv"
CHATTERBOT = DATASETS / "chatterbot_corpus" / "chatterbot_corpus" / "data"
OUTPUTS = ("train.jsonl", "valid.jsonl", "test.jsonl", "report.json", "report.md")


def read_split(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def bitext_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bitext")
    build_corpus([BITEXT], out)
    return out


def test_bitext_builds_three_disjoint_splits_and_a_report(bitext_build: Path) -> None:
    report = json.loads((bitext_build / "report.json").read_text())
    splits = {name: read_split(bitext_build, name) for name in ("train", "valid", "test")}
    total = sum(map(len, splits.values()))
    assert total == report["stages"]["near_dedup"]["kept"]
    assert 0.75 < len(splits["train"]) / total < 0.85
    keys = [{(p["question"], p["answer"]) for p in rows} for rows in splits.values()]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    # Stratified: every Bitext intent reaches every split.
    assert set(report["splits"]["test"]["intents"]) == set(report["splits"]["train"]["intents"])
    assert all(p["question_tokens"] and p["answer_tokens"] for p in splits["train"])
    markdown = (bitext_build / "report.md").read_text()
    for section in ("## Stages", "## PII masked", "## Pairs per intent", "## Length in tokens"):
        assert section in markdown


def test_no_near_duplicate_crosses_splits(bitext_build: Path) -> None:
    located = [(name, row) for name in ("train", "valid", "test") for row in read_split(bitext_build, name)]
    by_intent: dict[str, list] = {}
    for name, row in located:
        by_intent.setdefault(row["intent"], []).append((name, shingles(row["question"], row["lang"])))
    for rows in by_intent.values():
        for (split_a, a), (split_b, b) in combinations(rows, 2):
            if split_a != split_b:
                assert len(a & b) < 0.9 * len(a | b)


def test_second_build_is_byte_identical(bitext_build: Path, tmp_path: Path) -> None:
    build_corpus([BITEXT], tmp_path)
    for name in OUTPUTS:
        assert (tmp_path / name).read_bytes() == (bitext_build / name).read_bytes(), name


def test_near_duplicates_collapse_or_stay_together(tmp_path: Path) -> None:
    rows = [
        {"question": "Where is my order right now?", "answer": "Check My account > Orders."},
        {"question": "where is my order right now ??", "answer": "Check My account > Orders."},
        {"question": "Where is my order, right now?", "answer": "check my account > orders."},
        {"question": "How do I reset my password please", "answer": "Use Forgot password."},
        {"question": "how do I reset my password please!", "answer": "Click Forgot password on sign-in."},
    ] + [{"question": f"Question number {word} about shipping", "answer": f"Answer {word}."}
         for word in ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")]
    source = write(tmp_path, "pairs.jsonl", "\n".join(json.dumps(r) for r in rows))
    report = build_corpus([source], tmp_path / "out", BuildConfig(valid_fraction=0.3, test_fraction=0.3))
    kept = {name: read_split(tmp_path / "out", name) for name in ("train", "valid", "test")}
    questions = [p["question"].lower() for rows in kept.values() for p in rows]
    assert sum(q.startswith("where is my order") for q in questions) == 1
    assert report.stages["near_dedup"]["groups with different answers"] == 1
    password_splits = {name for name, rows in kept.items() for p in rows if "password" in p["question"]}
    assert len(password_splits) == 1


def test_pii_is_masked_and_counted(tmp_path: Path) -> None:
    source = write(tmp_path, "pii.jsonl", json.dumps({
        "question": "I'm ann@example.com, card 4111111111111111, phone +1 212 555 0100, order 48213",
        "answer": "Thanks, we e-mailed ann@example.com about {{Order Number}}.", "lang": "en"}))
    report = build_corpus([source], tmp_path / "out", BuildConfig(valid_fraction=0, test_fraction=0))
    row = read_split(tmp_path / "out", "train")[0]
    assert row["question"] == "I'm [EMAIL], card [CARD], phone [PHONE], order [ORDER_ID]"
    assert row["answer"] == "Thanks, we e-mailed [EMAIL] about {{Order Number}}."
    assert report.pii_masked == {"[EMAIL]": 2, "[PHONE]": 1, "[CARD]": 1, "[IBAN]": 0, "[ID]": 0, "[ORDER_ID]": 1}


def test_chatterbot_english_and_chinese(tmp_path: Path) -> None:
    report = build_corpus(
        [CHATTERBOT / "english" / "greetings.yml", CHATTERBOT / "chinese" / "greetings.yml",
         CHATTERBOT / "chinese" / "conversations.yml"], tmp_path)
    assert report.stages["language"]["en"] > 0 and report.stages["language"]["zh"] > 0
    rows = [r for name in ("train", "valid", "test") for r in read_split(tmp_path, name)]
    chinese = [r for r in rows if r["lang"] == "zh"]
    assert any(len(token) > 1 for r in chinese for token in r["question_tokens"] + r["answer_tokens"])
    assert any(r["context"] for r in rows)


def test_rasa_nlu_yaml_gives_questions_with_intents(tmp_path: Path) -> None:
    report = build_corpus([PROJECT / "data" / "nlu.yml"], tmp_path)
    rows = [r for name in ("train", "valid", "test") for r in read_split(tmp_path, name)]
    assert report.stages["read"]["pairs"] > 500
    assert all(r["answer"] == "" and r["intent"] for r in rows)
    assert not any("](" in r["question"] for r in rows)


def test_transcripts_become_pairs_with_context(tmp_path: Path) -> None:
    conversation = {"turns": [
        {"role": "user", "text": "hi"}, {"role": "bot", "text": "Hello! How can I help?"},
        {"role": "user", "text": "where is my parcel?"}, {"role": "user", "text": "it's late"},
        {"role": "bot", "text": "What is your order number?"},
    ]}
    source = write(tmp_path, "chats.jsonl", json.dumps(conversation) + "\n")
    build_corpus([source], tmp_path / "out", BuildConfig(valid_fraction=0, test_fraction=0))
    rows = read_split(tmp_path / "out", "train")
    assert [(r["question"], r["context"]) for r in rows] == [
        ("hi", []), ("where is my parcel? it's late", ["hi", "Hello! How can I help?"])]


def test_the_projects_own_corpus_goes_through(tmp_path: Path) -> None:
    report = build_corpus(sorted((PROJECT / "data" / "corpus").glob("*.jsonl")), tmp_path)
    assert report.bad_lines == []
    assert report.stages["read"]["pairs"] >= 400
    assert set(report.stages["language"]) == {"en", "zh"}


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("bad.jsonl", '{"question": "hi", "answer": "hello"}\n{"question": "hi"\n',
         "bad.jsonl line 2: not valid JSON"),
        ("empty.jsonl", '{"question": "hi", "answer": "hello"}\n\n{"question": "bye", "answer": " "}\n',
         'empty.jsonl line 3: "answer" is empty'),
        ("latin1.jsonl", b'{"question": "hi", "answer": "ok"}\n{"question": "caf\xe9", "answer": "ok"}\n',
         "latin1.jsonl line 2: not valid UTF-8"),
        ("data.csv", "question,response\nhi,hello\nbye,\n", 'data.csv line 3: column "response" is empty'),
        ("nocol.csv", "prompt,completion\nhi,hello\n", "none of the columns prompt, completion looks like question"),
        ("broken.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n  - bad: [\n", "broken.yml line"),
        ("notes.txt", "hello", "unknown file type .txt"),
    ],
)
def test_bad_input_names_file_line_and_fix(tmp_path: Path, name: str, content: str | bytes, error: str) -> None:
    source = write(tmp_path, name, content)
    with pytest.raises(CorpusError, match=re.escape(error)):
        build_corpus([source], tmp_path / "out")


def test_skip_bad_counts_what_it_skipped(tmp_path: Path) -> None:
    source = write(tmp_path, "mixed.jsonl", "\n".join([
        json.dumps({"question": "where is my order?", "answer": "In My account."}),
        "{not json",
        json.dumps({"question": "", "answer": "x"}),
        json.dumps({"question": "how do I pay?", "answer": "By card or PayPal."}),
    ]))
    report = build_corpus([source], tmp_path / "out", BuildConfig(skip_bad=True))
    assert report.stages["read"] == {"pairs": 2, "bad_lines_skipped": 2}
    assert any("mixed.jsonl line 2: not valid JSON" in line for line in report.bad_lines)
    assert "## Bad lines skipped (2)" in (tmp_path / "out" / "report.md").read_text()


def test_cli_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    source = write(tmp_path, "data.csv", "question,answer\nhi,\n")
    completed = subprocess.run([KEFU, "corpus", "build", str(source), "--out", str(tmp_path / "o")],
                               capture_output=True, text=True)
    assert completed.returncode == 1
    assert 'data.csv line 2: column "answer" is empty (or pass --skip-bad)' in completed.stderr
    assert "Traceback" not in completed.stderr
