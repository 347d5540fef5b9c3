"""Rasa dialogue policies."""

from components.policies import action_results
from components.policies.generative_response import GenerativeResponsePolicy
from components.policies.store_outage import StoreOutagePolicy

action_results.install()  # see action_results: a custom action's response checked in 0.5 ms, not 19

__all__ = ["GenerativeResponsePolicy", "StoreOutagePolicy"]
