"""Kefu's entity extractors for Rasa NLU pipelines."""

from components.extractors.entity_filter import EntityPatternFilter
from components.extractors.language import LanguageExtractor

__all__ = ["EntityPatternFilter", "LanguageExtractor"]
