"""Custom actions' responses are checked as Rasa checks them, with the schema checked once."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

import components.policies  # noqa: F401 - installs the check
from components.policies.action_results import validate_action_result

GOOD: list[dict[str, Any]] = [
    {"events": [{"event": "slot", "name": "order_id", "value": "48213"}], "responses": [{"text": "On its way."}]},
    {"events": [], "responses": []},
    {},
]
BAD: list[dict[str, Any]] = [
    {"events": "not a list"},
    {"events": [{"no": "event name"}]},
    {"responses": [{"text": "hi"}], "events": [{"event": "slot", "name": 3}]},
]


def test_the_kefu_models_processes_use_the_cached_check() -> None:
    assert RemoteAction._validate_action_result is validate_action_result


@pytest.mark.parametrize("result", GOOD + BAD)
def test_the_same_responses_pass_and_fail_as_with_rasas_own_check(result: dict[str, Any]) -> None:
    action = RemoteAction("action_order_status", EndpointConfig("http://127.0.0.1:1/webhook"))
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
        rasa_error = None
    except jsonschema.ValidationError as error:
        rasa_error = error
    if rasa_error is None:
        assert action._validate_action_result(result) is True
    else:
        with pytest.raises(jsonschema.ValidationError) as raised:
            action._validate_action_result(result)
        assert raised.value.message.startswith(rasa_error.message)
        assert "Failed to validate Action server response" in raised.value.message
