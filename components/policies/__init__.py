"""Rasa dialogue policies."""

from components.policies.generative_response import GenerativeResponsePolicy

__all__ = ["GenerativeResponsePolicy"]
