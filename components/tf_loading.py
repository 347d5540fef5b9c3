"""Loading Rasa's TensorFlow models (DIET, TED) without tracing their training step.

Rasa 3.6 builds a loaded model's variables by fitting it on one example with Keras `fit`, which
traces the whole training step into a graph (twice: once more to create the variables), and then
overwrites the variables with `load_weights`. For config.yml's DIET and TED that tracing is over
two thirds of the time `Agent.load` takes on this machine (51.5 s against 15.3 s without it,
docs/ci.md), paid by every `rasa run`, replica, `rasa shell` and `rasa test`. `install()`
replaces `RasaModel.load`: the example's loss is computed eagerly, which creates the layers it
passes through; the weights are loaded over them, and the prediction graph, traced as before,
creates the rest with their saved values.
The optimizer's state is left unread: prediction never uses it, and an eager step would create
its slots in another order than the saved ones. Finetuning (`rasa train --finetune`) keeps
Rasa's own load, since its model goes on training, and so does any model the quick way fails
for: Rasa would answer a failed load with a component that has no model. Kefu's component
packages install it, so every process loading a Kefu model has it.
"""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

RASA_LOAD = RasaModel.load.__func__
logger = logging.getLogger(__name__)


def load_building_weights_eagerly(
    cls: type[RasaModel],
    model_file_name: str,
    model_data_example: RasaModelData,
    predict_data_example: RasaModelData | None = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> RasaModel:
    if not finetune_mode:
        try:
            return _load_quickly(cls, model_file_name, model_data_example, predict_data_example, *args, **kwargs)
        except Exception:  # noqa: BLE001 - any failure: Rasa's own load, which raises or loads as it always has
            logger.warning("Loading %s the quick way failed; loading it as Rasa does.", cls.__name__, exc_info=True)
    return RASA_LOAD(cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs)


def _load_quickly(cls: type[RasaModel], model_file_name: str, model_data_example: RasaModelData,
                  predict_data_example: RasaModelData | None, *args: Any, **kwargs: Any) -> RasaModel:
    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
                  run_eagerly=config.get(RUN_EAGERLY))
    example, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
    model._training = True  # the layers a training step passes through, as Rasa's one fit creates them
    model.batch_loss(tf.nest.map_structure(tf.convert_to_tensor, example))
    model._training = None
    model.load_weights(model_file_name).expect_partial()  # all but the optimizer's state
    if predict_data_example:
        model.run_inference(predict_data_example)  # traces the prediction graph now, not on the first message
    return model


def install() -> None:
    RasaModel.load = classmethod(load_building_weights_eagerly)
