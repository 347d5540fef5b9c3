"""Kefu: custom Rasa components for a customer-service assistant."""

__version__ = "0.1.0"
