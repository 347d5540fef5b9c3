"""MixedTokenizer: Chinese, English and mixed messages, and its dictionaries saved in the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.tokenizers import MixedTokenizer
from tests.conftest import PROJECT

SHOP_WORDS = PROJECT / "data" / "shop_words.txt"


def make_tokenizer(storage: LocalModelStorage, user_dictionary: Path | None = SHOP_WORDS) -> MixedTokenizer:
    config = {**MixedTokenizer.get_default_config(),
              "user_dictionary": str(user_dictionary) if user_dictionary else None}
    return MixedTokenizer.create(config, storage, Resource("tokenizer"), ExecutionContext(GraphSchema({}), "m"))


def words(tokenizer: MixedTokenizer, text: str) -> list[str]:
    tokens = tokenizer.tokenize(Message(data={"text": text}), "text")
    assert all(text[t.start:t.end] == t.text for t in tokens), "offsets point at the token's text"
    return [t.text for t in tokens]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> MixedTokenizer:
    return make_tokenizer(LocalModelStorage(tmp_path_factory.mktemp("storage")))


def new_storage(folder: Path) -> LocalModelStorage:
    folder.mkdir()
    return LocalModelStorage(folder)


@pytest.mark.parametrize(("text", "expected"), [
    ("我的订单 12345 还没到", ["我", "的", "订单", "12345"]),
    ("can I 退货?", ["can", "I", "退货"]),
    ("订单号12345678，怎么还没发货？", ["订单号", "12345678", "怎么"]),
    ("我要退款，发票在哪里开", ["退款", "发票"]),
    ("有优惠码吗", ["优惠码"]),
    ("my email is anna.li@example.com, order #884213", ["my", "email", "anna.li@example.com", "order", "#884213"]),
    ("能用 Apple Pay 付款吗？", ["Apple Pay", "付款"]),
    ("where is my order?", ["where", "is", "my", "order"]),
])
def test_mixed_messages_are_split_sensibly(tokenizer: MixedTokenizer, text: str, expected: list[str]) -> None:
    tokens = words(tokenizer, text)
    position = 0
    for word in expected:  # each expected word is a whole token, in this order
        assert word in tokens[position:], (word, tokens)
        position = tokens.index(word, position) + 1
    assert not [t for t in tokens if t in "，。？！,.?!"], "punctuation is not a token"


def test_traditional_characters_meet_the_simplified_features(tokenizer: MixedTokenizer) -> None:
    text = "我的訂單到哪了？轉人工"
    tokens = tokenizer.tokenize(Message(data={"text": text}), "text")
    assert [t.text for t in tokens] == [t.text for t in tokenizer.tokenize(
        Message(data={"text": "我的订单到哪了？转人工"}), "text")]
    assert "订单" in [t.text for t in tokens] and [text[t.start:t.end] for t in tokens][2] == "訂單"


def test_punctuation_or_emoji_alone_is_one_token(tokenizer: MixedTokenizer) -> None:
    assert words(tokenizer, "👍") == ["👍"]
    assert words(tokenizer, "？？") == ["？？"]


def test_dictionaries_travel_inside_the_model(tmp_path: Path) -> None:
    user_words = tmp_path / "words.txt"
    user_words.write_text("# shop words\n退货运费险 100\nKefu Plus\n", encoding="utf-8")
    storage = new_storage(tmp_path / "storage")
    trained = make_tokenizer(storage, user_words)
    resource = trained.train(TrainingData())
    user_words.unlink()  # the loaded model must not need the original file

    loaded = MixedTokenizer.load({**MixedTokenizer.get_default_config(), "user_dictionary": str(user_words)},
                                 storage, resource, ExecutionContext(GraphSchema({}), "m"))
    assert words(loaded, "有退货运费险吗") == ["有", "退货运费险", "吗"]
    assert "Kefu Plus" in words(loaded, "is Kefu Plus free?")


def test_a_missing_dictionary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigException, match="user_dictionary .*missing.txt is not a file"):
        make_tokenizer(new_storage(tmp_path / "storage"), tmp_path / "missing.txt")
