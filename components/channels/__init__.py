"""Input channels: the web chat page, REST with message ids, the Slack wrapper and the staff's
explanation routes (imported on first use: Rasa is slow to import)."""

from typing import Any

__all__ = ["ExplainInput", "RestInput", "SlackInput", "WebChatInput"]


def __getattr__(name: str) -> Any:
    if name == "WebChatInput":
        from components.channels.webchat import WebChatInput

        return WebChatInput
    if name == "SlackInput":
        from components.channels.slack import SlackInput

        return SlackInput
    if name == "ExplainInput":
        from components.channels.explain import ExplainInput

        return ExplainInput
    if name == "RestInput":
        from components.channels.rest import RestInput

        return RestInput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
