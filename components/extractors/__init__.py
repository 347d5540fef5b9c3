"""Kefu's entity extractors for Rasa NLU pipelines."""

from components import tf_loading
from components.extractors.entity_filter import EntityPatternFilter
from components.extractors.language import LanguageExtractor

tf_loading.install()  # DIET and TED load in a third of the time (components/tf_loading.py)

__all__ = ["EntityPatternFilter", "LanguageExtractor"]
