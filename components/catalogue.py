"""The domain's responses as a message catalogue, for code that speaks to customers outside
Rasa's dialogue (the channel guards): one response, in one language, with its values filled.

The domain picks a variant by the `language` slot; this module picks the same variant by
the language code, so a guard's refusal reads like the bot's other replies.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from components.text import DEFAULT_LANGUAGE

LANGUAGE_SLOT = "language"
PROJECT_DOMAIN = Path(__file__).resolve().parent.parent / "domain.yml"


def variant_language(variant: Mapping[str, Any]) -> str | None:
    """The language a response variant is for, or None for the unconditioned variant."""
    for condition in variant.get("condition") or []:
        if condition.get("type") == "slot" and condition.get("name") == LANGUAGE_SLOT:
            return str(condition.get("value"))
    return None


def response_variant(responses: Mapping[str, list[Mapping[str, Any]]], name: str,
                     language: str | None) -> Mapping[str, Any]:
    """Response `name`'s variant for `language`, else its unconditioned variant."""
    variants = responses.get(name)
    if not variants:
        raise KeyError(f"domain: no response {name!r}; add it to domain.yml with a variant per language")
    language = language or DEFAULT_LANGUAGE
    return next((v for v in variants if variant_language(v) == language), None) \
        or next((v for v in variants if variant_language(v) is None), variants[0])


def response_text(responses: Mapping[str, list[Mapping[str, Any]]], name: str, language: str | None,
                  **values: Any) -> str:
    """The text of response `name` in `language`, with `{slot}` values filled in."""
    text = str(response_variant(responses, name, language).get("text") or "")
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


@lru_cache(maxsize=4)
def domain_file_responses(path: Path = PROJECT_DOMAIN) -> dict[str, list[dict[str, Any]]]:
    """The responses of a domain file, for a server that has no model loaded yet."""
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {}
