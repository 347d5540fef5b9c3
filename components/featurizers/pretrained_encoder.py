"""`PretrainedEncoderFeaturizer`: dense Rasa features from any local Hugging Face encoder,
run with PyTorch, optionally fine-tuned on the intents during `rasa train`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.corpus import file_digest
from components.featurizers.encoder import EncoderSettings, FinetuneSettings, WordEncoder
from components.text import LANGUAGES, message_language

logger = logging.getLogger(__name__)
STATE_FILE = "encoder.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class PretrainedEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Token and sentence features from a local transformer encoder of any architecture."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        encoder, tuning = EncoderSettings(), FinetuneSettings()
        return {
            **DenseFeaturizer.get_default_config(),
            # Folder of a Hugging Face encoder (config.json, weights, fast tokenizer).
            # Nothing is downloaded: the folder must be on this machine.
            "model_path": None,
            # Messages per forward pass.
            "batch_size": encoder.batch_size,
            # Sub-words per message; words past the limit get zero vectors.
            "max_length": encoder.max_length,
            # Sentence feature: "mean" of the sub-word states, or the first ("cls") state.
            "sentence_pooling": encoder.sentence_pooling,
            # "auto" (cuda, then mps, then cpu), or a torch device name.
            "device": encoder.device,
            # "int8": run the encoder's linear layers in int8 (CPU only, about 3x faster per
            # message); DIET then trains on the int8 vectors too. Or "fp32".
            "precision": encoder.precision,
            # "onnx": run the encoder with ONNX Runtime on the CPU (exported when the model
            # loads): the same vectors as "torch", 3-4x faster per short message. fp32 only.
            "runtime": encoder.runtime,
            # The languages the encoder reads, e.g. [en] for an English-only encoder; a message
            # in another language gets zero vectors (and costs nothing), one with no words to
            # tell by is read. null: every message.
            "languages": None,
            # Fine-tune the encoder on the NLU intents (classification on the mean-pooled
            # sentence vector) during `rasa train`, on the examples of the `languages` it reads;
            # the tuned weights go into the model.
            "finetune": False,
            "finetune_epochs": tuning.epochs,
            "finetune_learning_rate": tuning.learning_rate,
            "finetune_batch_size": tuning.batch_size,
            # Keep the sub-word embedding table as pretrained while tuning the layers above it.
            "finetune_freeze_embeddings": tuning.freeze_embeddings,
            # Cross-entropy label smoothing of the intent head.
            "finetune_label_smoothing": tuning.label_smoothing,
            # "auto": bf16 autocast where the device has native bf16 (CUDA, or a CPU with AMX or
            # AVX-512 BF16), otherwise fp32; or "bf16" / "fp32".
            "finetune_precision": tuning.precision,
            # Weight of a supervised contrastive loss next to the classification loss (0: off);
            # batches then pair each sentence with another of its intent.
            "finetune_contrastive_weight": tuning.contrastive_weight,
            "seed": tuning.seed,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if not config.get("model_path"):
            raise InvalidConfigException("PretrainedEncoderFeaturizer needs `model_path`: a local encoder folder")
        languages = config.get("languages")
        if languages is not None and (not isinstance(languages, list) or not set(languages) <= set(LANGUAGES)):
            raise InvalidConfigException(
                f"PretrainedEncoderFeaturizer: languages must be null or a list of {', '.join(LANGUAGES)}")
        try:  # the settings check their own values
            cls._encoder_settings(config)
            FinetuneSettings(precision=config["finetune_precision"])
        except ValueError as error:
            raise InvalidConfigException(f"PretrainedEncoderFeaturizer: {error}") from error

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """A changed encoder folder retrains the component."""
        folder = Path(config.get("model_path") or "")
        files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
        return file_digest(files) if files else None

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, encoder: WordEncoder | None = None) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._encoder = encoder

    @staticmethod
    def _encoder_settings(config: dict[str, Any]) -> EncoderSettings:
        return EncoderSettings(config["batch_size"], config["max_length"], config["sentence_pooling"],
                               config["device"], config["precision"], config["runtime"])

    def _settings(self) -> EncoderSettings:
        return self._encoder_settings(self._config)

    @property
    def encoder(self) -> WordEncoder:
        if self._encoder is None:
            self._encoder = WordEncoder(Path(self._config["model_path"]), self._settings())
        return self._encoder

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> PretrainedEncoderFeaturizer:
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> PretrainedEncoderFeaturizer:
        featurizer = cls(config, model_storage, resource, execution_context)
        with model_storage.read_from(resource) as folder:
            if json.loads((folder / STATE_FILE).read_text())["tuned"]:
                # Tuned weights live inside the Rasa model; read them while the folder exists.
                featurizer._encoder = WordEncoder(folder, featurizer._settings())
        return featurizer

    def train(self, training_data: TrainingData) -> Resource:
        with self._model_storage.write_to(self._resource) as folder:
            if self._config["finetune"]:
                # only the languages it reads: the others get zero vectors whatever it learns
                examples = [m for m in training_data.intent_examples
                            if m.get(TOKENS_NAMES["text"]) and self._reads(m, "text")]
                sentences = [[t.text for t in m.get(TOKENS_NAMES["text"])] for m in examples]
                settings = FinetuneSettings(
                    epochs=self._config["finetune_epochs"], learning_rate=self._config["finetune_learning_rate"],
                    batch_size=self._config["finetune_batch_size"], seed=self._config["seed"],
                    freeze_embeddings=self._config["finetune_freeze_embeddings"],
                    label_smoothing=self._config["finetune_label_smoothing"],
                    precision=self._config["finetune_precision"],
                    contrastive_weight=self._config["finetune_contrastive_weight"])
                self.encoder.finetune(sentences, [m.get(INTENT) for m in examples], settings)
                self.encoder.save(folder)
            (folder / STATE_FILE).write_text(json.dumps({"tuned": bool(self._config["finetune"])}))
        return self._resource

    def _reads(self, message: Message, attribute: str) -> bool:
        """Whether the encoder reads this text: its language is listed, or cannot be told."""
        languages = self._config.get("languages")
        text = message.get(attribute)
        language = message_language(text) if languages is not None and isinstance(text, str) else None
        return language is None or language in languages

    def process(self, messages: list[Message]) -> list[Message]:
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            tokenised = [m for m in messages if m.get(TOKENS_NAMES[attribute])]
            reads = [self._reads(m, attribute) for m in tokenised]
            read = [m for m, yes in zip(tokenised, reads, strict=True) if yes]
            sentences = [[t.text for t in m.get(TOKENS_NAMES[attribute])] for m in read]
            for message, (words, sentence) in zip(read, self.encoder.encode(sentences), strict=True):
                self.add_features_to_message(words, sentence[None, :], attribute, message)
            for message in (m for m, yes in zip(tokenised, reads, strict=True) if not yes):
                size = (len(message.get(TOKENS_NAMES[attribute])), self.encoder.dimensions)
                self.add_features_to_message(np.zeros(size, np.float32), np.zeros((1, size[1]), np.float32),
                                             attribute, message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
