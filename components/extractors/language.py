"""`LanguageExtractor`: the language of each message, as a `language` entity.

The domain's `language` slot is filled from it, and the slot picks each response's
variant, so the assistant answers in the language the customer last wrote in. A message
with no letters to tell by (an order number, an emoji) sets nothing, and the conversation
keeps its language.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from components.text import message_language


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageExtractor(GraphComponent):
    """Adds a `language` entity (`en`, `zh`, ...) to each message that shows its language."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # The entity's name: the domain's `language` slot maps from it.
        return {"entity": "language"}

    def __init__(self, config: dict[str, Any]) -> None:
        self._entity = config["entity"]

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> LanguageExtractor:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            language = message_language(text)
            if language is None:
                continue
            entity = {ENTITY_ATTRIBUTE_TYPE: self._entity, ENTITY_ATTRIBUTE_VALUE: language,
                      ENTITY_ATTRIBUTE_START: 0, ENTITY_ATTRIBUTE_END: len(text),
                      EXTRACTOR: self.__class__.__name__}
            message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages
