"""Rasa dialogue policies."""

from components.policies.generative_response import GenerativeResponsePolicy
from components.policies.store_outage import StoreOutagePolicy

__all__ = ["GenerativeResponsePolicy", "StoreOutagePolicy"]
