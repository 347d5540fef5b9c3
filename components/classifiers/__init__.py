"""Kefu's intent classifiers for Rasa NLU pipelines."""

from components.classifiers.linear_intent import LinearIntentClassifier

__all__ = ["LinearIntentClassifier"]
