"""DIET and TED loaded the quick way hold the weights Rasa's own load gives them, and predict alike."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import yaml
from rasa.core.agent import Agent
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.model_training import train
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.utils.tensorflow.models import RasaModel

import components.extractors  # noqa: F401 - each Kefu component package installs the quick load
import components.featurizers  # noqa: F401
import components.policies  # noqa: F401
import components.tokenizers  # noqa: F401
from components import tf_loading
from components.loaded_components import loaded_components
from tests.featurizers.test_smoke import MOOD

MESSAGES = ["I am feeling very sad today", "I am so bored right now", "I feel happy", "bye", "are you a bot?", "x1"]
DOMAIN = {
    "version": "3.1",
    "intents": ["mood_happy", "mood_unhappy", "mood_bored", "mood_angry"],
    "responses": {"utter_glad": [{"text": "Glad to hear it."}], "utter_sorry": [{"text": "Sorry to hear that."}]},
}
STORIES = {"version": "3.1", "stories": [
    {"story": "happy", "steps": [{"intent": "mood_happy"}, {"action": "utter_glad"}]},
    {"story": "unhappy", "steps": [{"intent": "mood_unhappy"}, {"action": "utter_sorry"}]},
    {"story": "bored", "steps": [{"intent": "mood_bored"}, {"action": "utter_sorry"}, {"intent": "mood_happy"},
                                 {"action": "utter_glad"}]},
]}


def loaded(model: str) -> tuple[dict[str, list[np.ndarray] | None], list[list], list[list[float]]]:
    """Each TensorFlow model's weights, the intent rankings of MESSAGES, and TED's action scores."""
    agent = Agent.load(model)
    models = list(loaded_components(agent.processor, DIETClassifier, TEDPolicy).values())
    weights = {type(component).__name__: None if component.model is None else
               [variable.numpy() for variable in component.model.variables] for component in models}
    parsed = [asyncio.run(agent.parse_message(text)) for text in MESSAGES]
    rankings = [[(ranked["name"], ranked["confidence"]) for ranked in message["intent_ranking"]] for message in parsed]
    ted = next(component for component in models if isinstance(component, TEDPolicy))
    scores = []
    for number, text in enumerate(MESSAGES):
        asyncio.run(agent.handle_text(text, sender_id=f"tf-loading-{number}"))
        tracker = asyncio.run(agent.tracker_store.retrieve(f"tf-loading-{number}"))
        scores.append(ted.predict_action_probabilities(tracker, agent.domain).probabilities)
    return weights, rankings, scores


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("tf_loading")
    config = {
        "recipe": "default.v1", "language": "en", "assistant_id": "tf-loading",
        "pipeline": [{"name": "WhitespaceTokenizer"}, {"name": "CountVectorsFeaturizer"},
                     {"name": "DIETClassifier", "epochs": 10, "random_seed": 1}],
        "policies": [{"name": "TEDPolicy", "epochs": 5, "random_seed": 1}],
    }
    for name, content in (("config.yml", config), ("domain.yml", DOMAIN), ("stories.yml", STORIES)):
        (folder / name).write_text(yaml.safe_dump(content))
    result = train(str(folder / "domain.yml"), str(folder / "config.yml"), [str(MOOD), str(folder / "stories.yml")],
                   str(folder), fixed_model_name="small")
    assert result.code == 0
    return result.model


def test_quick_load_gives_the_weights_and_predictions_of_rasas_load(small_model: str, monkeypatch) -> None:
    assert RasaModel.load.__func__ is tf_loading.load_building_weights_eagerly
    quick = loaded(small_model)
    monkeypatch.setattr(RasaModel, "load", classmethod(tf_loading.RASA_LOAD))
    rasas = loaded(small_model)

    for name in ("DIETClassifier", "TEDPolicy"):
        assert quick[0][name] is not None, f"{name} lost its model"
        assert len(quick[0][name]) == len(rasas[0][name])
        assert all(np.array_equal(mine, theirs) for mine, theirs in zip(quick[0][name], rasas[0][name], strict=True))
    assert len({tuple(ranking) for ranking in quick[1]}) > len(MESSAGES) // 2  # the model tells messages apart
    assert quick[1:] == rasas[1:]


def test_a_model_the_quick_way_fails_for_loads_as_rasa_loads_it(small_model: str, monkeypatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a layer this load cannot build")

    monkeypatch.setattr(tf_loading, "_load_quickly", broken)
    weights, *_ = loaded(small_model)
    assert weights["DIETClassifier"] is not None and weights["TEDPolicy"] is not None
    assert "loading it as Rasa does" in caplog.text
