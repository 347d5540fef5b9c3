"""Kefu's dense featurizers for Rasa NLU pipelines."""

from components.featurizers.pretrained_encoder import PretrainedEncoderFeaturizer
from components.featurizers.word_embedding import WordEmbeddingFeaturizer

__all__ = ["PretrainedEncoderFeaturizer", "WordEmbeddingFeaturizer"]
