"""Checks a generated reply must pass before it is sent: placeholders filled from what the
bot knows, blocked phrases removed, a length limit, and no number, duration or price that
the shop's facts (data/shop_facts.yml) do not state. Plain Python; no Rasa."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.text import PLACEHOLDER_PATTERN, detect_language, join_sentences

# a full stop before a digit is a decimal point ($4.95), not a sentence's end
_SENTENCE_END = re.compile(r"(?<=[!?。！？])\s*|(?<=\.)(?!\d)\s*")
_CHINESE_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"(?:\d+(?:[.,]\d+)?|[零一二两三四五六七八九十]+)"
_UNITS = {
    "minute": "minute", "minutes": "minute", "hour": "hour", "hours": "hour", "day": "day", "days": "day",
    "week": "week", "weeks": "week", "month": "month", "months": "month", "year": "year", "years": "year",
    "分钟": "minute", "小时": "hour", "天": "day", "个工作日": "day", "工作日": "day", "日": "day", "周": "week",
    "星期": "week", "个月": "month", "月": "month", "年": "year",
}
_UNIT = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
_CURRENCY = r"(?:dollars?|euros?|usd|eur|美元|元|欧元)"
_PRICE = re.compile(rf"[$€£¥]\s?(?P<amount>{_NUMBER})|(?P<amount2>{_NUMBER})\s?{_CURRENCY}", re.IGNORECASE)
# 下一个工作日 is "the next working day", not a duration of one day
_DURATION = re.compile(rf"(?<![下上第这那每])(?P<low>{_NUMBER})(?:\s?(?:-|–|to|至|到)\s?(?P<high>{_NUMBER}))?"
                       rf"[\s-]?(?:(?:business|working|calendar|more)\s)?(?P<unit>{_UNIT})(?![a-z])", re.IGNORECASE)
# Chinese numerals count only in prices and durations: alone they are mostly words (一下, 一些).
_BARE_NUMBER = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)?(?![\d])")


def _number(text: str) -> str:
    """'4.95' -> '4.95', '4,95' -> '4.95', '七' -> '7', '十五' -> '15'."""
    if text[0].isdigit():
        return text.replace(",", ".")
    if "十" in text:
        tens, _, units = text.partition("十")
        return str(_CHINESE_DIGITS.get(tens, 1) * 10 + _CHINESE_DIGITS.get(units, 0))
    return "".join(str(_CHINESE_DIGITS[c]) for c in text)


def factual_claims(text: str) -> set[str]:
    """Prices, durations and other numbers stated in `text`, normalised so that
    "$4.95" == "4.95 dollars" and "3-5 business days" == "3到5个工作日"."""
    text = PLACEHOLDER_PATTERN.sub(" ", text)
    claims: set[str] = set()
    for match in _PRICE.finditer(text):
        claims.add(f"price {_number(match.group('amount') or match.group('amount2'))}")
    text = _PRICE.sub(" ", text)
    for match in _DURATION.finditer(text):
        span = _number(match.group("low")) + (f"-{_number(match.group('high'))}" if match.group("high") else "")
        claims.add(f"duration {span} {_UNITS[match.group('unit').lower()]}")
    text = _DURATION.sub(" ", text)
    claims.update(f"number {_number(m.group(0))}" for m in _BARE_NUMBER.finditer(text))
    return claims


class FactsFileError(ValueError):
    """A facts file that is missing or malformed."""


@dataclass
class ShopFacts:
    statements: list[str]
    claims: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.claims = set().union(*(factual_claims(s) for s in self.statements)) if self.statements else set()
        # a bare number is fine when it is part of a stated fact ("Express 1-2")
        self.claims |= {f"number {n}" for claim in self.claims for n in re.findall(r"[\d.]+", claim.split()[1])}

    @classmethod
    def load(cls, path: str | Path) -> ShopFacts:
        path = Path(path)
        if not path.is_file():
            raise FactsFileError(f"{path}: no such facts file; fix the policy's `facts` setting")
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise FactsFileError(f"{path}: not valid YAML ({error})") from error
        if not isinstance(document, dict) or not all(isinstance(v, list) for v in document.values()):
            raise FactsFileError(f"{path}: expected topics, each with a list of fact sentences")
        return cls([str(statement) for statements in document.values() for statement in statements])

    def unsupported_claims(self, reply: str, context: str = "") -> set[str]:
        """What `reply` states that neither the facts nor `context` (what the customer
        said, e.g. "I bought it 25 days ago") state."""
        return factual_claims(reply) - self.claims - factual_claims(context)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _slot_key(name: str) -> str:
    """'{{Order Number}}', '[ORDER_ID]', 'order_id' -> 'order_number' / 'order_id' style keys."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip("{}[] ").lower()).strip("_")


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Fill `{{Order Number}}` / `[ORDER_ID]` placeholders from `values` (slot and entity
    values, keyed by name); drop each sentence with a placeholder that cannot be filled."""
    known = {_slot_key(name): str(value) for name, value in values.items() if value not in (None, "")}
    kept = []
    for sentence in sentences(text):
        filled, unfilled = sentence, False
        for placeholder in set(PLACEHOLDER_PATTERN.findall(sentence)):
            key = _slot_key(placeholder)
            value = known.get(key) or known.get(key.replace("number", "id")) or known.get(key.replace("id", "number"))
            if value is None:
                unfilled = True
                break
            filled = filled.replace(placeholder, value)
        if not unfilled:
            kept.append(filled)
    return join_sentences(kept, detect_language(text))


def drop_blocked(text: str, blocklist: Iterable[str]) -> str:
    """Drop each sentence containing a blocked word or phrase (case-insensitive, whole words)."""
    patterns = [re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE) for phrase in blocklist if phrase]
    return join_sentences([s for s in sentences(text) if not any(p.search(s) for p in patterns)],
                          detect_language(text))


def limit_length(text: str, max_characters: int) -> str:
    """Whole sentences up to `max_characters`; a single longer sentence is cut at a word."""
    kept, length = [], 0
    for sentence in sentences(text):
        if length + len(sentence) + bool(kept) > max_characters:
            break
        kept.append(sentence)
        length += len(sentence) + bool(kept)
    if kept or not text:
        return join_sentences(kept, detect_language(text))
    cut = text[:max_characters].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ") + "…"
