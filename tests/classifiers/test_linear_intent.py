"""LinearIntentClassifier: a second opinion combined with the earlier classifier's ranking."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.classifiers import LinearIntentClassifier
from components.classifiers.linear_intent import MODEL_FILE
from tests.featurizers.checks import CHINESE, ENGLISH, Component, tokenised

CHARACTERS = {"analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4}


@pytest.fixture()
def featurizer(tmp_path: Path) -> CountVectorsFeaturizer:
    component = Component(CountVectorsFeaturizer, tmp_path / "counts", CHARACTERS)
    trained = CountVectorsFeaturizer.create(component.config, component.storage, component.resource, component.context)
    trained.train(TrainingData(tokenised(ENGLISH) + tokenised(CHINESE, chinese=True)))
    return trained


def featurised(featurizer: CountVectorsFeaturizer, examples: list, chinese: bool = False) -> list[Message]:
    messages = tokenised(examples, chinese)
    featurizer.process(messages)
    return messages


def with_ranking(message: Message, ranking: dict[str, float]) -> Message:
    message.set(INTENT_RANKING_KEY, [{"name": n, "confidence": c} for n, c in ranking.items()])
    message.set(INTENT, {"name": max(ranking, key=ranking.get), "confidence": max(ranking.values())})
    return message


def trained(tmp_path: Path, featurizer: CountVectorsFeaturizer, **config: object) -> Component:
    component = Component(LinearIntentClassifier, tmp_path / "linear", config)
    classifier = component.trained(featurised(featurizer, ENGLISH) + featurised(featurizer, CHINESE, chinese=True))
    component.classifier = classifier
    return component


def test_alone_it_names_the_intent_of_a_new_phrasing(tmp_path: Path, featurizer: CountVectorsFeaturizer) -> None:
    classifier = trained(tmp_path, featurizer).classifier
    english = featurised(featurizer, ["where is my parcel now", "can I pay by paypal"])
    chinese = featurised(featurizer, ["我想退货可以吗"], chinese=True)
    classifier.process(english + chinese)
    assert [m.get(INTENT)["name"] for m in english + chinese] == ["order_status", "payment_methods", "return_item"]
    ranking = english[0].get(INTENT_RANKING_KEY)
    assert ranking[0]["name"] == "order_status" and sum(r["confidence"] for r in ranking) == pytest.approx(1.0)


def test_where_the_earlier_classifier_disagrees_the_intent_is_less_sure(
        tmp_path: Path, featurizer: CountVectorsFeaturizer) -> None:
    classifier = trained(tmp_path, featurizer, weight=0.5).classifier
    agreeing, disagreeing = featurised(featurizer, ["where is my parcel now", "where is my parcel now"])
    with_ranking(agreeing, {"order_status": 0.9, "delivery_time": 0.1})
    with_ranking(disagreeing, {"return_item": 0.9, "order_status": 0.1})
    classifier.process([agreeing, disagreeing])
    sure, torn = agreeing.get(INTENT)["confidence"], disagreeing.get(INTENT)["confidence"]
    assert agreeing.get(INTENT)["name"] == "order_status" and sure > 0.8
    assert torn < 0.7 and torn < sure


def test_weight_zero_keeps_the_earlier_ranking(tmp_path: Path, featurizer: CountVectorsFeaturizer) -> None:
    classifier = trained(tmp_path, featurizer, weight=0.0).classifier
    message = featurised(featurizer, ["where is my parcel now"])[0]
    with_ranking(message, {"return_item": 0.8, "order_status": 0.2})
    classifier.process([message])
    assert message.get(INTENT) == {"name": "return_item", "confidence": pytest.approx(0.8, abs=1e-4)}


def test_it_is_saved_with_the_model_and_a_damaged_file_leaves_the_earlier_ranking(
        tmp_path: Path, featurizer: CountVectorsFeaturizer) -> None:
    component = trained(tmp_path, featurizer)
    probe = featurised(featurizer, ["where is my parcel now"])
    component.classifier.process(probe)
    reloaded = featurised(featurizer, ["where is my parcel now"])
    component.loaded().process(reloaded)
    assert reloaded[0].get(INTENT_RANKING_KEY) == probe[0].get(INTENT_RANKING_KEY)

    with component.storage.write_to(component.resource) as folder:
        (folder / MODEL_FILE).write_bytes(b"not a model")
    message = featurised(featurizer, ["where is my parcel now"])[0]
    with_ranking(message, {"return_item": 0.7, "order_status": 0.3})
    component.loaded().process([message])
    assert message.get(INTENT)["name"] == "return_item"


def test_messages_without_features_and_one_intent_data_pass_through(
        tmp_path: Path, featurizer: CountVectorsFeaturizer) -> None:
    classifier = trained(tmp_path, featurizer).classifier
    bare = Message(data={TEXT: "where is my parcel"})  # no featurizer ran
    classifier.process([bare])
    assert bare.get(INTENT) is None

    single = Component(LinearIntentClassifier, tmp_path / "single", {})
    untrained = single.trained(featurised(featurizer, [("where is my order", "order_status")]))
    message = with_ranking(featurised(featurizer, ["where is my order"])[0], {"order_status": 1.0})
    untrained.process([message])
    assert message.get(INTENT) == {"name": "order_status", "confidence": 1.0}


@pytest.mark.parametrize("config", [{"weight": 1.5}, {"regularisation": 0}])
def test_bad_settings_are_refused(tmp_path: Path, config: dict) -> None:
    with pytest.raises(InvalidConfigException):
        Component(LinearIntentClassifier, tmp_path, config).trained([])


def test_a_model_saved_without_this_classifier_loads_and_keeps_the_earlier_ranking(tmp_path: Path) -> None:
    component = Component(LinearIntentClassifier, tmp_path, {})
    context = ExecutionContext(GraphSchema({}), node_name="linear")
    classifier = LinearIntentClassifier.load(component.config, component.storage, component.resource, context)
    message = with_ranking(Message(data={TEXT: "hi"}), {"greet": 1.0})
    classifier.process([message])
    assert message.get(INTENT)["name"] == "greet"


def test_features_of_another_width_leave_the_earlier_ranking(
        tmp_path: Path, featurizer: CountVectorsFeaturizer) -> None:
    """A featurizer trained anew without the classifier (another vocabulary) makes features it cannot read."""
    classifier = trained(tmp_path, featurizer).classifier
    other = Component(CountVectorsFeaturizer, tmp_path / "other", CHARACTERS)
    retrained = CountVectorsFeaturizer.create(other.config, other.storage, other.resource, other.context)
    retrained.train(TrainingData(tokenised([("a wholly different vocabulary", "greet")])))
    message = featurised(retrained, ["where is my parcel now"])[0]
    with_ranking(message, {"return_item": 0.7, "order_status": 0.3})
    classifier.process([message])
    assert message.get(INTENT) == {"name": "return_item", "confidence": 0.7}
