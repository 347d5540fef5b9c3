"""Training the generator: it learns, it is reproducible, it saves and loads, it explains bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from components.corpus import build_corpus
from components.generator.data import CorpusFolderError, Dialogue, read_split
from components.generator.generator import GeneratorFileError, ResponseGenerator
from components.generator.training import GeneratorConfig, train_generator
from tests.generator.conftest import TEN_PAIRS, tiny_config
from tests.generator.test_tokenizer import CHATTERBOT_ZH


def test_both_architectures_reproduce_the_ten_pair_corpus(overfit_generator: ResponseGenerator) -> None:
    replies = overfit_generator.replies([pair.question for pair in TEN_PAIRS])
    assert [reply.text for reply in replies] == [pair.answer for pair in TEN_PAIRS]
    assert all(reply.finished for reply in replies)


def test_saved_then_loaded_generator_gives_identical_replies(overfit_generator: ResponseGenerator,
                                                             tmp_path: Path) -> None:
    overfit_generator.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                     "calibration.json"}
    loaded = ResponseGenerator.load(tmp_path, device="cpu")
    questions = [pair.question for pair in TEN_PAIRS] + ["something never seen before", "随便问问"]
    assert loaded.replies(questions) == overfit_generator.replies(questions)


@pytest.mark.parametrize("architecture", ["seq2seq", "transformer"])
def test_same_seed_gives_the_same_weights_on_the_cpu(architecture: str) -> None:
    config = tiny_config(architecture, epochs=3, device="cpu")
    first = train_generator(TEN_PAIRS, TEN_PAIRS, config).generator.model.state_dict()
    second = train_generator(TEN_PAIRS, TEN_PAIRS, config).generator.model.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_trains_on_chinese_chatterbot(tmp_path: Path) -> None:
    build_corpus(sorted(CHATTERBOT_ZH.glob("*.yml")), tmp_path / "corpus")
    train, valid = read_split(tmp_path / "corpus", "train"), read_split(tmp_path / "corpus", "valid")
    result = train_generator(train, valid, tiny_config("transformer", epochs=2, learning_rate=3e-3))
    assert len(result.history) == 2
    assert result.history[-1]["valid_loss"] < result.history[0]["train_loss"]
    reply = result.generator.reply("你好吗")
    assert reply.text and 0.0 <= reply.confidence <= 1.0


def test_fine_tuning_continues_from_a_saved_model(overfit_generator: ResponseGenerator, tmp_path: Path) -> None:
    overfit_generator.save(tmp_path / "base")
    new_pair = Dialogue("is there a gift wrapping service", "Yes, gift wrapping costs 2 euros.")
    config = tiny_config(overfit_generator.architecture)
    tuned = train_generator([*TEN_PAIRS, new_pair], TEN_PAIRS, config, init_from=tmp_path / "base").generator
    assert tuned.tokenizer.encode("gift") == overfit_generator.tokenizer.encode("gift")  # same vocabulary
    assert tuned.reply(new_pair.question).text == new_pair.answer


def test_embeddings_can_start_from_a_word2vec_file(tmp_path: Path) -> None:
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 48\n" + "".join(f"{word} " + " ".join(str((i * j) % 7 - 3) for j in range(48)) + "\n"
                                         for i, word in enumerate(("order", "delivery", "hello"), 1)))
    config = tiny_config("seq2seq", epochs=1)
    config.init_embeddings = str(vectors)
    generator = train_generator(TEN_PAIRS, TEN_PAIRS, config).generator
    order_row = generator.model.embedding.weight[generator.tokenizer.encode(" order")[0]].detach()
    order_vector = torch.tensor([float(j % 7 - 3) for j in range(48)])
    assert torch.corrcoef(torch.stack([order_row, order_vector]))[0, 1] > 0.9
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("1 5\norder 1 2 3 4 5\n")
    config.init_embeddings = str(wrong)
    with pytest.raises(ValueError, match="5 dimensions"):
        train_generator(TEN_PAIRS, TEN_PAIRS, config)


def test_bad_configuration_and_corpus_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown architecture 'lstm'.*seq2seq, transformer"):
        GeneratorConfig.from_dict({"architecture": "lstm"})
    with pytest.raises(ValueError, match="unknown key 'epoch'"):
        GeneratorConfig.from_dict({"training": {"epoch": 3}})
    with pytest.raises(CorpusFolderError, match="train.jsonl: no such file"):
        read_split(tmp_path / "missing", "train")
    (tmp_path / "valid.jsonl").write_text('{"question": "hi", "answer": "", "intent": null}\n')
    with pytest.raises(CorpusFolderError, match="valid split has no question-answer pairs"):
        read_split(tmp_path, "valid")
    with pytest.raises(ValueError, match="valid split has no question-answer pairs"):
        train_generator(TEN_PAIRS, [], tiny_config("seq2seq"))


def test_a_damaged_model_folder_names_the_bad_file(overfit_generator: ResponseGenerator, tmp_path: Path) -> None:
    overfit_generator.save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(GeneratorFileError, match="model.safetensors"):
        ResponseGenerator.load(tmp_path)
    overfit_generator.save(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(GeneratorFileError, match="tokenizer.json: missing"):
        ResponseGenerator.load(tmp_path)
