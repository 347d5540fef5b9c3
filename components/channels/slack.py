"""SlackInput: Rasa's Slack channel, configured from the environment and off without it.

The stock channel takes its token and signing secret from credentials.yml and raises when
the secret is empty, so a credentials file that names Slack cannot be used without Slack.
This wrapper reads `SLACK_TOKEN` and `SLACK_SIGNING_SECRET` (credentials.yml may still
give the other settings, e.g. `slack_channel`); with either unset the channel stays off:
its webhook answers 404 and says what to set. Requests are checked by the stock channel
against the signing secret (and refused when older than five minutes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.slack import SlackInput as RasaSlackInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "SLACK_TOKEN"
SECRET_VARIABLE = "SLACK_SIGNING_SECRET"


class DisabledSlackInput(InputChannel):
    """Slack without credentials: nothing is processed."""

    @classmethod
    def name(cls) -> str:
        return "slack"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("kefu_slack_disabled", __name__)

        @webhook.route("/webhook", methods=["GET", "POST"])
        async def not_configured(request: Request) -> HTTPResponse:
            return response.json({"error": f"Slack is off: set {TOKEN_VARIABLE} and {SECRET_VARIABLE} and restart"},
                                 status=404)

        return webhook


class SlackInput(RasaSlackInput):
    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        token, secret = os.environ.get(TOKEN_VARIABLE, "").strip(), os.environ.get(SECRET_VARIABLE, "").strip()
        if not token or not secret:
            logger.info("Slack is off: %s and %s are not both set", TOKEN_VARIABLE, SECRET_VARIABLE)
            return DisabledSlackInput()
        settings = dict(credentials or {})
        settings.update(slack_token=token, slack_signing_secret=secret)
        return super().from_credentials(settings)
