"""The order-status form: check the order number, then say where the order is."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.order_book import load_order_book, parse_order_id


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        order_id = parse_order_id(slot_value)
        if order_id is None:
            shown = slot_value if isinstance(slot_value, str) else tracker.latest_message.get("text", "")
            dispatcher.utter_message(response="utter_invalid_order_id", order_id=shown.strip()[:40])
        return {"order_id": order_id}


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order_id = parse_order_id(tracker.get_slot("order_id"))
        order = load_order_book().get(order_id or "")
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
        else:
            response, values = order.response()
            dispatcher.utter_message(response=response, **values)
        # Forget the number so the next question about another order asks again.
        return [SlotSet("order_id", None)]
