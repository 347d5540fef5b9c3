"""Data-parallel training across processes with `torch.distributed`.

`torchrun` starts one process per CPU share or GPU and describes the group in the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...). Each process joins it here: gloo on the CPU,
NCCL on CUDA. Without torchrun a run is a group of one and nothing here talks to anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

Item = TypeVar("Item")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The rank that decides alone: it writes checkpoints and calibrates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def join(device: torch.device) -> Ranks:
    """This process's place in the group torchrun describes; a plain run is rank 0 of 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Each process on a machine takes its own GPU."""
    if device.type == "cuda" and ranks.distributed:
        return torch.device("cuda", ranks.local_rank)
    return device


def _reduce(ranks: Ranks, value: float, op: dist.ReduceOp) -> float:
    if not ranks.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=op)
    return float(tensor.item())


def agree_sum(ranks: Ranks, value: float) -> float:
    return _reduce(ranks, value, dist.ReduceOp.SUM)


def agree_mean(ranks: Ranks, value: float) -> float:
    """The ranks' mean, so every rank takes the same decision from it."""
    return _reduce(ranks, value, dist.ReduceOp.SUM) / ranks.world_size


def agree_any(ranks: Ranks, flag: bool) -> bool:
    """True on every rank when it is true on one (a rank out of time stops them all)."""
    return _reduce(ranks, float(flag), dist.ReduceOp.MAX) > 0


def share_text(ranks: Ranks, text: str | None) -> str:
    """Rank 0's `text` on every rank."""
    if not ranks.distributed:
        return text or ""
    box = [text]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(items: Sequence[Item], ranks: Ranks) -> list[Item]:
    """This rank's items: every world_size-th, the same count on every rank (a rank with an
    extra batch would wait forever for the others' gradients)."""
    if len(items) < ranks.world_size:
        return list(items)  # too few to share: every rank takes them all
    usable = len(items) - len(items) % ranks.world_size
    return list(items[ranks.rank:usable:ranks.world_size])


def weights_digest(model: nn.Module) -> str:
    """A short hash of the weights, to check that the ranks hold the same model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
