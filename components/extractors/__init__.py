"""Kefu's entity extractors for Rasa NLU pipelines."""

from components.extractors.language import LanguageExtractor

__all__ = ["LanguageExtractor"]
