"""Checks every Kefu featurizer must pass, and helpers to run a component outside a graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

ENGLISH = [
    ("where is my order", "order_status"), ("track my parcel please", "order_status"),
    ("how long does delivery take", "delivery_time"), ("when will my parcel arrive", "delivery_time"),
    ("I want to return my shoes", "return_item"), ("send back the jacket", "return_item"),
    ("which payment methods do you accept", "payment_methods"), ("can I pay with paypal", "payment_methods"),
]
CHINESE = [("我的订单在哪里", "order_status"), ("快递什么时候到", "delivery_time"), ("我想退货", "return_item")]


class Component:
    """A featurizer class with the storage and context Rasa would give it."""

    def __init__(self, cls: type, folder: Path, config: dict[str, Any], finetuning: bool = False) -> None:
        self.cls = cls
        self.config = {**cls.get_default_config(), **config}
        folder.mkdir(parents=True, exist_ok=True)
        self.storage = LocalModelStorage(folder)
        self.resource = Resource(cls.__name__)
        self.context = ExecutionContext(GraphSchema({}), node_name=cls.__name__, is_finetuning=finetuning)

    def trained(self, messages: list[Message]) -> Any:
        featurizer = self.cls.create(self.config, self.storage, self.resource, self.context)
        featurizer.train(TrainingData(messages))
        return featurizer

    def loaded(self) -> Any:
        return self.cls.load(self.config, self.storage, self.resource, self.context)


def tokenised(examples: list[tuple[str, str]] | list[str], chinese: bool = False) -> list[Message]:
    messages = [Message(data={TEXT: e[0], INTENT: e[1]} if isinstance(e, tuple) else {TEXT: e}) for e in examples]
    tokenizer_class = JiebaTokenizer if chinese else WhitespaceTokenizer
    context = ExecutionContext(GraphSchema({}), node_name="tokenizer")
    tokenizer = tokenizer_class.create(tokenizer_class.get_default_config(), None, None, context)
    tokenizer.process(messages)
    return messages


def features(featurizer: Any, messages: list[Message]) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    featurizer.process(messages)
    result = []
    for message in messages:
        sequence, sentence = message.get_dense_features(TEXT, [])
        result.append((sequence.features if sequence else None, sentence.features if sentence else None))
    return result


def check_featurizer(make: Callable[[], Component], dimensions: int) -> None:
    """The checks of the featurizer contract, on English and Chinese."""
    component = make()
    featurizer = component.trained(tokenised(ENGLISH))

    probe = tokenised(["where is my parcel", "a completely unseen sentence"])
    (sequence, sentence), _ = features(featurizer, probe)
    assert sequence.shape == (4, dimensions)  # one row per token
    assert sentence.shape == (1, dimensions)
    assert np.isfinite(sequence).all() and np.abs(sentence).sum() > 0

    untokenised = [Message(data={TEXT: "where is my order"})]
    assert features(featurizer, untokenised) == [(None, None)]  # no tokens, no features

    (sequence_of_empty, _), = features(featurizer, tokenised([""]))  # Rasa gives "" one empty token
    assert sequence_of_empty.shape == (1, dimensions)

    reloaded = component.loaded()
    again = features(reloaded, tokenised(["where is my parcel", "a completely unseen sentence"]))[0]
    assert np.array_equal(again[0], sequence) and np.array_equal(again[1], sentence)

    chinese = tokenised(["我的快递什么时候到"], chinese=True)
    (sequence, sentence), = features(reloaded, chinese)
    assert sequence.shape[0] == len(chinese[0].get("text_tokens")) and sentence.shape == (1, dimensions)
