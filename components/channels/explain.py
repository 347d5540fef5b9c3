"""ExplainInput: `kefu explain` over HTTP for staff tools, behind the API secret.

    POST /webhooks/explain/message {"message": "..."}                -> the explanation (JSON)
    GET  /webhooks/explain/conversations/<conversation_id>/turns/<N>  -> turn N (from 1) of a
                                                                        stored conversation; ?format=html: the page

Explanations show what customers wrote, so the routes ask what Rasa's HTTP API asks (`make serve`):
`?token=` equal to KEFU_API_TOKEN, or a JWT signed with KEFU_JWT_SECRET whose role is admin. A
server that has neither secret refuses every request rather than serving them to anyone. An
explanation parses a few hundred perturbed messages, so it takes seconds and is meant for staff.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.server import ErrorResponse, requires_auth
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from components.explain.assistant import AssistantExplainer, ExplainError
from components.explain.report import render_html

API_TOKEN_ENV = "KEFU_API_TOKEN"


class ExplainInput(InputChannel):
    """Configured in credentials.yml:

        components.channels.ExplainInput:
          samples: 128  # perturbed messages per word attribution
    """

    @classmethod
    def name(cls) -> str:
        return "explain"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls(int((credentials or {}).get("samples", 128)))

    def __init__(self, samples: int = 128) -> None:
        self.samples = samples
        self._explainer: AssistantExplainer | None = None

    def explainer(self, agent: Any) -> AssistantExplainer:  # noqa: ANN401 - rasa's Agent
        """One explainer per loaded model; a newly loaded model gets a new one."""
        if self._explainer is None or self._explainer.agent is not agent:
            self._explainer = AssistantExplainer(agent, self.samples)
        return self._explainer

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        module = inspect.getmodule(self)
        routes = Blueprint("kefu_explain", module.__name__ if module else None)

        async def behind_api_secret(request: Request, handler: Callable[..., Awaitable[HTTPResponse]],
                                    **kwargs: Any) -> HTTPResponse:
            token = os.environ.get(API_TOKEN_ENV) or None
            if token is None and not request.app.config.get("USE_JWT"):
                return response.json({"error": "explanations need the API secret: set KEFU_JWT_SECRET or "
                                               "KEFU_API_TOKEN and serve with `make serve`"}, status=403)
            try:
                return await requires_auth(request.app, token)(handler)(request, **kwargs)
            except ErrorResponse as error:
                return response.json(error.error_info, status=error.status)

        @routes.route("/message", methods=["POST"])
        async def explain_message(request: Request) -> HTTPResponse:
            async def explain(request: Request) -> HTTPResponse:
                text = (request.json or {}).get("message") or ""
                if not text.strip():
                    return response.json({"error": "\"message\" is required"}, status=400)
                explanation = await self.explainer(request.app.ctx.agent).explain_message(text)
                return response.json(explanation.to_dict())

            return await behind_api_secret(request, explain)

        @routes.route("/conversations/<conversation_id>/turns/<turn:int>", methods=["GET"])
        async def explain_turn(request: Request, conversation_id: str, turn: int) -> HTTPResponse:
            async def explain(request: Request, conversation_id: str) -> HTTPResponse:
                agent = request.app.ctx.agent
                try:
                    explanation = await self.explainer(agent).explain_turn(agent.tracker_store, conversation_id,
                                                                           turn)
                except ExplainError as error:
                    return response.json({"error": str(error)}, status=404)
                if request.args.get("format") == "html":
                    return response.html(render_html(explanation))
                return response.json(explanation.to_dict())

            # passed by name, so a JWT of role "user" reaches only its own conversation (Rasa's rule)
            return await behind_api_secret(request, explain, conversation_id=conversation_id)

        return routes
