"""Where PyTorch code runs: `auto` picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
