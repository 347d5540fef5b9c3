"""Kefu's tokenizers for Rasa NLU pipelines."""

from components.tokenizers.mixed import MixedTokenizer

__all__ = ["MixedTokenizer"]
