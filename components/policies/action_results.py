"""Checking what the action server sends back, with a schema validator built once.

Rasa 3.6 checks each custom action's response with `jsonschema.validate`, which first checks
the response schema itself against JSON Schema's meta-schema: 19 ms of every custom action call
on this machine, against 0.5 ms for the response alone (docs/load.md). `install()` replaces
`RemoteAction._validate_action_result` with the same check on a validator made once: the same
responses pass, and a bad one raises the same `ValidationError` with Rasa's advice appended.
The policies package installs it, so every process that loads Kefu's model has it.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@functools.cache
def response_validator() -> Validator:
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, where Rasa checks it on every call
    return validator_class(schema)


def validate_action_result(action: RemoteAction, result: dict[str, Any]) -> bool:
    error: ValidationError | None = best_match(response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (". Failed to validate Action server response from API, make sure your response from the "
                      f"Action endpoint is valid. For more information about the format visit "
                      f"{DOCS_BASE_URL}/custom-actions")
    raise error


def install() -> None:
    RemoteAction._validate_action_result = validate_action_result
