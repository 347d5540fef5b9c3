"""`MixedTokenizer`: one Rasa tokenizer for Chinese, English and both in one message.

Runs of Chinese characters go to jieba; everything else follows the rules of Rasa's
`WhitespaceTokenizer`, which the English pipeline used. Order numbers, e-mail addresses,
links and the user dictionary's terms stay single tokens wherever they stand. jieba's
dictionary and the user dictionary are copied into the Rasa model, so a model answers the
same on any machine.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import rasa.utils.io
import regex
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.corpus import file_digest
from components.text import DEFAULT_ORDER_ID_PATTERN, PLACEHOLDER_PATTERN, fold_traditional, script_runs

MAIN_DICTIONARY = "dictionary.txt"
USER_DICTIONARY = "user_dictionary.txt"

_EMAIL_OR_LINK = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}|https?://[^\s\u3000-\u303f\uff00-\uffef]+"
# WhitespaceTokenizer's rule: punctuation is dropped unless it sits inside a word, a number,
# an e-mail address or a link.
_NOT_A_WORD = regex.compile(
    r"[^\w#@&]+(?=\s|$)|(\s|^)[^\w#@&]+(?=[^0-9\s])|(?<=[^0-9\s])[^\w._~:/?#\[\]()@!$&*+,;=-]+(?=[^0-9\s])"
)


def _bundled_dictionary() -> Path:
    import jieba

    return Path(jieba.__file__).parent / "dict.txt"


def _segmenter(dictionary: Path, terms: list[str]):  # noqa: ANN202 - jieba.Tokenizer
    import jieba

    jieba.setLogLevel(logging.WARNING)
    segmenter = jieba.Tokenizer(dictionary=str(dictionary))
    # jieba names its cache after the dictionary's path; naming it after the contents lets
    # every copy of the same dictionary (one per loaded model) share one cache.
    segmenter.cache_file = f"jieba.kefu.{hashlib.sha1(dictionary.read_bytes()).hexdigest()[:16]}.cache"
    segmenter.initialize()
    for term in terms:
        segmenter.add_word(term)
    return segmenter


def read_user_dictionary(path: Path) -> list[str]:
    """The terms of a jieba user dictionary ("term [frequency] [tag]" a line; # comments)."""
    terms = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        # A term may hold spaces ("AirPods Pro"); a trailing number, and a tag after it, are jieba's.
        if len(parts) >= 2 and parts[-1].isdigit():
            parts = parts[:-1]
        elif len(parts) >= 3 and parts[-2].isdigit():
            parts = parts[:-2]
        term = " ".join(parts)
        if not term:
            raise InvalidConfigException(f"{path} line {number}: no term")
        terms.append(term)
    return terms


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class MixedTokenizer(Tokenizer):
    """Tokens for Chinese, English and mixed messages."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # jieba's main dictionary; None is the one the jieba package ships.
            "dictionary": None,
            # Shop words jieba should keep whole ("退款", "优惠码", "AirPods Pro"): one term a
            # line, optionally followed by a frequency. None: no user dictionary.
            "user_dictionary": "data/shop_words.txt",
            # Order numbers (the corpus pipeline's pattern) stay one token.
            "order_id_pattern": DEFAULT_ORDER_ID_PATTERN,
            # Tokens of traditional Chinese text (訂單) carry the simplified characters (订单),
            # so both scripts meet the same features.
            "fold_traditional": True,
            # Split intent names like Rasa's own tokenizers.
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["jieba", "opencc"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """An edited dictionary retrains the model."""
        paths = [Path(config[key]) for key in ("dictionary", "user_dictionary") if config.get(key)]
        return file_digest([p for p in paths if p.is_file()]) if paths else None

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 dictionary: Path, user_dictionary: Path | None) -> None:
        super().__init__(config)
        self._model_storage = model_storage
        self._resource = resource
        self._dictionary = dictionary
        self._user_dictionary = user_dictionary
        terms = read_user_dictionary(user_dictionary) if user_dictionary else []
        # Terms with Latin letters or spaces never reach jieba whole, so they are found first.
        kept_whole = sorted((t for t in terms if not re.fullmatch(r"[\u3400-\u9fff\uf900-\ufaff]+", t)),
                            key=len, reverse=True)
        pieces = [PLACEHOLDER_PATTERN.pattern, _EMAIL_OR_LINK, config["order_id_pattern"]]
        pieces += [r"(?<![A-Za-z0-9])" + re.escape(t) + r"(?![A-Za-z0-9])" for t in kept_whole]
        self._whole = re.compile("|".join(f"(?:{p})" for p in pieces), re.IGNORECASE)
        self._emoji = rasa.utils.io.get_emoji_regex()
        # Built now: a loaded model's files are gone once Rasa has loaded it.
        self._jieba = _segmenter(dictionary, terms)

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> MixedTokenizer:
        dictionary = Path(config["dictionary"]) if config["dictionary"] else _bundled_dictionary()
        user_dictionary = Path(config["user_dictionary"]) if config["user_dictionary"] else None
        for path, key in ((dictionary, "dictionary"), (user_dictionary, "user_dictionary")):
            if path is not None and not path.is_file():
                raise InvalidConfigException(f"MixedTokenizer: {key} {path} is not a file; fix the path in "
                                             "config.yml or set it to null")
        return cls(config, model_storage, resource, dictionary, user_dictionary)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> MixedTokenizer:
        with model_storage.read_from(resource) as folder:
            user_dictionary = folder / USER_DICTIONARY
            return cls(config, model_storage, resource, folder / MAIN_DICTIONARY,
                       user_dictionary if user_dictionary.is_file() else None)

    def train(self, training_data: TrainingData) -> Resource:
        with self._model_storage.write_to(self._resource) as folder:
            # copy2 keeps the file's time, so jieba's cache of the dictionary stays valid.
            shutil.copy2(self._dictionary, folder / MAIN_DICTIONARY)
            if self._user_dictionary is not None:
                shutil.copy2(self._user_dictionary, folder / USER_DICTIONARY)
        return self._resource

    def _words(self, text: str, start: int) -> list[Token]:
        """Tokens of a stretch without Chinese characters, WhitespaceTokenizer's way."""
        tokens, position = [], 0
        for word in _NOT_A_WORD.sub(" ", text).split():
            if self._emoji.fullmatch(word):
                continue
            position = text.find(word, position)
            tokens.append(Token(word, start + position))
            position += len(word)
        return tokens

    def _split(self, text: str, start: int) -> list[Token]:
        tokens = []
        for run_start, run_end, is_chinese in script_runs(text):
            run = text[run_start:run_end]
            if is_chinese:
                tokens += [Token(word, start + run_start + offset)
                           for word, offset, _ in self._jieba.tokenize(run)]
            else:
                tokens += self._words(run, start + run_start)
        return tokens

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        if self._config["fold_traditional"]:
            text = fold_traditional(text)  # same length: the offsets still point into the message
        tokens, position = [], 0
        for match in self._whole.finditer(text):
            tokens += self._split(text[position:match.start()], position)
            tokens.append(Token(match.group(0), match.start()))
            position = match.end()
        tokens += self._split(text[position:], position)
        if not tokens and text.strip():
            # Only punctuation or emoji: the whole text is the token, as in WhitespaceTokenizer.
            stripped = text.strip()
            tokens = [Token(stripped, text.index(stripped))]
        return self._apply_token_pattern(tokens)
