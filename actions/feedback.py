"""Feedback on generated replies: ask, record the rating, and capture a correction after a 👎.

GenerativeResponsePolicy runs `action_ask_feedback` after each generated reply. It asks
every `KEFU_FEEDBACK_EVERY`-th generated reply of a conversation (default 1: every one;
0: never), counted in the conversation itself, so `rasa test` sees the same questions on
every run. Each button's payload names the reply it rates:
`/feedback{"rating": "down", "reply_id": "..."}`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from components.action_names import GENERATED_REPLY_ACTION
from components.feedback import FeedbackLog, RatedReply

ASK_EVERY_ENV = "KEFU_FEEDBACK_EVERY"
CORRECTION_FORM = "correction_form"


def generated_replies(tracker: Tracker) -> list[dict[str, Any]]:
    """The `ActionExecuted` events of the conversation's generated replies, oldest first."""
    return [e for e in tracker.events
            if e.get("event") == "action" and e.get("name") == GENERATED_REPLY_ACTION and e.get("metadata")]


def rated_reply(tracker: Tracker, reply_id: str) -> RatedReply | None:
    """The generated reply `reply_id`, with the user message it answered."""
    user: dict[str, Any] = {}
    for event in tracker.events:
        if event.get("event") == "user":
            user = event
        elif event.get("event") == "action" and (event.get("metadata") or {}).get("reply_id") == reply_id:
            metadata = event["metadata"]
            return RatedReply(reply_id, tracker.sender_id, user_message=user.get("text") or "",
                              bot_reply=metadata.get("generated_reply", ""),
                              intent=((user.get("parse_data") or {}).get("intent") or {}).get("name"),
                              model_id=metadata.get("model_id"), confidence=metadata.get("confidence"))
    return None


class ActionAskFeedback(Action):
    def name(self) -> str:
        return "action_ask_feedback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if tracker.get_latest_input_channel() == "webchat":
            return []  # the chat page puts 👍/👎 under every generated reply itself
        every = int(os.environ.get(ASK_EVERY_ENV) or 1)
        replies = generated_replies(tracker)
        if every <= 0 or not replies or len(replies) % every:
            return []
        reply_id = replies[-1]["metadata"]["reply_id"]
        dispatcher.utter_message(response="utter_ask_feedback", buttons=[
            {"title": title, "payload": "/feedback" + json.dumps({"rating": rating, "reply_id": reply_id})}
            for title, rating in (("👍", "up"), ("👎", "down"))])
        return []


class ActionRecordFeedback(Action):
    def name(self) -> str:
        return "action_record_feedback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        rating = next(tracker.get_latest_entity_values("rating"), None)
        reply_id = next(tracker.get_latest_entity_values("reply_id"), None)
        reply = rated_reply(tracker, reply_id) if reply_id and rating in ("up", "down") else None
        if reply is None:
            dispatcher.utter_message(response="utter_feedback_not_found")
            return []
        reply.rating = rating
        FeedbackLog().rate(reply)
        if rating == "up":
            dispatcher.utter_message(response="utter_thanks_for_feedback")
            return []
        return [SlotSet("feedback_reply_id", reply_id), FollowupAction(CORRECTION_FORM)]


class ActionRecordCorrection(Action):
    def name(self) -> str:
        return "action_record_correction"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        reply_id, text = tracker.get_slot("feedback_reply_id"), (tracker.get_slot("feedback_correction") or "").strip()
        if reply_id and text:
            FeedbackLog().correct(reply_id, tracker.sender_id, text)
        dispatcher.utter_message(response="utter_thanks_for_feedback")
        return [SlotSet("feedback_reply_id", None), SlotSet("feedback_correction", None)]
