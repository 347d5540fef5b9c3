"""Compressed generators: smaller folders that load like any other and still answer the same."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
from rasa.core.agent import Agent

from components.generator.compression import CompressionSettings
from components.generator.generator import GeneratorFileError, ResponseGenerator
from tests.generator.conftest import TEN_PAIRS
from tests.generator.test_cli import kefu
from tests.policies.test_generative_response import reply_of, train_core_serving

QUESTIONS = [pair.question for pair in TEN_PAIRS]


def compressed_copy(generator: ResponseGenerator, folder: Path, settings: CompressionSettings) -> ResponseGenerator:
    """Save `generator`, then compress a loaded copy into `folder`, leaving the shared fixture as it was."""
    generator.save(folder.with_name(folder.name + "-fp32"))
    copy = ResponseGenerator.load(folder.with_name(folder.name + "-fp32"), device="cpu")
    copy.compress(settings)
    copy.save(folder)
    return copy


def weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("model*.safetensors"))


def test_int8_generator_is_a_third_of_the_size_and_reproduces_the_corpus(
        overfit_generator: ResponseGenerator, tmp_path: Path) -> None:
    compressed = compressed_copy(overfit_generator, tmp_path / "int8", CompressionSettings(int8=True))
    config = json.loads((tmp_path / "int8" / "config.json").read_text())
    assert config["compression"] == {"int8": True, "prune": 0.0}
    assert weight_bytes(tmp_path / "int8") <= 0.3 * weight_bytes(tmp_path / "int8-fp32")

    loaded = ResponseGenerator.load(tmp_path / "int8", device="cpu")
    assert [reply.text for reply in loaded.replies(QUESTIONS)] == [pair.answer for pair in TEN_PAIRS]
    unseen = ["something never seen before", "随便问问"]
    assert loaded.replies(QUESTIONS + unseen) == compressed.replies(QUESTIONS + unseen)  # what was saved, exactly


def test_pruning_zeroes_the_share_asked_for_and_survives_saving_twice(
        overfit_generator: ResponseGenerator, tmp_path: Path) -> None:
    compressed_copy(overfit_generator, tmp_path / "pruned", CompressionSettings(prune=0.3))
    loaded = ResponseGenerator.load(tmp_path / "pruned", device="cpu")
    for name, weight in loaded.model.named_parameters():
        if weight.dim() == 2:
            assert (weight == 0).float().mean().item() == pytest.approx(0.3, abs=0.01), name
    assert weight_bytes(tmp_path / "pruned") < 0.75 * weight_bytes(tmp_path / "pruned-fp32")
    replies = loaded.replies(QUESTIONS)
    assert sum(reply.text == pair.answer for reply, pair in zip(replies, TEN_PAIRS, strict=True)) >= 7

    # a compressed generator saved again (as the Rasa policy does) stays compressed and identical
    loaded.save(tmp_path / "again")
    again = ResponseGenerator.load(tmp_path / "again", device="cpu")
    assert not (tmp_path / "again" / "model.safetensors").exists()
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), loaded.model.parameters(), strict=True))


def test_damaged_or_mismatched_compressed_files_get_a_clear_error(
        overfit_generators: dict[str, ResponseGenerator], tmp_path: Path) -> None:
    seq2seq = overfit_generators["seq2seq"]
    compressed_copy(seq2seq, tmp_path / "int8", CompressionSettings(int8=True))
    compressed_copy(seq2seq, tmp_path / "pruned", CompressionSettings(prune=0.5))
    weights = "model.compressed.safetensors"

    shutil.copytree(tmp_path / "int8", tmp_path / "damaged")
    (tmp_path / "damaged" / weights).write_bytes(b"\x00garbage")
    with pytest.raises(GeneratorFileError, match=f"damaged/{weights}: cannot read"):
        ResponseGenerator.load(tmp_path / "damaged")

    shutil.copytree(tmp_path / "int8", tmp_path / "mixed")
    shutil.copy(tmp_path / "pruned" / weights, tmp_path / "mixed" / weights)
    with pytest.raises(GeneratorFileError, match="compressed with .*'prune': 0.5.* but config.json's"):
        ResponseGenerator.load(tmp_path / "mixed")

    other_model = compressed_copy(overfit_generators["transformer"], tmp_path / "transformer",
                                  CompressionSettings(int8=True))
    assert other_model.architecture == "transformer"
    shutil.copytree(tmp_path / "int8", tmp_path / "swapped")
    shutil.copy(tmp_path / "transformer" / weights, tmp_path / "swapped" / weights)
    with pytest.raises(GeneratorFileError, match="different models"):
        ResponseGenerator.load(tmp_path / "swapped")

    (tmp_path / "int8" / weights).unlink()
    with pytest.raises(GeneratorFileError, match=f"{weights}: missing"):
        ResponseGenerator.load(tmp_path / "int8")

    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    (tmp_path / "pruned" / "config.json").write_text(json.dumps({**config, "compression": {"prune": 2}}))
    with pytest.raises(GeneratorFileError, match="config.json: not a generator config.*prune"):
        ResponseGenerator.load(tmp_path / "pruned")


def test_kefu_generator_compress_writes_a_folder_that_answers(overfit_generators: dict[str, ResponseGenerator],
                                                              tmp_path: Path) -> None:
    overfit_generators["seq2seq"].save(tmp_path / "model")
    compressed = kefu("generator", "compress", str(tmp_path / "model"), "--out", str(tmp_path / "small"),
                      "--int8", "--prune", "0.3")
    assert compressed.returncode == 0, compressed.stderr
    assert "int8 weights" in compressed.stdout and "30% of each weight matrix pruned" in compressed.stdout
    assert json.loads((tmp_path / "small" / "config.json").read_text())["compression"] == {"int8": True,
                                                                                            "prune": 0.3}
    replied = kefu("generator", "reply", str(tmp_path / "small"), "do you ship abroad")
    assert replied.returncode == 0, replied.stderr
    assert replied.stdout.strip() == ResponseGenerator.load(tmp_path / "small").reply("do you ship abroad").text

    nothing = kefu("generator", "compress", str(tmp_path / "model"), "--out", str(tmp_path / "same"))
    assert nothing.returncode == 1 and "give --int8 and/or --prune" in nothing.stderr
    too_much = kefu("generator", "compress", str(tmp_path / "model"), "--out", str(tmp_path / "x"), "--prune", "1.5")
    assert too_much.returncode == 1 and "--prune" in too_much.stderr and "Traceback" not in too_much.stderr
    in_place = kefu("generator", "compress", str(tmp_path / "model"), "--out", str(tmp_path / "model"), "--int8")
    assert in_place.returncode == 1 and "keep the original" in in_place.stderr


def test_the_policy_serves_a_compressed_generator_and_keeps_it_compressed_in_the_model(
        overfit_generators: dict[str, ResponseGenerator], tmp_path: Path) -> None:
    compressed = compressed_copy(overfit_generators["seq2seq"], tmp_path / "generator",
                                 CompressionSettings(int8=True, prune=0.3))
    model = train_core_serving(tmp_path / "generator", tmp_path, "compressed", device="cpu")
    with tarfile.open(model) as archive:
        names = archive.getnames()
        [config_member] = [name for name in names if name.endswith("generator/config.json")]
        stored = json.loads(archive.extractfile(config_member).read())
    assert stored["compression"] == {"int8": True, "prune": 0.3}
    assert any(name.endswith("generator/model.compressed.safetensors") for name in names)
    assert not any(name.endswith("generator/model.safetensors") for name in names)

    agent = Agent.load(str(model))
    for pair in TEN_PAIRS[:5]:
        assert reply_of(agent, pair.question) == compressed.reply(pair.question).text
