"""The pointer-generator's output: copying source tokens next to generating from the vocabulary."""

from __future__ import annotations

import torch
from torch import Tensor


def copy_mixture(logits: Tensor, weights: Tensor, source: Tensor, generate: Tensor) -> Tensor:
    """log(generate * softmax(logits) + (1 - generate) * attention spread onto the source tokens).

    logits [batch, steps, vocab], weights [batch, steps, source steps], source [batch, source
    steps] token ids, generate [batch, steps, 1]. Padding gets no attention, so copies nothing."""
    vocabulary = torch.softmax(logits.float(), dim=-1)
    copied = torch.zeros_like(vocabulary).scatter_add_(
        -1, source.unsqueeze(1).expand(-1, weights.size(1), -1), weights.float())
    generate = generate.float()
    return torch.log(generate * vocabulary + (1 - generate) * copied + 1e-9)
