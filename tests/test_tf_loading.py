"""A DIET model loaded the quick way predicts exactly what Rasa's own load predicts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from rasa.core.agent import Agent
from rasa.model_training import train_nlu
from rasa.utils.tensorflow.models import RasaModel

import components.extractors  # noqa: F401 - each Kefu component package installs the quick load
import components.featurizers  # noqa: F401
import components.policies  # noqa: F401
import components.tokenizers  # noqa: F401
from components import tf_loading
from tests.featurizers.test_smoke import MOOD

MESSAGES = ["I am feeling very sad today", "I am so bored right now", "I feel happy", "bye", "are you a bot?", "x1"]


def intent_rankings(model: str) -> list[list[tuple[str, float]]]:
    agent = Agent.load(model)
    parsed = [asyncio.run(agent.parse_message(text)) for text in MESSAGES]
    return [[(ranked["name"], ranked["confidence"]) for ranked in message["intent_ranking"]] for message in parsed]


def test_quick_load_gives_the_same_predictions_as_rasas_load(tmp_path: Path, monkeypatch) -> None:
    assert RasaModel.load.__func__ is tf_loading.load_building_weights_eagerly
    config = {
        "recipe": "default.v1", "language": "en", "assistant_id": "tf-loading",
        "pipeline": [{"name": "WhitespaceTokenizer"}, {"name": "CountVectorsFeaturizer"},
                     {"name": "DIETClassifier", "epochs": 10, "random_seed": 1}],
        "policies": [],
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    model = train_nlu(str(tmp_path / "config.yml"), str(MOOD), str(tmp_path), fixed_model_name="nlu")

    quick = intent_rankings(model)
    monkeypatch.setattr(RasaModel, "load", classmethod(tf_loading.RASA_LOAD))
    rasas = intent_rankings(model)

    assert len({tuple(ranking) for ranking in quick}) > len(MESSAGES) // 2  # the model tells messages apart
    assert quick == rasas
