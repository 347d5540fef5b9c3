"""RestInput: Rasa's REST channel (/webhooks/rest/webhook), plus client message ids.

A POST with a `message_id` is processed at most once per sender and id, and a repeat gets
the first replies (components/channels/message_ids.py); it is answered by a middleware of
the channel's blueprint, before the stock handler. A POST without one goes to the stock
handler, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from components.channels.message_ids import InvalidMessageId, MessageIdSettings, ProcessedMessages, message_id_of


class RestInput(RasaRestInput):
    """Configured in credentials.yml:

        components.channels.RestInput:
          message_id_expiry_hours: 24  # how long a repeated message_id gets the first replies
    """

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls(MessageIdSettings.from_credentials(credentials or {}))

    def __init__(self, message_ids: MessageIdSettings | None = None) -> None:
        self.processed = ProcessedMessages(message_ids)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def once_per_message_id(request: Request) -> HTTPResponse | None:
            body = request.json if request.method == "POST" and request.path.endswith("/webhook") else None
            if not isinstance(body, dict):
                return None
            try:
                message_id = message_id_of(body)
            except InvalidMessageId as error:
                return response.json({"error": str(error)}, status=400)
            if message_id is None:
                return None
            sender = await self._extract_sender(request)
            if not isinstance(sender, str) or not sender:
                return response.json({"error": "\"sender\" is required with a message_id"}, status=400)
            if bool_arg(request, "stream", default=False):
                return response.json({"error": "a message_id cannot be combined with stream=true"}, status=400)

            async def process() -> list[dict[str, Any]]:
                collector = CollectingOutputChannel()
                await on_new_message(UserMessage(self._extract_message(request), collector, sender,
                                                 input_channel=self._extract_input_channel(request),
                                                 message_id=message_id, metadata=self.get_metadata(request)))
                return collector.messages

            return await self.processed.respond(sender, message_id, process,
                                                request.app.ctx.agent.tracker_store)

        return webhook
