"""The language entity and the entity filter, on single messages."""

from __future__ import annotations

from rasa.shared.nlu.training_data.message import Message

from components.extractors import EntityPatternFilter, LanguageExtractor


def entities(message: Message) -> list[tuple[str, str]]:
    return [(e["entity"], e["value"]) for e in message.get("entities", [])]


def test_each_message_that_shows_its_language_gets_a_language_entity() -> None:
    extractor = LanguageExtractor(LanguageExtractor.get_default_config())
    messages = [Message(data={"text": text}) for text in ("我要退货", "where is my order?", "12345", "abc-12")]
    extractor.process(messages)
    assert [entities(m) for m in messages] == [[("language", "zh")], [("language", "en")], [], []]


def test_odd_order_numbers_and_duplicates_are_dropped() -> None:
    message = Message(data={"text": "x", "entities": [
        {"entity": "order_id", "value": "window.kefuHacked=1"}, {"entity": "order_id", "value": "99999"},
        {"entity": "order_id", "value": "99999"}, {"entity": "product", "value": "blue backpack"}]})
    EntityPatternFilter(EntityPatternFilter.get_default_config()).process([message])
    assert entities(message) == [("order_id", "99999"), ("product", "blue backpack")]
