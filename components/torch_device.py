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


def has_fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix products run natively here: CUDA with bf16, or a CPU with AMX or
    AVX-512 BF16 (elsewhere bf16 is emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return any(getattr(cpu, check, lambda: False)()
                   for check in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return False
