"""Every decoding strategy gives valid text within its limits, and the shortcuts change nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from components.generator.data import encode_source, pad
from components.generator.decoding import _TRACED_STEPS, DecodingSettings, decode
from components.generator.generator import ResponseGenerator, build_model
from components.generator.tokenizer import BOS_ID
from components.generator.training import train_generator
from tests.generator.conftest import TEN_PAIRS, tiny_config

QUESTIONS = [pair.question for pair in TEN_PAIRS] + ["tell me something new", "今天天气怎么样"]
STRATEGIES = [
    DecodingSettings(strategy="greedy", no_repeat_ngram=0),
    DecodingSettings(strategy="beam", beam_width=3, length_penalty=0.6),
    DecodingSettings(strategy="sample", temperature=0.8, top_k=20, top_p=0.9, seed=7),
    DecodingSettings(strategy="mbr", samples=4, temperature=0.8, top_p=0.9, seed=7),
]


@pytest.mark.parametrize("settings", STRATEGIES, ids=lambda s: s.strategy)
def test_every_strategy_returns_text_within_its_length_limits(overfit_generator: ResponseGenerator,
                                                             settings: DecodingSettings) -> None:
    for limits in ({"min_length": 1, "max_length": 4}, {"min_length": 12, "max_length": 20}):
        for reply in overfit_generator.replies(QUESTIONS, decoding=replace(settings, **limits)):
            assert limits["min_length"] <= reply.tokens <= limits["max_length"]
            assert reply.text.strip()
            assert "<s>" not in reply.text and "</s>" not in reply.text
            assert 0.0 <= reply.confidence <= 1.0


def test_a_batch_decodes_like_one_question_at_a_time(overfit_generator: ResponseGenerator) -> None:
    greedy = DecodingSettings(strategy="greedy")
    batched = [r.text for r in overfit_generator.replies(QUESTIONS, decoding=greedy)]
    assert batched == [overfit_generator.reply(q, decoding=greedy).text for q in QUESTIONS]


def test_mbr_sends_the_reply_most_samples_agree_on(overfit_generator: ResponseGenerator) -> None:
    """Hot samples of a model that learnt ten answers by heart stray; the consensus of the beam
    and the samples is still the answer it learnt, with that answer's confidence."""
    beam = overfit_generator.replies(QUESTIONS[:10], decoding=DecodingSettings(strategy="beam"))
    hot = DecodingSettings(strategy="sample", temperature=1.5, seed=5)
    mbr = overfit_generator.replies(QUESTIONS[:10], decoding=replace(hot, strategy="mbr", samples=6))
    assert [r.text for r in mbr] == [r.text for r in beam]
    assert [r.confidence for r in mbr] == pytest.approx([r.confidence for r in beam], abs=1e-4)
    assert [r.text for r in overfit_generator.replies(QUESTIONS[:10], decoding=hot)] != [r.text for r in beam]


def test_mbr_likens_replies_to_the_saved_neighbours_answers(tmp_path: Path) -> None:
    config = tiny_config("seq2seq")
    config.decoding = DecodingSettings(strategy="mbr", samples=4, neighbours=2, temperature=1.5, seed=2)
    generator = train_generator(TEN_PAIRS, TEN_PAIRS, config).generator
    generator.save(tmp_path / "model")
    loaded = ResponseGenerator.load(tmp_path / "model", device="cpu")
    assert loaded.retrieval is not None and len(loaded.retrieval) == len(TEN_PAIRS)
    questions = [pair.question for pair in TEN_PAIRS]
    assert [r.text for r in loaded.replies(questions)] == [r.text for r in generator.replies(questions)]
    assert [r.text for r in loaded.replies(questions)] == [pair.answer for pair in TEN_PAIRS]


def test_mbr_needs_samples_and_a_way_to_read_replies(overfit_generator: ResponseGenerator) -> None:
    with pytest.raises(ValueError, match="at least 1 sample"):
        DecodingSettings(strategy="mbr", samples=0)
    source, mask = pad([encode_source(overfit_generator.tokenizer, "hi", (), 0, 64)])
    with pytest.raises(ValueError, match="to_text"):
        decode(overfit_generator.model, source, mask, DecodingSettings(strategy="mbr"))
    with pytest.raises(ValueError, match="needs the training pairs"):
        overfit_generator.replies(["hi"], decoding=DecodingSettings(strategy="mbr", neighbours=2))


def test_beam_width_one_equals_greedy(overfit_generator: ResponseGenerator) -> None:
    for limits in ({}, {"min_length": 10, "max_length": 14}):
        greedy = overfit_generator.replies(QUESTIONS, decoding=DecodingSettings(strategy="greedy", **limits))
        beam = overfit_generator.replies(QUESTIONS, decoding=DecodingSettings(strategy="beam", beam_width=1,
                                                                              **limits))
        assert [r.text for r in beam] == [r.text for r in greedy]
        assert [r.mean_log_prob for r in beam] == pytest.approx([r.mean_log_prob for r in greedy], abs=1e-5)


@pytest.mark.parametrize("strategy", ["sample", "mbr"])
def test_sampling_with_a_seed_repeats(overfit_generator: ResponseGenerator, strategy: str) -> None:
    settings = DecodingSettings(strategy=strategy, samples=4, temperature=1.5, seed=3)
    replies = overfit_generator.replies(QUESTIONS, decoding=settings)
    assert overfit_generator.replies(QUESTIONS, decoding=settings) == replies
    # the seed reaches the samples: another one says something else somewhere
    assert overfit_generator.replies(QUESTIONS, decoding=replace(settings, seed=4)) != replies


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_long_replies_repeat_no_ngram(overfit_generator: ResponseGenerator, strategy: str) -> None:
    settings = DecodingSettings(strategy=strategy, no_repeat_ngram=2, min_length=30, max_length=30, seed=1)
    source, mask = pad([encode_source(overfit_generator.tokenizer, q, (), 0, 64) for q in QUESTIONS])
    for hypothesis in decode(overfit_generator.model, source, mask, settings):
        bigrams = list(zip(hypothesis.tokens, hypothesis.tokens[1:], strict=False))
        assert len(hypothesis.tokens) == 30
        assert len(bigrams) == len(set(bigrams))


def test_cached_and_uncached_transformer_decoding_give_the_same_tokens(
        overfit_generators: dict[str, ResponseGenerator]) -> None:
    transformer = overfit_generators["transformer"]
    config = transformer.model.config
    try:
        for settings in (DecodingSettings(strategy="greedy", min_length=16, max_length=16),
                         DecodingSettings(strategy="beam", beam_width=3)):
            config.use_cache = True
            cached = transformer.replies(QUESTIONS, decoding=settings)
            config.use_cache = False
            uncached = transformer.replies(QUESTIONS, decoding=settings)
            assert [r.text for r in cached] == [r.text for r in uncached]
    finally:
        config.use_cache = True


@pytest.mark.parametrize("architecture", ["seq2seq", "transformer"])
def test_the_traced_cpu_step_decodes_like_the_eager_model(overfit_generators: dict[str, ResponseGenerator],
                                                         architecture: str, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = overfit_generators[architecture]
    assert generator.trace_steps
    settings = (DecodingSettings(strategy="greedy", min_length=16, max_length=16, no_repeat_ngram=0),
                DecodingSettings(strategy="beam", beam_width=3))
    traced = [generator.replies(QUESTIONS, decoding=s) for s in settings]
    traced += [[generator.reply(q, decoding=settings[0]) for q in QUESTIONS[:3]]]
    assert _TRACED_STEPS.get(generator.model), "no step was traced"
    monkeypatch.setattr(generator, "trace_steps", False)
    eager = [generator.replies(QUESTIONS, decoding=s) for s in settings]
    eager += [[generator.reply(q, decoding=settings[0]) for q in QUESTIONS[:3]]]
    for traced_replies, eager_replies in zip(traced, eager, strict=True):
        assert [r.text for r in traced_replies] == [r.text for r in eager_replies]
        assert [r.mean_log_prob for r in traced_replies] == pytest.approx([r.mean_log_prob for r in eager_replies],
                                                                          abs=1e-5)



@pytest.mark.parametrize(("architecture", "sizes"), [
    ("seq2seq", {"embedding_dim": 16, "hidden_size": 24, "layers": 2, "attention": "luong"}),
    ("seq2seq", {"embedding_dim": 16, "hidden_size": 24, "layers": 2, "attention": "bahdanau"}),
    ("transformer", {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 2, "feedforward": 32}),
    ("transformer", {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "feedforward": 32,
                     "tie_embeddings": False}),
])
def test_token_by_token_steps_score_a_reply_as_training_does(architecture: str, sizes: dict[str, Any]) -> None:
    """Decoding's step (GRU cells, or the cached decoder) and training's whole-sequence pass are
    separate code; a reply must get the same log-probabilities from both."""
    torch.manual_seed(0)
    model = build_model(architecture, 60, sizes).eval()
    source = torch.randint(5, 60, (3, 9))
    mask = torch.ones_like(source, dtype=torch.bool)
    mask[1, 6:] = False
    target = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(5, 60, (3, 7))], dim=1)
    with torch.inference_mode():
        whole = model(source, mask, target)
        state, stepped = model.start(source, mask), []
        for position in range(target.size(1)):
            logits, state = model.step(target[:, position], state)
            stepped.append(logits)
    assert torch.stack(stepped, dim=1) == pytest.approx(whole, abs=1e-5)
