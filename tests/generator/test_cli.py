"""`kefu generator train`, `kefu generator reply` and `kefu evaluate`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from components.corpus import build_corpus
from tests.conftest import KEFU, PROJECT


def kefu(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([KEFU, *arguments], cwd=PROJECT, capture_output=True, text=True, timeout=900)


def test_train_reply_and_evaluate_on_the_projects_corpus(tmp_path: Path) -> None:
    build_corpus(sorted((PROJECT / "data" / "corpus").glob("*.jsonl")), tmp_path / "corpus")
    config = tmp_path / "tiny.yml"
    config.write_text(yaml.safe_dump({
        "architecture": "seq2seq", "model": {"embedding_dim": 32, "hidden_size": 32},
        "tokenizer": {"vocab_size": 1200}, "training": {"epochs": 2, "threads": 1, "progress": False},
        "decoding": {"strategy": "greedy", "max_length": 24}}))
    trained = kefu("generator", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(tmp_path / "model"),
                   "--config", str(config))
    assert trained.returncode == 0, trained.stderr
    assert "Trained a seq2seq generator" in trained.stdout
    assert json.loads((tmp_path / "model" / "training.json").read_text())["history"]

    replied = kefu("generator", "reply", str(tmp_path / "model"), "how long does delivery take?", "--verbose")
    assert replied.returncode == 0, replied.stderr
    assert replied.stdout.strip() and "confidence" in replied.stderr
    mbr = kefu("generator", "reply", str(tmp_path / "model"), "how long does delivery take?", "--strategy", "mbr",
               "--samples", "3", "--seed", "1")
    assert mbr.returncode == 0 and mbr.stdout.strip(), mbr.stderr
    assert kefu("generator", "reply", str(tmp_path / "model"), "how long does delivery take?", "--strategy", "mbr",
                "--samples", "3", "--seed", "1").stdout == mbr.stdout
    too_short = kefu("generator", "reply", str(tmp_path / "model"), "hi", "--min-length", "30", "--max-length", "10")
    assert too_short.returncode == 1 and "min_length <= max_length" in too_short.stderr
    no_pairs = kefu("generator", "reply", str(tmp_path / "model"), "hi", "--strategy", "mbr", "--neighbours", "2")
    assert no_pairs.returncode == 1 and "does not keep" in no_pairs.stderr
    assert "Traceback" not in no_pairs.stderr

    evaluated = kefu("evaluate", "--corpus", str(tmp_path / "corpus"), "--model", str(tmp_path / "model"),
                     "--out", str(tmp_path / "evaluation"), "--limit", "20", "--latency-samples", "3")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    systems = [row["system"] for row in report["systems"]]
    assert systems == ["retrieval (TF-IDF)", "intent prototype", "seq2seq (model)"]
    assert report["systems"][2]["perplexity"] > 1
    assert "tok:" in (tmp_path / "evaluation" / "evaluation.md").read_text()
    assert (tmp_path / "evaluation" / "evaluation.png").stat().st_size > 1000


def test_bad_input_gets_a_one_line_error(tmp_path: Path) -> None:
    missing = kefu("generator", "train", "--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m"))
    assert missing.returncode == 1 and "train.jsonl: no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_config = tmp_path / "bad.yml"
    bad_config.write_text("architecture: [unclosed\n")
    broken = kefu("generator", "train", "--corpus", str(tmp_path), "--out", str(tmp_path / "m"),
                  "--config", str(bad_config))
    assert broken.returncode == 1 and "bad.yml: not valid YAML" in broken.stderr
    bad_config.write_text("architecture: lstm\n")
    unknown = kefu("generator", "train", "--corpus", str(tmp_path), "--out", str(tmp_path / "m"),
                   "--config", str(bad_config))
    assert unknown.returncode == 1 and "unknown architecture 'lstm'" in unknown.stderr
    no_model = kefu("generator", "reply", str(tmp_path / "no-model"), "hi")
    assert no_model.returncode == 1 and "no such generator folder" in no_model.stderr
