"""Hand the conversation to a person and pause the bot until staff resume it."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from components.handoff import HandoffQueue

MESSAGES_KEPT = 10


def last_messages(tracker: Tracker, limit: int = MESSAGES_KEPT) -> list[dict[str, str]]:
    """The conversation's last user and bot texts, oldest first, for staff to read."""
    messages = [
        {"role": event["event"], "text": event.get("text") or ""}
        for event in tracker.events
        if event.get("event") in ("user", "bot") and event.get("text")
    ]
    return messages[-limit:]


class ActionHumanHandoff(Action):
    def name(self) -> str:
        return "action_human_handoff"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        HandoffQueue().add(tracker.sender_id, last_messages(tracker))
        dispatcher.utter_message(response="utter_handoff")
        return [ConversationPaused()]
