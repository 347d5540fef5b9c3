"""WebChatInput: the shop's chat page, served by the bot itself at /webhooks/webchat/.

The page (components/channels/webchat/: HTML, CSS and JavaScript, nothing from the internet)
talks to the bot over plain HTTP: POST /webhooks/webchat/webhook with `{sender, message,
message_id}` returns the bot's replies, as the stock REST channel does, plus the `reply_id` of
each generated reply so the page can put 👍/👎 under it. The page retries a message with the
same `message_id`, which is processed once (components/channels/message_ids.py). REST rather
than socket.io: each message is one request, so a page whose server restarted just retries,
and the page needs no client library. GET /webhooks/webchat/history returns the current
session's messages, so a reloaded page shows the conversation; the sender id lives in the
browser's localStorage.

The channel also installs Kefu's request guards (components/channels/guards.py) on the whole
server, from its `before_server_start` listener.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from components.action_names import GENERATED_REPLY_ACTION
from components.catalogue import LANGUAGE_SLOT, domain_file_responses, response_variant
from components.channels.guards import GuardSettings, install_guards
from components.channels.message_ids import InvalidMessageId, MessageIdSettings, ProcessedMessages, message_id_of
from components.text import LANGUAGES

logger = logging.getLogger(__name__)

PAGE_FOLDER = Path(__file__).resolve().parent / "webchat"
PAGE_FILES = {"chat.js": "text/javascript", "chat.css": "text/css"}
PAGE_LABELS = "utter_page_labels"


class WebChatInput(InputChannel):
    """Configured in credentials.yml:

        components.channels.WebChatInput:
          max_message_chars: 2000      # longer messages get a polite refusal
          messages_per_minute: 60      # per sender; counted in Redis when REDIS_URL is set
          message_id_expiry_hours: 24  # how long a repeated message_id gets the first replies
    """

    @classmethod
    def name(cls) -> str:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls(GuardSettings.from_credentials(credentials or {}),
                   MessageIdSettings.from_credentials(credentials or {}))

    def __init__(self, guards: GuardSettings | None = None, message_ids: MessageIdSettings | None = None) -> None:
        self.guards = guards or GuardSettings()
        self.processed = ProcessedMessages(message_ids)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        module = inspect.getmodule(self)
        page = Blueprint("kefu_webchat", module.__name__ if module else None)

        @page.listener("before_server_start")
        async def guard_every_route(app: Any, loop: Any) -> None:
            install_guards(app, self.guards)

        @page.route("/", methods=["GET"])
        async def chat_page(request: Request) -> HTTPResponse:
            return await response.file(PAGE_FOLDER / "index.html", mime_type="text/html",
                                       headers={"Cache-Control": "no-cache"})

        @page.route("/static/<name>", methods=["GET"])
        async def asset(request: Request, name: str) -> HTTPResponse:
            if name not in PAGE_FILES:
                return response.json({"error": "not found"}, status=404)
            return await response.file(PAGE_FOLDER / name, mime_type=PAGE_FILES[name],
                                       headers={"Cache-Control": "no-cache"})

        @page.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json  # the guards checked it is an object with string fields
            sender, text = body.get("sender") or "", body.get("message") or ""
            if not sender:
                return response.json({"error": "\"sender\" is required"}, status=400)
            try:
                message_id = message_id_of(body)
            except InvalidMessageId as error:
                return response.json({"error": str(error)}, status=400)
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None

            async def process() -> list[dict[str, Any]]:
                collector = CollectingOutputChannel()
                await on_new_message(UserMessage(text, collector, sender, input_channel=self.name(),
                                                 message_id=message_id, metadata=metadata))
                messages = [dict(message) for message in collector.messages]
                await self._mark_generated_replies(request, sender, messages)
                return messages

            return await self.processed.respond(sender, message_id, process,
                                                request.app.ctx.agent.tracker_store)

        @page.route("/labels", methods=["GET"])
        async def labels(request: Request) -> HTTPResponse:
            """The page's labels in the conversation's language, else in the browser's (`lang`)."""
            agent = request.app.ctx.agent
            sender = request.args.get("sender") or ""
            tracker = await agent.tracker_store.retrieve(sender) if sender else None
            language = tracker.get_slot(LANGUAGE_SLOT) if tracker and LANGUAGE_SLOT in tracker.slots else None
            if language is None:
                asked = (request.args.get("lang") or "").lower()
                language = next((code for code in LANGUAGES if asked.startswith(code)), None)
            responses = agent.domain.responses if agent.domain is not None else domain_file_responses()
            return response.json(response_variant(responses, PAGE_LABELS, language).get("custom") or {})

        @page.route("/history", methods=["GET"])
        async def history(request: Request) -> HTTPResponse:
            sender = request.args.get("sender") or ""
            tracker = await request.app.ctx.agent.tracker_store.retrieve(sender) if sender else None
            messages = []
            for event in tracker.events if tracker else []:
                if isinstance(event, UserUttered) and event.text and not event.text.startswith("/"):
                    messages.append({"from": "user", "text": event.text})
                elif isinstance(event, BotUttered) and event.text:
                    messages.append({"from": "bot", "text": event.text})
            return response.json(messages)

        return page

    @staticmethod
    async def _mark_generated_replies(request: Request, sender: str, messages: list[dict[str, Any]]) -> None:
        """Adds `reply_id` to each message that is a generated reply of this turn."""
        tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
        if tracker is None:
            return
        generated: list[tuple[str, str]] = []
        for event in reversed(tracker.events):
            if isinstance(event, UserUttered):
                break
            if isinstance(event, ActionExecuted) and event.action_name == GENERATED_REPLY_ACTION:
                metadata = event.metadata or {}
                if metadata.get("reply_id"):
                    generated.append((metadata.get("generated_reply", ""), metadata["reply_id"]))
        for text, reply_id in generated:
            for message in messages:
                if message.get("text") == text and "reply_id" not in message:
                    message["reply_id"] = reply_id
                    break
