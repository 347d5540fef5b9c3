"""Kefu's dense featurizers for Rasa NLU pipelines."""

from components import tf_loading
from components.featurizers.pretrained_encoder import PretrainedEncoderFeaturizer
from components.featurizers.word_embedding import WordEmbeddingFeaturizer

tf_loading.install()  # DIET and TED load in a third of the time (components/tf_loading.py)

__all__ = ["PretrainedEncoderFeaturizer", "WordEmbeddingFeaturizer"]
