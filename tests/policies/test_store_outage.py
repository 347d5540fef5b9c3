"""StoreOutagePolicy when the action server is unreachable: a form Rasa could not run gets the
"try again" reply; an action that rightly did nothing does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.action_names import GENERATED_REPLY_ACTION
from components.policies import StoreOutagePolicy
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT / "domain.yml"))


def predicted(tmp_path: Path, domain: Domain, events: list) -> str | None:
    """The action the policy insists on after `events`, or None when it leaves the turn to the others."""
    policy = StoreOutagePolicy.create(StoreOutagePolicy.get_default_config(), LocalModelStorage(tmp_path),
                                      Resource("outage"), ExecutionContext(GraphSchema({}), "test"))
    tracker = DialogueStateTracker.from_events("alice", events, domain.slots)
    probabilities = policy.predict_action_probabilities(tracker, domain).probabilities
    return domain.action_names_or_texts[probabilities.index(1.0)] if 1.0 in probabilities else None


def asked_for_the_order_number(text: str) -> list:
    return [ActionExecuted(ACTION_LISTEN_NAME), UserUttered("where is my order?", {"name": "order_status"}),
            ActionExecuted("order_status_form"), ActiveLoop("order_status_form"),
            SlotSet("requested_slot", "order_id"), BotUttered("What is your order number?"),
            ActionExecuted(ACTION_LISTEN_NAME), UserUttered(text, {"name": "provide_order_id"}),
            SlotSet("order_id", text)]


def test_a_form_whose_run_came_back_empty_gets_the_try_again_reply_then_listens(tmp_path: Path,
                                                                                  domain: Domain) -> None:
    failed = [*asked_for_the_order_number("12345"), ActionExecuted("order_status_form")]
    assert predicted(tmp_path, domain, failed) == "utter_action_server_down"
    told = [*failed, ActionExecuted("utter_action_server_down"), BotUttered("Please try again in a minute.")]
    assert predicted(tmp_path, domain, told) == ACTION_LISTEN_NAME


def test_a_form_that_ran_and_an_action_that_rightly_did_nothing_are_left_alone(tmp_path: Path,
                                                                               domain: Domain) -> None:
    ran = [*asked_for_the_order_number("12345"), ActionExecuted("order_status_form"), SlotSet("order_id", "12345"),
           ActiveLoop(None), SlotSet("requested_slot", None)]
    assert predicted(tmp_path, domain, ran) is None
    # the chat page shows its own feedback buttons, so action_ask_feedback returns nothing there
    asked = [ActionExecuted(ACTION_LISTEN_NAME), UserUttered("is there a size chart?"),
             ActionExecuted(GENERATED_REPLY_ACTION), BotUttered("Yes."), ActionExecuted("action_ask_feedback")]
    assert predicted(tmp_path, domain, asked) is None
