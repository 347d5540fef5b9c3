"""Rasa dialogue policies."""

from components import tf_loading
from components.policies import action_results
from components.policies.generative_response import GenerativeResponsePolicy
from components.policies.store_outage import StoreOutagePolicy

action_results.install()  # see action_results: a custom action's response checked in 0.5 ms, not 19
tf_loading.install()  # DIET and TED load in a third of the time (components/tf_loading.py)

__all__ = ["GenerativeResponsePolicy", "StoreOutagePolicy"]
