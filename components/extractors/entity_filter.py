"""`EntityPatternFilter`: entities that must look a certain way are dropped when they don't.

DIET tags entities statistically, and now and then tags odd text ("window.x=1") as an order
number. An order number has a fixed shape (5 to 8 digits), so a value without it is noise:
it would fill the order_id slot and start the order form. Runs after the extractors.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE
from rasa.shared.nlu.training_data.message import Message

from components.text import DEFAULT_ORDER_ID_PATTERN


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityPatternFilter(GraphComponent):
    """Keeps an entity only when its value matches its pattern, and once per value."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Entity name -> the regular expression its whole value must match.
        return {"patterns": {"order_id": DEFAULT_ORDER_ID_PATTERN}}

    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self._patterns = {name: re.compile(pattern) for name, pattern in (config["patterns"] or {}).items()}
        except re.error as error:
            raise InvalidConfigException(f"EntityPatternFilter: a pattern in `patterns` is not a regular "
                                         f"expression ({error})") from error

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> EntityPatternFilter:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            kept, seen = [], set()
            for entity in message.get(ENTITIES, []):
                name, value = entity.get(ENTITY_ATTRIBUTE_TYPE), str(entity.get(ENTITY_ATTRIBUTE_VALUE))
                pattern = self._patterns.get(name)
                if pattern is not None and (not pattern.fullmatch(value) or (name, value) in seen):
                    continue
                seen.add((name, value))
                kept.append(entity)
            message.set(ENTITIES, kept, add_to_output=True)
        return messages
