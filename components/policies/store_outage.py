"""StoreOutagePolicy: while Redis is unreachable, say so instead of answering without context.

Kefu's stores never raise into Rasa during an outage (components/stores): they hand Rasa
what this process knows of the conversation and spool the writes. The bot then answers
`utter_service_unavailable`, whatever the message, so a customer is never given an answer
made without the conversation's history. The message itself is kept and replayed into
Redis with the reply when Redis is back.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from components.stores.connection import OUTAGE

UNAVAILABLE_RESPONSE = "utter_service_unavailable"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class StoreOutagePolicy(Policy):
    """Predicts `utter_service_unavailable` on a user turn while Redis is down."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # Above RulePolicy (4): during an outage no rule, form or generated reply answers.
            "priority": 7,
        }

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        return self._resource  # nothing to learn

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: dict[str, Any] | None = None,
                                     **kwargs: Any) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if UNAVAILABLE_RESPONSE not in domain.action_names_or_texts:
            return self._prediction(probabilities)
        if tracker.latest_action_name == UNAVAILABLE_RESPONSE:
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
        elif OUTAGE.is_down and tracker.latest_action_name == ACTION_LISTEN_NAME and tracker.latest_message.text:
            probabilities[domain.index_for_action(UNAVAILABLE_RESPONSE)] = 1.0
        return self._prediction(probabilities)
