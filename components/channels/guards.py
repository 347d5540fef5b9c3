"""Request guards for every route of the bot's server: REST, Slack, the web chat and the HTTP API.

Open-source Rasa has no hook before a channel parses a request, and the stock REST channel
answers a JSON array with a 500. So Kefu registers one Sanic request middleware (from the
web chat channel's `before_server_start` listener) that, for every POST with a body:
- answers 400 to a body that is not UTF-8, or not JSON where JSON is expected, or whose
  JSON is not an object, or whose message is not a string;
- strips control characters from the message before NLU sees it (not on Slack, whose
  signature covers the raw body);
- refuses a message over `max_message_chars` politely, without processing it;
- limits each sender to `messages_per_minute` (a counter in Redis when `REDIS_URL` is set,
  so several server processes share it; in process otherwise) with a polite "slow down".
A refusal on a channel webhook is a normal reply in the REST format (HTTP 200), so chat
clients show it; on the HTTP API it is an error status (413, 429).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from components.catalogue import domain_file_responses, response_text
from components.stores.connection import OUTAGE, REDIS_ERRORS, connect, redis_url
from components.text import message_language

logger = logging.getLogger(__name__)

# C0 and C1 controls, except tab and newline, plus DEL
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Domain responses, in the language of the refused message.
TOO_LONG = "utter_message_too_long"
SLOW_DOWN = "utter_slow_down"
API_MESSAGES = re.compile(r"^/conversations/[^/]+/messages/?$")


@dataclass
class GuardSettings:
    max_message_chars: int = 2000
    messages_per_minute: int = 60
    rate_window_seconds: int = 60  # the limit is messages_per_minute * window / 60 per window

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> GuardSettings:
        return cls(int(credentials.get("max_message_chars", cls.max_message_chars)),
                   int(credentials.get("messages_per_minute", cls.messages_per_minute)),
                   int(credentials.get("rate_window_seconds", cls.rate_window_seconds)))


class RateLimiter:
    """Fixed windows per sender, counted in Redis when configured."""

    def __init__(self, per_minute: int, window_seconds: int = 60) -> None:
        self.window_seconds = max(1, window_seconds)
        self.per_window = max(1, round(per_minute * self.window_seconds / 60))
        url = redis_url()
        self.red = connect(url, socket_timeout=0.5, connect_timeout=0.5) if url else None
        self.local: dict[tuple[str, int], int] = defaultdict(int)

    def allow(self, sender: str) -> bool:
        window = int(time.time() // self.window_seconds)
        if self.red is not None and OUTAGE.should_try():
            key = f"kefu:rate:{{{sender}}}:{window}"
            try:
                with self.red.pipeline() as pipe:
                    count, _ = pipe.incr(key).expire(key, 2 * self.window_seconds).execute()
                return int(count) <= self.per_window
            except REDIS_ERRORS as error:  # Redis is down: count in process until it is back
                OUTAGE.failed("the rate limiter's Redis", error)
        for stale in [k for k in self.local if k[1] < window]:
            del self.local[stale]
        self.local[(sender, window)] += 1
        return self.local[(sender, window)] <= self.per_window


def _refusal(request: Request, sender: str, message: str, response_name: str, status: int,
             **values: Any) -> HTTPResponse:
    agent = getattr(request.app.ctx, "agent", None)
    domain = getattr(agent, "domain", None)
    responses = domain.responses if domain is not None else domain_file_responses()
    text = response_text(responses, response_name, message_language(message[:500]), **values)
    if API_MESSAGES.match(request.path):
        return response.json({"status": "failure", "reason": text}, status=status)
    return response.json([{"recipient_id": sender, "text": text}])


def install_guards(app: Any, settings: GuardSettings) -> None:
    """Registers the guard middleware on `app`, once."""
    if getattr(app.ctx, "kefu_guards", None) is not None:
        return
    limiter = RateLimiter(settings.messages_per_minute, settings.rate_window_seconds)
    app.ctx.kefu_guards = settings

    async def guard(request: Request) -> HTTPResponse | None:
        if request.method != "POST" or not request.body:
            return None
        try:
            raw = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return response.json({"error": "the request body is not UTF-8"}, status=400)
        is_slack = request.path.startswith("/webhooks/slack")
        content_type = request.headers.get("content-type", "")
        if is_slack and "json" not in content_type:
            return None  # form-encoded interactive payloads: Slack's signature check decides
        if not is_slack and "json" not in content_type and not request.path.endswith("/webhook") \
                and not API_MESSAGES.match(request.path):
            return None
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            return response.json({"error": "the request body is not valid JSON"}, status=400)
        if not isinstance(body, dict):
            return response.json({"error": "the request body must be a JSON object"}, status=400)
        if is_slack:
            return None
        is_api = API_MESSAGES.match(request.path) is not None
        key = "text" if is_api else "message"
        text = body.get(key)
        sender = body.get("sender") or (request.path.split("/")[2] if is_api else "anonymous")
        if text is None:
            return None
        if not isinstance(text, str) or not isinstance(body.get("sender", ""), str):
            return response.json({"error": f"\"{key}\" and \"sender\" must be strings"}, status=400)
        if len(text) > settings.max_message_chars:
            logger.info("Refused a %d-character message from %s", len(text), sender)
            return _refusal(request, sender, text, TOO_LONG, 413, length=len(text), limit=settings.max_message_chars)
        if not limiter.allow(sender):
            return _refusal(request, sender, text, SLOW_DOWN, 429)
        cleaned = CONTROL_CHARACTERS.sub("", text)
        if cleaned != text:
            body[key] = cleaned
            request.parsed_json = body
        return None

    app.register_middleware(guard, "request")
