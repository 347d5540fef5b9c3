"""StoreOutagePolicy: while Redis or the action server is unreachable, say so instead of staying silent.

Kefu's stores never raise into Rasa during an outage (components/stores): they hand Rasa
what this process knows of the conversation and spool the writes. The bot then answers
`utter_service_unavailable`, whatever the message, so a customer is never given an answer
made without the conversation's history. The message itself is kept and replayed into
Redis with the reply when Redis is back.

When the action server cannot be reached, Rasa logs the error, drops the action's events
and carries on, so the customer would hear nothing. A form's run always returns events (it
asks for a slot, or it ends), so a form followed by none failed: the bot then answers
`utter_action_server_down`. The form stays active and keeps the slots it had, so the
customer's next message continues it. (Other custom actions may rightly return nothing,
`action_ask_feedback` on the chat page for one, so only forms are judged this way.)
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from components.stores.connection import OUTAGE

UNAVAILABLE_RESPONSE = "utter_service_unavailable"
ACTION_SERVER_DOWN_RESPONSE = "utter_action_server_down"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class StoreOutagePolicy(Policy):
    """Predicts `utter_service_unavailable` on a user turn while Redis is down, and
    `utter_action_server_down` after a form the action server did not run."""

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
        outage_responses = (UNAVAILABLE_RESPONSE, ACTION_SERVER_DOWN_RESPONSE)
        if tracker.latest_action_name in outage_responses:
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
        elif (UNAVAILABLE_RESPONSE in domain.action_names_or_texts and OUTAGE.is_down
              and tracker.latest_action_name == ACTION_LISTEN_NAME and tracker.latest_message.text):
            probabilities[domain.index_for_action(UNAVAILABLE_RESPONSE)] = 1.0
        elif ACTION_SERVER_DOWN_RESPONSE in domain.action_names_or_texts and self._form_failed(tracker, domain):
            probabilities[domain.index_for_action(ACTION_SERVER_DOWN_RESPONSE)] = 1.0
        # RulePolicy's "run the active form" is a prediction without user input, and Rasa's ensemble
        # lets those overrule every other; marked the same, this one wins by its priority.
        return self._prediction(probabilities, is_no_user_prediction=max(probabilities) > 0)

    @staticmethod
    def _form_failed(tracker: DialogueStateTracker, domain: Domain) -> bool:
        """Whether the last event is a form's run with nothing after it: Rasa dropped its events."""
        last = tracker.events[-1] if tracker.events else None
        return isinstance(last, ActionExecuted) and last.action_name in domain.form_names
