"""Choosing the answer to a customer's message: the intent's written response, the generated
reply, a clarifying question, or an offer of a human.

Plain Python; `GenerativeResponsePolicy` (its `answer_choice` option) is the Rasa adapter. The
choice rests on what NLU says (the intent, its confidence, the runner-up), on the generator's
calibrated confidence and the facts check, and on the words the shop's own texts use:

- NLU unsure, but a corpus question very close to the message (`unsure_corpus_similarity` in
  characters, `unsure_corpus_encoder_similarity` in meaning): the message is answered as that
  question's intent ("dbl charged for one order" is near "double charge on my credit card");
- NLU torn between two intents it can name: a question back ("Do you mean ...?"), unless both
  readings get the same no (below: 能寄到墨西哥吗, an address or a delivery question);
- a corpus question close to the message (`corpus_similarity` in characters, or
  `corpus_encoder_similarity` in meaning for the languages a sentence encoder reads), of the
  intent NLU names, whose answer says something the template does not: that corpus answer ("my
  card got billed twice" is near "I was charged twice", whose answer is the 3-day release of the
  duplicate); with `corpus_classifier_ratio`, in the languages compared in characters, a
  classifier over the intent's corpus answers and its template (components/answer_classifier.py)
  picks the answer instead of the nearest question (一个订单的钱被收了两遍 shares few characters with
  同一个订单扣了两笔);
- no corpus question close to the message in meaning (`coverage_similarity`, for the languages
  a sentence encoder reads): the shop's texts do not cover what was asked, so a person should
  answer ("are your products tested on animals?" is 0.35 from its nearest, "is the product
  available?");
- something the shop is known not to offer, named in a question whose template is a complete
  list (`not_offered`: "can I pay with bitcoin?", 能用微信支付吗), or a place outside the countries
  it delivers to (`delivers_to`: "can my order be sent to London?", 能寄到墨西哥吗): a written
  response that says no and names it, first of all, since a corpus answer or a generated "yes,
  we take ..." may list the right methods without saying no to the one asked about; a place
  inside them gets a written response that says yes and names it (`served_response`: "... to my
  aunt's in Montreal?"), then the answer chosen below;
- a word the shop's texts never use, in a question whose template is a complete list
  (`closed_intents`: payment methods, carriers): the facts do not cover it, so a person should
  answer rather than the list ("can I pay with dogecoin?");
- the generator, which learnt every corpus answer of the intent ("I was charged twice" has one),
  sure of a reply that passes the facts check and says something the template does not (their
  token F1 is below `template_overlap`): the generated reply;
- otherwise the template: it covers the question.

Whichever answer is chosen, a customer who has waited longer than its longest stated time for
something that has not happened ("my refund was approved three weeks ago and there's still
nothing", against 5-7 business days) gets the offer of a person (`waited_too_long`); and a
message that asks for a price, a duration, a number or a tax
gets the template when that answer states none of that kind and the template does, else the
offer of a person (`asked_details`): "how long do you keep my data after I delete my account?"
is not answered by how to delete it, nor "how much extra is a Saturday delivery?" by a time.
A yes-or-no question naming a word the shop's texts never use gets its answer, then the offer of
a person (`unknown_word_offer`): "do you have a showroom?" is not answered by where stock is shown.

A corpus answer, and a generated reply that repeats one, goes out only when the message asks
what its corpus question asks (`condition_margin`): the question's words the message lacks, and
that are rare among the intent's NLU examples, are its condition ("I already wore the shoes
outside once, can I return them?" has already, wore, outside, once). When taking them out of the
question brings it closer to the message, the message did not ask that ("I want to return a pair
of shoes"), and the template answers; a condition said in other words keeps the question far
without them ("do you ship on weekends?" for "does it go out on saturdays and sundays?"). A
generated reply that repeats the answer of a question far from the message in meaning gets the
template too. Both tests read meaning only (the languages of `corpus_encoder_languages`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from components.answer_classifier import AnswerClassifier
from components.generator.metrics import token_f1
from components.generator.retrieval import RetrievalIndex
from components.places import Destination, Destinations, fold
from components.text import LANGUAGES, chinese_characters, fold_traditional, normalise, tokenize, written_in

TEMPLATE, GENERATED, RETRIEVED, CLARIFY, HANDOFF, NOT_OFFERED, DELIVERS_THERE = (
    "template", "generated", "retrieved", "clarify", "handoff", "not_offered", "delivers_there")
# a clause that asks yes or no: "is there ...", "can I ...", "do you ..."; 吗 at the end, or a verb
# and its negation (能不能, 有没有, 收不收), or a verb then 不 at the end (能退不)
_ENGLISH_YES_NO = re.compile(r"^\s*(?:is|are|do|does|did|can|could|will|would|should|may|any)\b", re.IGNORECASE)
_CHINESE_YES_NO = re.compile(r"(?:[吗么嘛]\s*$)|(.)[不没]\1|有没有|可不可以|[^\W\d_]不\s*$")
_CLAUSE_END = re.compile(r"[,;.!?:，；。！？：]+")
_ENGLISH_WORD = re.compile(r"[a-z][a-z']+")
# never a question's condition: taking them out only breaks the sentence
_FUNCTION_WORDS = frozenset(
    "the and but for nor not yet can could will would shall should may might must have has had was were are "
    "been being does did you your yours our ours they them their its this that these those there here with "
    "from into onto about just any some all who whom whose what when where which how why i'm i've i'd i'll "
    "it's don't can't won't".split())


@dataclass(frozen=True)
class AskedDetail:
    """A kind of detail a question can ask for, and what an answer that gives it must say."""

    name: str
    asked: dict[str, re.Pattern]  # language -> the words that ask for it
    stated: dict[str, re.Pattern]  # language -> what an answer giving it contains


def _words(*alternatives: str) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


# Chinese number words count only before a unit: 一 alone is in 一下, 一直, 统一.
_CHINESE_NUMBER = "(?:[0-9０-９]+|[一二两三四五六七八九十百千万半]+)\\s*"
_CHINESE_TIME_UNIT = "(?:分钟|小时|天|周|星期|个月|月|年|工作日)"
_CHINESE_AMOUNT = f"[0-9０-９]|{_CHINESE_NUMBER}(?:个|次|{_CHINESE_TIME_UNIT}|元|美元|块|件|张|笔|单|位)"
# 几 asks "how many" except where it says "a few": after 了, 好, 这, 那 or 前 (用了几个月, 好几天,
# 这几天, 前几天), which tell how long or how much already was.
_CHINESE_HOW_MANY = "(?<![了好这那前])几"
_ENGLISH_NUMBER = (r"(?:\d+(?:[.,]\d+)?(?:\s*[-–]\s*\d+)?"
                   r"|an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve)")
_TAX = {"en": _words("tax", "taxes", "vat", "dut(?:y|ies)", "customs"), "zh": re.compile("税|报关|清关")}
# What a question asks for decides what its answer must state: a price is not answered by a
# duration ("how much extra is a Saturday delivery?" by "orders ship within 24 hours").
ASKED_DETAILS = (
    AskedDetail(
        "a price or a fee",
        asked={"en": _words("how much", "fees?", "surcharges?", "costs?", "charges? (?:for|to|on)", "extra charges?"),
               "zh": re.compile("多少钱|几块|几元|费|收钱|要钱|加钱")},
        stated={"en": re.compile(r"[$€£¥]\s?\d|\d\s*(?:%|dollars?|usd|cents?)|" + _words(
                    "free", "no (?:extra )?(?:fee|charge|cost)s?", "(?:nothing|no) extra").pattern, re.IGNORECASE),
                "zh": re.compile(r"[$€£¥]\s?\d|\d\s*%|" + f"{_CHINESE_NUMBER}(?:元|美元|块|折)|免费|不收|不额外收")}),
    AskedDetail(
        "a duration",
        asked={"en": _words("how long", "time limits?"),
               "zh": re.compile(f"多久|多长时间|{_CHINESE_HOW_MANY}(?:天|周|个月|年|小时)|期限")},
        stated={"en": re.compile(f"\\b{_ENGLISH_NUMBER}\\s*(?:business |working )?"
                                 "(?:minutes?|hours?|h|days?|weeks?|months?|years?)\\b|"
                                 + _words("never", "immediately", "instantly", "right away", "forever",
                                          "permanently").pattern, re.IGNORECASE),
                "zh": re.compile(f"{_CHINESE_NUMBER}{_CHINESE_TIME_UNIT}|永不|永久|立即|马上|当天|次日")}),
    AskedDetail(
        "an amount (a number, a limit)",
        asked={"en": _words("how many", "maximum", "minimum", "(?<!time )limits?", "at (?:most|least)",
                            "the (?:most|least)"),
               "zh": re.compile(f"多少|{_CHINESE_HOW_MANY}(?!乎)|最高|最多|最少|最低|上限|下限|限额|至少")},
        # a digit anywhere: 1小时 and 24h state an amount, though no word boundary follows
        stated={"en": re.compile(r"\d|" + _words("one", "two", "three", "four", "five", "six", "seven", "eight",
                                                 "nine", "ten", "once", "twice", "single", "unlimited", "free",
                                                 "no (?:extra )?(?:fee|charge|cost|limit)s?").pattern, re.IGNORECASE),
                "zh": re.compile(f"{_CHINESE_AMOUNT}|免费|不收|不限")}),
    # an amount does not answer a question about tax: the delivery price says nothing of customs
    AskedDetail("a tax or customs duty", asked=_TAX, stated=_TAX),
)


# A customer who says how long they have waited for something the answer promises within a time
# ("my refund was approved three weeks ago and there's still nothing"): past the answer's longest
# time the answer cannot help. Only a wait for something that has not happened counts: "I bought
# them 6 weeks ago, can I still return them?" asks whether, and the answer's 30 days says no.
_NOT_YET = {"en": re.compile(r"\b(?:still (?:no|not|nothing|hasn'?t|haven'?t|isn'?t|waiting|there|on|showing|pending)|"
                             r"(?:hasn'?t|haven'?t|has not|have not|not) "
                             r"(?:yet|arrived|come|shipped|been|received|shown)|"
                             r"nothing (?:yet|has)|no \w+ yet|yet to)\b", re.IGNORECASE),
            "zh": re.compile("还没|还是没|仍然没|仍未|都没|一直没|迟迟没|还在")}
_ENGLISH_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                   "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple of": 2, "few": 3}
_UNIT_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0, "小时": 1 / 24, "天": 1.0,
              "日": 1.0, "周": 7.0, "星期": 7.0, "礼拜": 7.0, "月": 30.0, "年": 365.0}
_ENGLISH_SPAN = re.compile(r"\b(\d+|" + "|".join(_ENGLISH_COUNTS) + r")"
                           r"(?:\s*(?:-|–|to)\s*(\d+))?\s*(business |working )?(hour|day|week|month|year)s?\b",
                           re.IGNORECASE)
_CHINESE_SPAN = re.compile(r"([0-9]+|[一二两三四五六七八九十几半]+)"
                           r"(?:\s*(?:-|–|到|至|~)\s*([0-9]+|[一二两三四五六七八九十]+))?"
                           r"\s*个?\s*(工作日|小时|天|日|周|星期|礼拜|月|年)")
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
                   "几": 3, "半": 0.5}


def _chinese_count(text: str) -> float:
    """十二 -> 12, 二十 -> 20, 两 -> 2; digits as they are."""
    if text.isdigit():
        return float(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CHINESE_DIGITS.get(tens, 1) * 10 + _CHINESE_DIGITS.get(ones, 0)
    return float(sum(_CHINESE_DIGITS.get(c, 0) for c in text))


def _longest_span(text: str, lang: str) -> float | None:
    """The longest time `text` states, in days (a range by its end; business days as 7/5 days)."""
    spans = []
    if lang == "zh":
        for count, end, unit in _CHINESE_SPAN.findall(text):
            spans.append(_chinese_count(end or count) * (7 / 5 if unit == "工作日" else _UNIT_DAYS[unit]))
    else:
        for count, end, business, unit in _ENGLISH_SPAN.findall(text.lower()):
            number = float(end or (count if count.isdigit() else _ENGLISH_COUNTS[count]))
            spans.append(number * _UNIT_DAYS[unit] * (7 / 5 if business else 1))
    return max(spans) if spans else None


def waited_too_long(message: str, answer: str, lang: str) -> str | None:
    """Why `answer` cannot help a customer who has waited longer than the longest time it states
    for something that has not happened yet, or None."""
    message = fold_traditional(normalise(message))
    if lang not in _NOT_YET or not _NOT_YET[lang].search(message):
        return None
    waited, promised = _longest_span(message, lang), _longest_span(fold_traditional(normalise(answer)), lang)
    if waited is None or promised is None or waited <= promised:
        return None
    return (f"the customer has waited about {waited:g} days, longer than the {promised:g} days the answer "
            "states: a person should look")


# What a customer does not want, set against what they do ("I don't want a refund, I just want a
# new one"; "how do I change my email? not the password"): NLU reads the words of both.
_CLAUSE_END = re.compile(r"[,;.!?，；。！？]+|\s+but\s+|\s+-+\s+|\s*—+\s*", re.IGNORECASE)
# any "not", and a "not" about what is wanted ("I don't want", 不用): a "not" that describes
# ("it doesn't fit", 不合身) is set against a wish only by a strong marker ("just", 只是)
_NEGATED = {"en": _words(r"(?:do|does|did|am|is|are|was|were)\s*n[o']?t", "don'?t", "didn'?t", "not", "never",
                         "no"),
            "zh": re.compile("不|没|别|无需")}
_NOT_WANTED = {"en": _words(r"(?:do|did)\s*n[o']?t\s+(?:want|need|wish|mean)", r"don'?t\s+(?:want|need|wish|mean)",
                            r"not\s+(?:asking|trying|looking|interested|after|about|wanting)", "no need",
                            r"i'?m not", "i am not"),
               "zh": re.compile("不要|不想|不用|不是|不需要|别|无需|没想|不打算|并不")}
_STRONGLY_WANTED = {"en": re.compile(r"^(?:but\s+)?(?:i\s+)?(?:just|only|rather|instead)\b|\binstead\b",
                                     re.IGNORECASE),
                    "zh": re.compile("^(?:但是?|可是|我)?(?:就是|只是|只想|只要|就想|而是)")}
_WANTED = {"en": re.compile(r"^(?:but\s+)?i(?:'d| would)?\s+(?:want|need|like|'d like)\b|^but\b", re.IGNORECASE),
           "zh": re.compile("^(?:但是?|可是)?(?:我是想|是想|想要|我想|我要|要)")}
_NOT_THIS = {"en": re.compile(r"^not\b(?!\s+(?:cool|good|ok|okay|happy|fair|great|nice|fun|right|impressed)\b)",
                              re.IGNORECASE),
             "zh": re.compile("^(?:不是|不要|而不是)")}


def wanted_part(text: str, lang: str) -> str | None:
    """The part of `text` that says what the customer wants, where they set it against what they
    do not: the clauses after a "not" about wanting that start with "just", "I want", 只是, 我想
    ... (after any "not" when they start with "just", "only", 只是, 就是); or those before a short
    "not X" (不是X) that ends the message. None for other messages, whose "not" is mostly the
    question itself ("my parcel has not arrived", 裙子不合身)."""
    if lang not in _WANTED:
        return None
    clauses = [c.strip() for c in _CLAUSE_END.split(normalise(text)) if c and c.strip()]
    if len(clauses) < 2:
        return None
    join = " " if lang == "en" else "，"
    if _NEGATED[lang].search(clauses[0]):
        markers = [_STRONGLY_WANTED[lang]] + ([_WANTED[lang]] if _NOT_WANTED[lang].search(clauses[0]) else [])
        for i, clause in enumerate(clauses[1:], start=1):
            if any(marker.search(clause) for marker in markers):
                return join.join(clauses[i:])
    short = 2 if lang == "en" else 4  # words or characters: "not exchange, return", 不是换货，是退货
    for i, clause in enumerate(clauses[1:], start=1):
        after = clauses[i + 1:]
        if (_NOT_THIS[lang].search(clause) and len(clause) <= (40 if lang == "en" else 10)
                and all(len(c.split() if lang == "en" else c) <= short for c in after)):
            return join.join(clauses[:i])
    return None


# "where can I check how much is left?" asks where to look, not for the amount
_LOOKUP = {"en": _words("(?:how|where) (?:do|can|could|would) i (?:check|see|find|look up|view)"),
           "zh": re.compile("(?:怎么|怎样|如何|在哪(?:里|儿)?|哪里|去哪(?:里|儿)?)(?:查|看|找)")}


def unanswered_detail(message: str, answer: str, lang: str) -> str | None:
    """The detail `message` asks for that `answer` does not give ("is there a fee to change the
    delivery address?" answered with where to change it), or None."""
    message = fold_traditional(normalise(message))
    if lang in _LOOKUP and _LOOKUP[lang].search(message):
        return None
    asked = [detail for detail in ASKED_DETAILS if lang in detail.asked and detail.asked[lang].search(message)]
    if not asked:  # most messages: the answer need not be read
        return None
    answer = fold_traditional(normalise(answer))
    return next((detail.name for detail in asked if not detail.stated[lang].search(answer)), None)


@dataclass(frozen=True)
class Choice:
    """What to answer with, and why (logged and kept in the prediction's metadata)."""

    kind: str  # template | generated | retrieved | clarify | handoff | not_offered | delivers_there
    reason: str
    intents: tuple[str, ...] = ()  # the clarifying question's options
    reply: str = ""  # the corpus answer sent (retrieved)
    similarity: float = 0.0  # of its corpus question to the message (retrieved)
    response: str = ""  # the written response that says no (not_offered) or yes (delivers_there)
    named: str = ""  # what the message asks for that the shop does not offer, or the place it delivers to
    overdue: bool = False  # a hand-off because the customer has waited past the answer's time


@dataclass
class ChoiceSettings:
    """Thresholds of the choice; GenerativeResponsePolicy's `answer_choice` documents them."""

    generated_threshold: float = 0.6
    template_overlap: float = 0.45
    corpus_similarity: float | None = 0.4
    corpus_encoder: str | None = None
    corpus_encoder_languages: list[str] = field(default_factory=lambda: ["en"])
    corpus_encoder_similarity: float = 0.55
    coverage_similarity: float | None = None
    intent_question_similarity: float | None = None
    intent_question_encoder_similarity: float | None = None
    unsure_corpus_similarity: float | None = None
    unsure_corpus_encoder_similarity: float = 0.7
    clarify_min_confidence: float = 0.5
    clarify_runner_up: float = 0.15
    condition_margin: float | None = None
    corpus_classifier_ratio: float | None = None
    asked_details: bool = True
    waited_too_long: bool = True
    contrast: bool = True
    unknown_word_offer: bool = False
    closed_intents: list[str] = field(default_factory=list)
    # intent -> {response: the written response that says no, and either names: what the shop does
    # not offer, or delivers_to: the countries it delivers to (a place anywhere else is a no), with
    # optionally served_response: the written response that says yes to a place in them}
    not_offered: dict[str, dict] = field(default_factory=dict)
    keep_template_intents: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.corpus_encoder_languages) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"corpus_encoder_languages: {', '.join(sorted(unknown))} is not one of "
                             f"{', '.join(LANGUAGES)}")
        for intent, entry in self.not_offered.items():
            lists = [entry.get(key) for key in ("names", "delivers_to")] if isinstance(entry, dict) else []
            if (not isinstance(entry, dict) or not isinstance(entry.get("response"), str)
                    or sum(value is not None for value in lists) != 1
                    or not all(isinstance(value, list) and value and all(isinstance(item, str) and item.strip()
                                                                        for item in value)
                               for value in lists if value is not None)):
                raise ValueError(f"not_offered: {intent} needs a `response` (a response name) and either `names` "
                                 "(a list of what the shop does not offer) or `delivers_to` (a list of the "
                                 "country codes it delivers to)")
            served = entry.get("served_response")
            if served is not None and (not isinstance(served, str) or "delivers_to" not in entry):
                raise ValueError(f"not_offered: {intent}: served_response takes a response name, and goes with "
                                 "delivers_to")
            unknown = [code for code in entry.get("delivers_to") or [] if not re.fullmatch(r"[A-Z]{2}", code)]
            if unknown:
                raise ValueError(f"not_offered: {intent}: delivers_to takes ISO 3166 country codes such as US or CA, "
                                 f"not {', '.join(unknown)}")

    @property
    def served_responses(self) -> set[str]:
        """The responses that say yes to a place the shop delivers to (`served_response`)."""
        return {entry["served_response"] for entry in self.not_offered.values() if entry.get("served_response")}

    @property
    def home_countries(self) -> list[str]:
        """The countries some `delivers_to` lists (none: no question naming a place is a no); their
        towns are known by name, however small."""
        return sorted({code for entry in self.not_offered.values() for code in entry.get("delivers_to") or []})


def yes_or_no_clauses(text: str, lang: str) -> list[str]:
    """The clauses of `text` that ask a yes-or-no question ("is it still covered?" of "my blender
    died after 8 months, is it still covered?")."""
    pattern = _CHINESE_YES_NO if lang == "zh" else _ENGLISH_YES_NO
    clauses = _CLAUSE_END.split(fold_traditional(normalise(text)))
    return [clause for clause in clauses if clause.strip() and pattern.search(clause.strip())]


def _name_matcher(name: str) -> re.Pattern:
    """A name as it is found in a folded, lower-cased message: Chinese as it is written, English as
    whole words (cash is not in cashmere)."""
    key = re.escape(fold_traditional(normalise(name)).lower())
    return re.compile(key if chinese_characters(key) else rf"(?<![a-z]){key}(?![a-z])")


def content_words(text: str, lang: str) -> list[str]:
    """Words that carry meaning: English words of 4+ letters, Chinese words of 2+ characters."""
    text = fold_traditional(normalise(text)).lower()
    if lang == "zh":
        return [t for t in tokenize(text, "zh") if len(t) >= 2 and chinese_characters(t) == len(t)]
    return [w for w in _ENGLISH_WORD.findall(text) if len(w) >= 4]


def _word_keys(text: str, lang: str) -> dict[str, str]:
    """The words of `text` that can carry a condition, each with the form compared: English words of
    3+ letters without a plural or tense ending (fee, worn, weekends -> weekend), Chinese words of 2+
    characters."""
    text = fold_traditional(normalise(text))
    if lang == "zh":
        return {t: t for t in tokenize(text, "zh") if len(t) >= 2 and chinese_characters(t) == len(t)}
    keys = {}
    for word in _ENGLISH_WORD.findall(text.lower()):
        if len(word) >= 3 and word not in _FUNCTION_WORDS:
            keys[word] = next((word[:-len(end)] for end in ("ing", "ed", "es", "s")
                               if word.endswith(end) and len(word) - len(end) >= 3), word)
    return keys


def common_words(examples: Sequence[str], share: float = 0.05) -> list[str]:
    """The word forms (as `_word_keys` compares them) in at least `share` of the examples of their
    language (Chinese or not)."""
    common: set[str] = set()
    for lang, chosen in (("zh", [t for t in examples if chinese_characters(t)]),
                         ("en", [t for t in examples if not chinese_characters(t)])):
        counts: dict[str, int] = {}
        for text in chosen:
            for key in set(_word_keys(text, lang).values()):
                counts[key] = counts.get(key, 0) + 1
        common.update(key for key, count in counts.items() if count >= share * len(chosen))
    return sorted(common)


def shop_vocabulary(texts: Iterable[str]) -> list[str]:
    """Every content word of `texts`, in both languages, and every Chinese character."""
    words: set[str] = set()
    for text in texts:
        words.update(content_words(text, "en"))
        if chinese_characters(text):
            words.update(content_words(text, "zh"))
            words.update(c for c in fold_traditional(normalise(text)) if chinese_characters(c))
    return sorted(words)


@dataclass(frozen=True)
class CorpusPair:
    question: str
    answer: str
    intent: str
    lang: str


@dataclass(frozen=True)
class Nearest:
    pair: CorpusPair
    similarity: float
    in_meaning: bool = False  # cosine of sentence vectors, not of character n-grams


# Texts to sentence vectors of unit length, [texts, dimensions].
SentenceEncoder = Callable[[Sequence[str]], np.ndarray]


class _EncodedQuestions:
    """Questions searchable by the cosine of their sentence vectors."""

    def __init__(self, questions: Sequence[str], encode: SentenceEncoder) -> None:
        self.encode = encode
        self.vectors = encode(questions)


class CorpusAnswers:
    """The shop corpus's questions, searchable by similarity within one language: in meaning
    (`encode`'s sentence vectors) for `encoded_languages`, else in characters (TF-IDF over
    character n-grams, the retrieval index of the generator)."""

    def __init__(self, pairs: Sequence[CorpusPair], encode: SentenceEncoder | None = None,
                 encoded_languages: Collection[str] = ()) -> None:
        self.by_language: dict[str, tuple[list[CorpusPair], RetrievalIndex | _EncodedQuestions]] = {}
        for lang in sorted({p.lang for p in pairs}):
            chosen = [p for p in pairs if p.lang == lang]
            questions = [p.question for p in chosen]
            self.by_language[lang] = chosen, (_EncodedQuestions(questions, encode)
                                              if encode is not None and lang in encoded_languages
                                              else RetrievalIndex(questions, [p.answer for p in chosen]))
        # the last message searched: its similarity to each question, and its sentence vector
        self._last: tuple[tuple[str, str], np.ndarray, np.ndarray | None] | None = None

    def _searched(self, text: str, lang: str) -> tuple[np.ndarray, np.ndarray | None]:
        # one message is searched up to four times (understood? covered? a corpus answer? its
        # condition?): one encoding
        if self._last is None or self._last[0] != (text, lang):
            index = self.by_language[lang][1]
            if isinstance(index, _EncodedQuestions):
                vector = index.encode([text])[0]
                self._last = (text, lang), index.vectors @ vector, vector
            else:
                self._last = (text, lang), index.similarities([text])[0], None
        return self._last[1], self._last[2]

    def _similarities(self, text: str, lang: str) -> np.ndarray:
        return self._searched(text, lang)[0]

    def similarity_in_meaning(self, text: str, other: str, lang: str) -> float:
        """The cosine of the sentence vectors of `text` and `other`, for a language compared in meaning."""
        index = self.by_language[lang][1]
        vector = self._searched(text, lang)[1]
        assert isinstance(index, _EncodedQuestions) and vector is not None
        return float(vector @ index.encode([other])[0])

    def asked_with_answer(self, text: str, lang: str, intent: str, reply: str,
                          repeats: float = 0.6) -> Nearest | None:
        """Of the corpus questions of `intent` whose answer `reply` repeats (token F1 from
        `repeats`), the one closest to `text`; None when the reply repeats no corpus answer."""
        if lang not in self.by_language:
            return None
        pairs, index = self.by_language[lang]
        scores = self._similarities(text, lang)
        found = [(float(scores[i]), pair) for i, pair in enumerate(pairs)
                 if pair.intent == intent and token_f1(reply, pair.answer) >= repeats]
        if not found:
            return None
        similarity, pair = max(found, key=lambda item: item[0])
        return Nearest(pair, similarity, isinstance(index, _EncodedQuestions))

    def nearest(self, text: str, lang: str, intent: str | None = None) -> Nearest | None:
        """The corpus question closest to `text` in its language (of `intent`, when given)."""
        if lang not in self.by_language:
            return None
        pairs, index = self.by_language[lang]
        scores = self._similarities(text, lang)
        if intent is not None:
            scores = np.where([pair.intent == intent for pair in pairs], scores, -np.inf)
            if not np.isfinite(scores).any():
                return None
        best = int(scores.argmax())
        return Nearest(pairs[best], float(scores[best]), isinstance(index, _EncodedQuestions))


class AnswerChooser:
    """Picks the kind of answer for one message; see the module docstring."""

    def __init__(self, vocabulary: Iterable[str], settings: ChoiceSettings,
                 corpus: CorpusAnswers | None = None, intent_words: dict[str, list[str]] | None = None,
                 classifier: AnswerClassifier | None = None, places: dict[str, str] | None = None,
                 intent_questions: CorpusAnswers | None = None) -> None:
        self.settings = settings
        self.corpus = corpus
        # what the generator learnt each intent without a written response from: its corpus
        # questions and NLU examples (`outside_intent`)
        self.intent_questions = intent_questions
        self.classifier = classifier if settings.corpus_classifier_ratio is not None else None
        # intent -> the word forms common in its NLU examples (`common_words`): not a condition
        self.intent_words = {intent: set(words) for intent, words in (intent_words or {}).items()}
        self.vocabulary = set(vocabulary)
        # intent -> (name, how it matches a folded message), longest first: "WeChat Pay" before "WeChat"
        self._not_offered = {
            intent: [(name, _name_matcher(name)) for name in sorted(entry["names"], key=len, reverse=True)]
            for intent, entry in settings.not_offered.items() if "names" in entry}
        # folded place name -> country (components/places.py), for `delivers_to`
        self._destinations = Destinations(places) if places and settings.home_countries else None
        self._places = places or {}
        self._english = sorted(w for w in self.vocabulary if not chinese_characters(w))
        self._chinese_characters = set("".join(w for w in self.vocabulary if chinese_characters(w)))

    def unknown_words(self, text: str, lang: str) -> list[str]:
        """Content words the shop's texts never use; typos of known words and Chinese words made
        of known characters (快递费, 收不收) are not news."""
        unknown = []
        for word in content_words(text, lang):
            if word in self.vocabulary:
                continue
            if lang == "zh":
                # jieba splits colloquial forms into words the texts never use (收不收, 付不了);
                # a word is news only where it has a character the shop's texts never use
                if set(word) <= self._chinese_characters:
                    continue
            elif difflib.get_close_matches(word, self._english, n=1, cutoff=0.8):
                continue
            unknown.append(word)
        return unknown

    def unknown_topic(self, text: str, lang: str, entities: Iterable[str] = ()) -> Choice | None:
        """For a yes-or-no question naming what the shop's texts never mention ("do you have a
        showroom?"): the offer of a person after the answer, which may not say yes or no to it.
        Places and the words of `entities` (what NLU found in the message: a product, an order
        number) are not news: the shop sells products its texts never name, and `not_offered`
        answers places."""
        asking = " ".join(yes_or_no_clauses(text, lang)) if self.settings.unknown_word_offer else ""
        if not asking:
            return None
        # only the clauses that ask: the others tell the situation ("my blender died"), whose words
        # need not be the shop's
        named = {word for entity in entities for word in content_words(entity, lang)}
        unknown = [word for word in self.unknown_words(asking, lang)
                   if fold(word) not in self._places and word not in named]
        if not unknown:
            return None
        return Choice(HANDOFF, f"a yes-or-no question about {', '.join(unknown)}, which the shop's texts never "
                      "mention: the answer may not say")

    def missing_condition(self, text: str, lang: str, nearest: Nearest) -> str | None:
        """Why `text` does not ask what the corpus question `nearest` (its similarity to `text`)
        asks (see the module docstring), or None when it does or there is nothing to compare."""
        pair, margin = nearest.pair, self.settings.condition_margin
        if margin is None or self.corpus is None or pair.intent not in self.intent_words or not nearest.in_meaning:
            # in characters, taking out any word the message lacks brings the question closer
            return None
        common = self.intent_words[pair.intent]
        said = set(_word_keys(text, lang).values())
        if lang == "zh":
            folded = fold_traditional(normalise(text))  # jieba may cut the message's words otherwise
            missing = [word for word, key in _word_keys(pair.question, lang).items()
                       if key not in common and key not in said and word not in folded]
        else:
            missing = [word for word, key in _word_keys(pair.question, lang).items()
                       if key not in common and key not in said
                       and not difflib.get_close_matches(key, said, n=1, cutoff=0.8)]
        if not missing:
            return None
        if lang == "zh":
            without = pair.question
            for word in missing:
                without = without.replace(word, "")
        else:
            without = re.sub(r"[a-z][a-z']+", lambda m: "" if m.group(0).lower() in missing else m.group(0),
                             pair.question, flags=re.IGNORECASE)
            without = re.sub(r"\s+([,.?!])", r"\1", re.sub(r"\s{2,}", " ", without)).strip()
        unasked = self.corpus.similarity_in_meaning(text, without, lang)
        if unasked - nearest.similarity <= margin:
            return None
        return (f"the message does not ask what {pair.question!r} asks: without {', '.join(missing)} that "
                f"question is {unasked:.2f} close instead of {nearest.similarity:.2f}")

    def not_offered(self, text: str, intent: str) -> Choice | None:
        """The written response that says no when `text`, of an intent in `not_offered`, names
        something the shop does not offer ("can I pay with bitcoin?") or sends something to a
        place outside the countries it delivers to ("can my order go to London?"); else None.
        Names match as whole English words or as Chinese strings, in either script and either
        language; places as components/places.py finds them."""
        entry = self.settings.not_offered.get(intent)
        if entry and "delivers_to" in entry:
            place = self._destination(text, intent)
            if place and place.country not in entry["delivers_to"]:
                return Choice(NOT_OFFERED, f"the message sends it to {place.name} ({place.country}), outside "
                              f"{', '.join(entry['delivers_to'])}", response=entry["response"], named=place.name)
            return None
        names = self._not_offered.get(intent)
        if not names:
            return None
        folded = fold_traditional(normalise(text)).lower()
        for name, matcher in names:
            if matcher.search(folded):
                return Choice(NOT_OFFERED, f"the message names {name}, which {intent}'s list does not have",
                              response=self.settings.not_offered[intent]["response"], named=name)
        return None

    def delivers_there(self, text: str, intent: str) -> Choice | None:
        """The written response that says yes when `text`, of an intent whose `not_offered` entry
        has a `served_response`, sends something to a place in the countries it delivers to ("can
        the parcel go to my aunt's in Montreal?"): the answer itself follows it; else None."""
        entry = self.settings.not_offered.get(intent) or {}
        place = self._destination(text, intent) if entry.get("served_response") else None
        if place is None or place.country not in entry["delivers_to"]:
            return None
        return Choice(DELIVERS_THERE, f"the message sends it to {place.name} ({place.country}), which the shop "
                      "delivers to", response=entry["served_response"], named=place.name)

    def _destination(self, text: str, intent: str) -> Destination | None:
        """Where `text` sends something, for an intent whose `not_offered` entry has `delivers_to`."""
        if self._destinations is None or "delivers_to" not in (self.settings.not_offered.get(intent) or {}):
            return None
        return self._destinations.named(text)

    def clarify_options(self, ranking: list[tuple[str, float]], answerable: set[str]) -> tuple[str, ...]:
        """The two likeliest answerable intents when together they are likely enough, else ()."""
        options = [(name, confidence) for name, confidence in ranking if name in answerable][:2]
        if (len(options) == 2 and options[0][1] + options[1][1] >= self.settings.clarify_min_confidence
                and options[1][1] >= self.settings.clarify_runner_up):
            return options[0][0], options[1][0]
        return ()

    def understood_by_corpus(self, text: str, lang: str, intents: Collection[str]) -> Nearest | None:
        """For a message NLU is unsure of: the corpus question, of one of `intents`, that is close
        enough to answer it as that question's intent; else None."""
        if self.corpus is None or self.settings.unsure_corpus_similarity is None:
            return None
        nearest = self.corpus.nearest(text, lang)
        if nearest is None or nearest.pair.intent not in intents:
            return None
        threshold = (self.settings.unsure_corpus_encoder_similarity if nearest.in_meaning
                     else self.settings.unsure_corpus_similarity)
        return nearest if nearest.similarity >= threshold else None

    def wanted_intent(self, wanted: str, lang: str, intent: str, intents: Collection[str]) -> Nearest | None:
        """For a message that sets what the customer wants against what they do not, the wanted
        part (`wanted_part`): the corpus question close enough to it to answer the message as that
        question's intent, when that is not `intent`, NLU's; else None."""
        nearest = self.understood_by_corpus(wanted, lang, intents)
        return nearest if nearest is not None and nearest.pair.intent != intent else None

    def uncovered(self, text: str, lang: str) -> Choice | None:
        """A hand-off when no corpus question is close to `text` in meaning; else None."""
        if self.corpus is None or self.settings.coverage_similarity is None:
            return None
        return self._uncovered(self.corpus.nearest(text, lang))

    def outside_intent(self, text: str, lang: str, intent: str) -> Choice | None:
        """For an intent without a written response: the offer of a person when `text` is far from
        every question the generator learnt that intent's answer from (`intent_question_*`): its
        answer is for other questions ("the box came without the charger" read as gift wrapping).
        None when it is close to one, or the intent has none."""
        nearest = self.intent_questions.nearest(text, lang, intent) if self.intent_questions else None
        if nearest is None:
            return None
        threshold = (self.settings.intent_question_encoder_similarity if nearest.in_meaning
                     else self.settings.intent_question_similarity)
        if threshold is None or nearest.similarity >= threshold:
            return None
        return Choice(HANDOFF, f"the nearest question {intent} was learnt from, {nearest.pair.question!r}, is "
                      f"{nearest.similarity:.2f} close: its answer is for other questions")

    def unanswered(self, text: str, lang: str, answer: str, template: str | None = None) -> Choice | None:
        """A hand-off when the customer has waited longer than `answer`, about to be sent, says
        (`waited_too_long`). When `text` asks for an amount or a tax that `answer` does not give
        (`asked_details`): the intent's `template` if it gives it, else a hand-off (the shop's texts
        do not say). None when the answer stands."""
        waited = waited_too_long(text, answer, lang) if self.settings.waited_too_long else None
        if waited:
            return Choice(HANDOFF, waited, overdue=True)
        detail = unanswered_detail(text, answer, lang) if self.settings.asked_details else None
        if detail is None:
            return None
        if template and template != answer and unanswered_detail(text, template, lang) is None:
            return Choice(TEMPLATE, f"the message asks for {detail} and the answer gives none; the written response "
                          "does")
        return Choice(HANDOFF, f"the message asks for {detail} and the answer gives none: the shop's texts do not say")

    def _uncovered(self, nearest: Nearest | None) -> Choice | None:
        # only in meaning: in characters a new wording of a covered question is as far as a new question
        threshold = self.settings.coverage_similarity
        if threshold is None or nearest is None or not nearest.in_meaning or nearest.similarity >= threshold:
            return None
        return Choice(HANDOFF, f"the nearest corpus question, {nearest.pair.question!r}, is {nearest.similarity:.2f} "
                      "close: the shop's texts do not cover this")

    def _corpus_answer(self, text: str, lang: str, intent: str, template: str | None,
                       passes_facts: Callable[[str], bool]) -> Choice | None:
        """The answer of the corpus question nearest `text` when it is close enough, of `intent`,
        and says something the template does not; the template when that question asks what the
        message does not; else None. In the languages the answer classifier reads, it picks the
        answer instead of the nearest question."""
        if self.settings.corpus_similarity is None or self.corpus is None:
            return None
        if self.classifier is not None and lang in self.classifier.languages:
            return self._classified_answer(text, lang, intent, passes_facts)
        nearest = self.corpus.nearest(text, lang)
        if nearest is None or nearest.pair.intent != intent:
            return None
        if nearest.similarity < (self.settings.corpus_encoder_similarity if nearest.in_meaning
                                 else self.settings.corpus_similarity):
            return None
        overlap = token_f1(nearest.pair.answer, template) if template else 0.0
        if overlap >= self.settings.template_overlap or not passes_facts(nearest.pair.answer):
            return None
        unasked = self.missing_condition(text, lang, nearest)
        if unasked:
            return Choice(TEMPLATE, f"{unasked}; {intent}'s written response")
        return Choice(RETRIEVED, f"the corpus question {nearest.pair.question!r} ({nearest.similarity:.2f}) has a "
                      f"more specific answer than {intent}'s written response", reply=nearest.pair.answer,
                      similarity=nearest.similarity)

    def _classified_answer(self, text: str, lang: str, intent: str,
                           passes_facts: Callable[[str], bool]) -> Choice | None:
        """The corpus answer the answer classifier finds at least `corpus_classifier_ratio` times as
        likely as the written response (its classes are the answers that say more); else None."""
        assert self.classifier is not None and self.settings.corpus_classifier_ratio is not None
        likeliest = self.classifier.likeliest(text, lang, intent)
        ratio = self.settings.corpus_classifier_ratio
        if (likeliest is None or likeliest.probability < ratio * likeliest.written_response_probability
                or not passes_facts(likeliest.answer)):
            return None
        return Choice(RETRIEVED, f"the answer classifier finds a corpus answer of {intent} {likeliest.probability:.2f} "
                      f"likely against {likeliest.written_response_probability:.2f} for its written response",
                      reply=likeliest.answer, similarity=likeliest.probability)

    def before_generating(self, text: str, lang: str, intent: str, ranking: list[tuple[str, float]],
                          answerable: set[str], unsure_intent: str, template: str | None = None,
                          passes_facts: Callable[[str], bool] = lambda reply: True) -> Choice | None:
        """The choice where NLU, the corpus and the shop's words settle it; None when the
        generator decides."""
        if intent == unsure_intent:
            options = self.clarify_options(ranking, answerable)
            noes = [no for option in options if (no := self.not_offered(text, option))]
            if options and len(noes) == len(options) and len({no.response for no in noes}) == 1:
                # either reading gets the same no ("能寄到墨西哥吗": an address or a delivery question)
                return dataclasses.replace(noes[0], reason=f"NLU is torn between {options[0]} and {options[1]}, "
                                           f"and both say no: {noes[0].reason}")
            if options:
                return Choice(CLARIFY, f"NLU is torn between {options[0]} and {options[1]}", options)
            return Choice(TEMPLATE, "NLU is unsure and names no two likely intents")
        if intent in self.settings.keep_template_intents:
            return Choice(TEMPLATE, f"{intent} always gets its written response")
        # what the shop's list lacks is a plain no, however close a corpus question is
        not_offered = self.not_offered(text, intent)
        if not_offered:
            return not_offered
        uncovered = self.uncovered(text, lang)
        if uncovered:
            return uncovered
        corpus_answer = self._corpus_answer(text, lang, intent, template, passes_facts)
        if corpus_answer and corpus_answer.kind == RETRIEVED:
            return corpus_answer
        if intent in self.settings.closed_intents:
            unknown = self.unknown_words(text, lang)
            if unknown:
                return Choice(HANDOFF, f"{intent}'s response is a complete list and the shop's texts never "
                              f"mention {', '.join(unknown)}")
        return corpus_answer  # the template, when the nearest corpus question asks more than the message

    def _unasked_corpus_answer(self, text: str, lang: str, intent: str, reply: str) -> str | None:
        """Why a generated reply that repeats a corpus answer does not answer `text`: that answer's
        question is far from it in meaning, or asks what it does not (`condition_margin`)."""
        if self.settings.condition_margin is None or self.corpus is None or not text:
            return None
        repeated = self.corpus.asked_with_answer(text, lang, intent, reply)
        if repeated is None:
            return None
        if repeated.in_meaning and repeated.similarity < self.settings.corpus_encoder_similarity:
            # in characters a new wording is as far as a new question, so only meaning tells
            return (f"the generated reply is the answer to {repeated.pair.question!r}, only "
                    f"{repeated.similarity:.2f} close to the message")
        unasked = self.missing_condition(text, lang, repeated)
        return f"the generated reply is the answer to {repeated.pair.question!r}, but {unasked}" if unasked else None

    def after_generating(self, intent: str, reply: str, confidence: float, passes_facts: bool,
                         template: str | None, text: str = "", lang: str = "") -> Choice:
        """Generated reply or template, given the generator's reply to the message `text`."""
        if confidence < self.settings.generated_threshold:
            return Choice(TEMPLATE, f"the generator is unsure ({confidence:.2f}); {intent}'s written response")
        if not passes_facts:
            return Choice(TEMPLATE, f"the generated reply fails the facts check; {intent}'s written response")
        if not written_in(reply, lang):
            return Choice(TEMPLATE, f"the generated reply is not in the customer's language ({lang}); "
                          f"{intent}'s written response")
        overlap = token_f1(reply, template) if template else 0.0
        if overlap >= self.settings.template_overlap:
            return Choice(TEMPLATE, f"the generated reply says what {intent}'s written response says "
                          f"(token F1 {overlap:.2f})")
        unasked = self._unasked_corpus_answer(text, lang, intent, reply)
        if unasked:
            return Choice(TEMPLATE, f"{unasked}; {intent}'s written response")
        return Choice(GENERATED, f"the generator is sure ({confidence:.2f}) of a reply that passes the facts check")
