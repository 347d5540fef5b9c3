"""Kefu's tokenizers for Rasa NLU pipelines."""

from components import tf_loading
from components.tokenizers.mixed import MixedTokenizer

tf_loading.install()  # DIET and TED load in a third of the time (components/tf_loading.py)

__all__ = ["MixedTokenizer"]
