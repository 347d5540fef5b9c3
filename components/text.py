"""Text handling shared by the corpus pipeline and the components: normalisation,
language detection, PII masking and tokenisation for English and Chinese."""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

# Placeholders are single tokens everywhere: PII masks like [EMAIL] and the
# {{Template Slot}} placeholders found in templated support answers.
PLACEHOLDER_PATTERN = re.compile(r"\[[A-Z][A-Z_]*\]|\{\{[^{}\n]{1,60}\}\}")
PII_PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[ID]", "[ORDER_ID]")

_HTML_TAG = re.compile(r"<(?:/?[A-Za-z][^<>]*|!--.*?--)>", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")
# Control, format, surrogate and private-use characters (Unicode Cc, Cf, Cs, Co) of
# the Basic Multilingual Plane.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\ue000-\uf8ff]"
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
# A word of letters only: "abc-12" or "A1B2" is a code, which tells no language.
_LATIN_WORD = re.compile(r"(?<![\w-])[A-Za-z]+(?:'[A-Za-z]+)?(?![\w-])")
# ASCII marks that NFKC makes of Chinese full-width ones, put back where they touch Chinese.
_FULL_WIDTH = {",": "，", ":": "：", "?": "？", "!": "！", ";": "；", "(": "（", ")": "）"}
_AFTER_CHINESE_MARK = re.compile(rf"(?<={_CJK.pattern}|[，：？！；）。])\s?([,:?!;)])")
_BEFORE_CHINESE_MARK = re.compile(rf"(\()(?={_CJK.pattern})")
# Chinese characters and full-width punctuation: no space is wanted next to them.
_WIDE = re.compile(r"[\u3000-\u303f\uff00-\uffef\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE_BETWEEN_WIDE = re.compile(rf"(?<={_WIDE.pattern})\s+(?={_WIDE.pattern})")


def normalise(text: str) -> str:
    """NFKC, HTML entities and tags removed, control characters and runs of
    whitespace turned into single spaces. Chinese text keeps its full-width punctuation,
    which NFKC folds, and loses spaces between Chinese characters and marks."""
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = _HTML_TAG.sub(" ", text)
    text = _INVISIBLE.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip()
    if not _CJK.search(text):
        return text
    text = _AFTER_CHINESE_MARK.sub(lambda m: _FULL_WIDTH[m.group(1)], text)
    text = _BEFORE_CHINESE_MARK.sub(lambda m: _FULL_WIDTH[m.group(1)], text)
    return _SPACE_BETWEEN_WIDE.sub("", text)


@dataclass(frozen=True)
class Language:
    """What the code needs to know of one language the assistant speaks."""

    code: str
    # Written without spaces between words and sentences (character shingles, no joining space).
    unspaced: bool = False
    # sacrebleu's tokeniser for BLEU on this language's text.
    bleu_tokenize: str = "13a"


# The assistant's languages, the first the default. A new language is one more entry here
# (with its detection in detect_language) plus its variants of the responses in domain.yml.
LANGUAGE_LIST = (Language("en"), Language("zh", unspaced=True, bleu_tokenize="zh"))
LANGUAGES = tuple(language.code for language in LANGUAGE_LIST)
DEFAULT_LANGUAGE = LANGUAGES[0]
_BY_CODE = {language.code: language for language in LANGUAGE_LIST}


def language(code: str | None) -> Language:
    """The language named `code`; the default language for None or an unknown code."""
    return _BY_CODE.get(code or DEFAULT_LANGUAGE, LANGUAGE_LIST[0])


def chinese_characters(text: str) -> int:
    """How many Chinese characters `text` holds."""
    return len(_CJK.findall(text))


# The words a sentence is built with, as opposed to the names and nouns a bilingual customer
# borrows from the other language ("can I pay with 支付宝?", "我的 order 怎么还没 ship").
_ENGLISH_GRAMMAR = frozenset(
    "i you we my your our me us it this that is are was were am be do does did don't can could will would "
    "should have has had not no the a an to with for of in on at from how what where when why which who "
    "please there and or but".split())
_CHINESE_GRAMMAR = frozenset("的了吗呢吧啊呀嘛我你您们他她它这那是不没能可以要想怎么什哪在会有还就都很把被给请帮")


def detect_language(text: str) -> str:
    """`en` or `zh`. A message in one script is in that language. One that mixes them is in the
    language whose grammar words it uses more (I, can, with; 的, 吗, 怎么), the other language's
    words being borrowed names and nouns; with as many of each, `zh` when Chinese characters make
    up at least a fifth of the letters."""
    if not _CJK.search(text):
        return "en"
    plain = PLACEHOLDER_PATTERN.sub(" ", text)
    if not _LATIN_LETTER.search(plain):
        return "zh"
    english = sum(word.lower() in _ENGLISH_GRAMMAR for word in _LATIN_WORD.findall(plain))
    chinese_grammar = sum(character in _CHINESE_GRAMMAR for character in plain)
    if english != chinese_grammar:
        return "en" if english > chinese_grammar else "zh"
    chinese = chinese_characters(text)
    latin = len(_LATIN_LETTER.findall(plain))
    return "zh" if chinese * 5 >= chinese + latin else "en"


@lru_cache(maxsize=1)
def _traditional_to_simplified():  # noqa: ANN202 - opencc.OpenCC
    import opencc

    return opencc.OpenCC("t2s")


def fold_traditional(text: str) -> str:
    """Traditional Chinese characters as simplified ones (訂單 -> 订单), for matching: the
    NLU data is mostly simplified. Only a conversion that keeps every character in place is
    used, so offsets into `text` stay valid."""
    if not _CJK.search(text):
        return text
    folded = _traditional_to_simplified().convert(text)
    return folded if len(folded) == len(text) else text


def message_language(text: str) -> str | None:
    """The language of a customer's message, or None when it has no words to tell by (an
    order number, a code like "abc-12", an emoji), so the conversation keeps its language."""
    if not _CJK.search(text) and not _LATIN_WORD.search(PLACEHOLDER_PATTERN.sub(" ", text)):
        return None
    return detect_language(text)


def written_in(reply: str, lang: str | None) -> bool:
    """Whether the bot's `reply` is written in `lang` (any language when None or empty). A
    Chinese reply may name more brands in Latin letters than it has Chinese characters
    (Visa、Mastercard、Apple Pay), so any Chinese character makes it Chinese."""
    if not lang:
        return True
    return ("zh" if _CJK.search(reply) else "en") == lang


def join_sentences(sentences: list[str], lang: str) -> str:
    """Sentences as one text. Chinese ones follow each other without a space; a space stays
    only between two sentences that both meet it in Latin script."""
    parts = [s.strip() for s in sentences if s.strip()]
    if not language(lang).unspaced:
        return " ".join(parts)
    text = ""
    for part in parts:
        text += " " + part if text and not _WIDE.match(text[-1]) and not _WIDE.match(part[0]) else part
    return text


def script_runs(text: str) -> list[tuple[int, int, bool]]:
    """`text` cut into runs of Chinese characters and runs of anything else:
    (start, end, is_chinese) in order."""
    runs: list[tuple[int, int, bool]] = []
    for match in re.finditer(f"{_CJK.pattern}+|(?:(?!{_CJK.pattern}).)+", text, re.DOTALL):
        runs.append((match.start(), match.end(), bool(_CJK.match(match.group(0)))))
    return runs


# ---- PII masking -------------------------------------------------------------

# Boundaries are ASCII on purpose: Chinese characters count as \w, and numbers
# written straight after them ("订单12345678") must still be found.
DEFAULT_ORDER_ID_PATTERN = r"(?<![A-Za-z0-9_#])#?\d{5,8}(?![A-Za-z0-9_])"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CHINESE_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![A-Za-z0-9_+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # international
    r"|(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"  # Chinese mobile
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567
    r")(?![A-Za-z0-9_])"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# Issuer prefixes and lengths of the card networks, so that a long order number that
# happens to pass the Luhn check is not taken for a card.
_CARD_ISSUER = re.compile(
    r"4(?:\d{12}|\d{15}|\d{18})"  # Visa
    r"|(?:5[1-5]\d\d|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|3(?:0[0-5]|[68]\d)\d{11,13}"  # Diners Club
    r"|(?:6011|65\d\d|64[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|62\d{14,17}"  # UnionPay
)


def card_number_valid(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return bool(_CARD_ISSUER.fullmatch(digits)) and luhn_valid(digits)


def chinese_id_valid(number: str) -> bool:
    """GB 11643 check digit, plus a plausible birth month and day."""
    month, day = int(number[10:12]), int(number[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    checksum = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True)) % 11
    return _ID_CHECK[checksum] == number[17].upper()


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@dataclass
class PiiMasker:
    """Replaces personal data with typed placeholders and counts what it masked."""

    order_id_pattern: str = DEFAULT_ORDER_ID_PATTERN
    masked: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        order_ids = re.compile(self.order_id_pattern)
        # Most specific first: an ID number is also a Luhn-checkable run of digits.
        self._rules: list[tuple[str, re.Pattern, Callable[[str], bool] | None]] = [
            ("[EMAIL]", _EMAIL, None),
            ("[IBAN]", _IBAN, iban_valid),
            ("[ID]", _CHINESE_ID, chinese_id_valid),
            ("[CARD]", _CARD, card_number_valid),
            ("[PHONE]", _PHONE, None),
            ("[ORDER_ID]", order_ids, None),
        ]

    def mask(self, text: str) -> str:
        """`text` with personal data replaced; the counts add up in `masked`."""
        masked, found = self.mask_counted(text)
        self.masked.update(found)
        return masked

    def mask_counted(self, text: str) -> tuple[str, Counter]:
        """`text` with personal data replaced, and how many of each kind this text had."""
        found: Counter = Counter()

        def replace(match: re.Match, placeholder: str, is_valid: Callable[[str], bool] | None) -> str:
            if is_valid is not None and not is_valid(match.group(0)):
                return match.group(0)
            found[placeholder] += 1
            return placeholder

        pieces = []
        # Template placeholders are cut out first so no rule can match inside them.
        for piece, is_placeholder in split_placeholders(text):
            if not is_placeholder:
                for placeholder, pattern, is_valid in self._rules:
                    if pattern.search(piece):
                        piece = pattern.sub(lambda m, p=placeholder, v=is_valid: replace(m, p, v), piece)
            pieces.append(piece)
        return "".join(pieces), found


def split_placeholders(text: str) -> list[tuple[str, bool]]:
    """`text` cut into pieces, in order, each marked True if it is a placeholder."""
    pieces, start = [], 0
    for match in PLACEHOLDER_PATTERN.finditer(text):
        if match.start() > start:
            pieces.append((text[start : match.start()], False))
        pieces.append((match.group(0), True))
        start = match.end()
    if start < len(text):
        pieces.append((text[start:], False))
    return pieces


# ---- tokenisation ------------------------------------------------------------


@lru_cache(maxsize=1)
def _english_tokenizer():  # noqa: ANN202 - spaCy's Tokenizer type
    # The tokenizer needs neither TensorFlow nor PyTorch, but spaCy's thinc imports
    # both when installed (15 s and 1 GB). Hide those not loaded yet while it loads.
    hidden = [name for name in ("tensorflow", "torch") if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))
    try:
        import spacy

        # A blank pipeline: only the rule-based tokenizer, no model to download.
        return spacy.blank("en").tokenizer
    finally:
        for name in hidden:
            del sys.modules[name]


@lru_cache(maxsize=1)
def _jieba():  # noqa: ANN202
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def chinese_word_count(word: str) -> int:
    """How often jieba's dictionary has seen `word` as a word (0: never)."""
    return _jieba().dt.FREQ.get(word) or 0


def tokenize(text: str, lang: str) -> list[str]:
    """Words of `text`: spaCy's English rules or jieba's Chinese segmentation.
    Placeholders stay whole."""
    tokens: list[str] = []
    for piece, is_placeholder in split_placeholders(text):
        if is_placeholder:
            tokens.append(piece)
        elif lang == "zh":
            tokens.extend(t for t in _jieba().lcut(piece) if t.strip())
        else:
            tokens.extend(t.text for t in _english_tokenizer()(piece) if not t.is_space)
    return tokens
