"""`kefu generator train` under torchrun: two gloo processes on this machine train one model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from components.generator.generator import ResponseGenerator
from tests.conftest import KEFU, PROJECT, free_port
from tests.generator.conftest import TEN_PAIRS, TINY_MODELS

TORCHRUN = str(Path(sys.executable).parent / "torchrun")


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    lines = "".join(json.dumps({"question": d.question, "answer": d.answer}, ensure_ascii=False) + "\n"
                    for d in TEN_PAIRS)
    for split in ("train", "valid", "test"):
        (folder / f"{split}.jsonl").write_text(lines, encoding="utf-8")


def test_two_processes_hold_identical_weights_and_the_saved_model_answers(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({
        "architecture": "seq2seq", "model": TINY_MODELS["seq2seq"],
        "tokenizer": {"vocab_size": 500, "min_frequency": 1},
        # batch_size 2: five batches an epoch, so the ranks really train on different batches
        "training": {"epochs": 60, "learning_rate": 1e-2, "warmup_steps": 5, "label_smoothing": 0.0,
                     "patience": 1000, "batch_size": 2, "threads": 1, "progress": False},
        "decoding": {"strategy": "greedy", "no_repeat_ngram": 0}}))
    model = tmp_path / "model"
    completed = subprocess.run(
        [TORCHRUN, "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--no-python",
         KEFU, "generator", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(model),
         "--config", str(config), "--checkpoints"],
        cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d) of 2: weights (\w+)", completed.stdout))
    assert sorted(digests) == ["0", "1"], completed.stdout
    assert digests["0"] == digests["1"], "the ranks' weights differ after training"
    assert "with 2 process(es)" in completed.stdout
    assert json.loads((model / "training.json").read_text())["processes"] == 2
    assert (model / "checkpoint" / "model.safetensors").is_file()

    generator = ResponseGenerator.load(model, device="cpu")
    for pair in TEN_PAIRS[:4]:
        assert generator.reply(pair.question).text == pair.answer
