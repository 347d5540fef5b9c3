"""Tiny generators trained once per test run on a ten-pair corpus they must learn by heart."""

from __future__ import annotations

from typing import Any

import pytest

from components.generator.data import Dialogue
from components.generator.generator import ResponseGenerator
from components.generator.training import GeneratorConfig, train_generator

TEN_PAIRS = [
    Dialogue("hi", "Hello! How can I help you today?"),
    Dialogue("where is my order", "Please tell me your order number."),
    Dialogue("how long does delivery take", "Standard delivery takes 3 to 5 working days."),
    Dialogue("can I return an item", "Yes, you can return items within 30 days."),
    Dialogue("do you ship abroad", "We ship to most countries in Europe."),
    Dialogue("what payment methods do you accept", "We accept cards, PayPal and bank transfer."),
    Dialogue("my email is [EMAIL]", "Thanks, we will write to [EMAIL] about order {{Order Number}}."),
    Dialogue("thanks", "You're welcome!"),
    Dialogue("你好", "您好！请问有什么可以帮您？"),
    Dialogue("退款要多久", "退款会在七天内到账。"),
]

TINY_MODELS: dict[str, dict[str, Any]] = {
    "seq2seq": {"embedding_dim": 48, "hidden_size": 64, "dropout": 0.0},
    "transformer": {"d_model": 48, "heads": 2, "encoder_layers": 2, "decoder_layers": 2, "feedforward": 96,
                    "dropout": 0.0},
}


def tiny_config(architecture: str, **training: Any) -> GeneratorConfig:
    return GeneratorConfig.from_dict({
        "architecture": architecture,
        "model": TINY_MODELS[architecture],
        "tokenizer": {"vocab_size": 500, "min_frequency": 1},
        "training": {"epochs": 100, "learning_rate": 1e-2, "warmup_steps": 5, "label_smoothing": 0.0,
                     "patience": 1000, "batch_size": 16, "threads": 1, "progress": False, **training},
        "decoding": {"strategy": "greedy", "no_repeat_ngram": 0},
    })


@pytest.fixture(scope="session")
def overfit_generators() -> dict[str, ResponseGenerator]:
    return {name: train_generator(TEN_PAIRS, TEN_PAIRS, tiny_config(name)).generator for name in TINY_MODELS}


@pytest.fixture(params=sorted(TINY_MODELS))
def overfit_generator(request: pytest.FixtureRequest,
                      overfit_generators: dict[str, ResponseGenerator]) -> ResponseGenerator:
    return overfit_generators[request.param]
