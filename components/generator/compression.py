"""Smaller generators: int8 weights with one scale per output channel, and magnitude pruning.

Only the weight matrices (2-D: embedding tables, GRU and linear weights) are compressed;
biases and layer norms are a few thousand numbers and stay as they are. Pruning zeroes the
given share of each matrix, smallest magnitudes first, with no retraining. int8 stores each
row (one output channel) as round(w / scale) with scale = max |w| of the row / 127, so a row
of small weights keeps its precision next to a row of large ones.

On disk a compressed matrix `name` becomes, in `model.compressed.safetensors`:

    name.values   the kept entries, row by row: int8 with `int8`, else the original floats;
                  the whole matrix when nothing is pruned
    name.scales   float32, one per row (with `int8`)
    name.mask     the kept entries as bits, 8 to a byte, row by row (with `prune`)

The file's metadata and the folder's config.json ("compression") both record the settings.
Loading turns the matrices back into floats, so decoding runs exactly as for an uncompressed
model: torch's dynamic int8 quantization of the modules it can reach gave no measurable gain on
this CPU (benchmarks/results/generator_compression.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

COMPRESSED_WEIGHTS_FILE = "model.compressed.safetensors"
_METADATA_KEY = "kefu_compression"
_BIT_VALUES = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


class CompressedWeightsError(ValueError):
    """A compressed weights file that is damaged or does not belong to its config.json."""


@dataclass(frozen=True)
class CompressionSettings:
    int8: bool = False  # weight matrices as int8 with one float32 scale per output channel (row)
    prune: float = 0.0  # share of each weight matrix set to zero, smallest magnitudes first (0.3: 30%)

    def __post_init__(self) -> None:
        if not 0.0 <= self.prune < 1.0:
            raise ValueError(f"prune is the share of each weight matrix set to zero, from 0 up to but not "
                             f"including 1 (e.g. 0.3); got {self.prune}")

    @property
    def compresses(self) -> bool:
        return self.int8 or self.prune > 0

    def combined(self, other: CompressionSettings) -> CompressionSettings:
        """What a model compressed with `self`, then with `other`, amounts to."""
        return CompressionSettings(self.int8 or other.int8, max(self.prune, other.prune))

    def describe(self) -> str:
        parts = (["int8 weights (a scale per output channel)"] if self.int8 else []) + \
            ([f"{self.prune:.0%} of each weight matrix pruned"] if self.prune else [])
        return ", ".join(parts) or "uncompressed"


def weight_matrices(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters compression applies to; `named_parameters` lists tied weights once."""
    return {name: p for name, p in model.named_parameters() if p.dim() == 2 and p.is_floating_point()}


def prune_smallest(weight: Tensor, share: float) -> Tensor:
    """`weight` with round(share * size) of its entries, the smallest in magnitude, set to zero."""
    count = round(share * weight.numel())
    flat = weight.detach().flatten().clone()
    if count:
        flat[flat.abs().argsort(stable=True)[:count]] = 0
    return flat.view_as(weight)


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(int8 values, float32 scale per row), symmetric: a row's largest magnitude maps to 127."""
    scales = weight.detach().abs().amax(dim=1).float() / 127
    divisors = torch.where(scales > 0, scales, torch.ones_like(scales))  # an all-zero row stays zero
    values = (weight.detach().float() / divisors.unsqueeze(1)).round().clamp(-127, 127).to(torch.int8)
    return values, scales


def dequantize_rows(values: Tensor, scales: Tensor) -> Tensor:
    return values.float() * scales.unsqueeze(1)


def compress_weights(model: nn.Module, settings: CompressionSettings) -> None:
    """Prune, then round to int8 and back, in place: the model then decodes exactly as it will
    once saved with `save_compressed_weights` and loaded again."""
    with torch.no_grad():
        for weight in weight_matrices(model).values():
            compressed = prune_smallest(weight, settings.prune) if settings.prune else weight.detach()
            if settings.int8:
                compressed = dequantize_rows(*quantize_rows(compressed))
            weight.copy_(compressed.to(weight.dtype))


def sparsity(model: nn.Module) -> float:
    """Share of zeros in the weight matrices."""
    matrices = weight_matrices(model).values()
    return sum(int((w == 0).sum()) for w in matrices) / max(sum(w.numel() for w in matrices), 1)


def _pack_bits(mask: Tensor) -> Tensor:
    flat = mask.flatten().to(torch.uint8)
    flat = torch.cat([flat, flat.new_zeros(-len(flat) % 8)])
    return (flat.view(-1, 8) * _BIT_VALUES).sum(dim=1, dtype=torch.uint8)


def _unpack_bits(packed: Tensor, shape: torch.Size) -> Tensor:
    bits = packed.unsqueeze(1).bitwise_and(_BIT_VALUES).ne(0).flatten()
    return bits[: shape.numel()].view(shape)


def save_compressed_weights(model: nn.Module, path: str | Path, settings: CompressionSettings) -> None:
    """Write the model's weights as laid out in the module docstring. The matrices are stored as
    they are: call `compress_weights` first, so that only zeros are left out and int8 loses nothing more."""
    from safetensors.torch import save_file

    matrices = weight_matrices(model)
    tensors: dict[str, Tensor] = {}
    for name, parameter in model.named_parameters():
        weight = parameter.detach().cpu()
        if name not in matrices:
            tensors[name] = weight.contiguous()
            continue
        kept = weight != 0 if settings.prune else None
        values = weight
        if settings.int8:
            values, tensors[f"{name}.scales"] = quantize_rows(weight)
        if kept is not None:
            values, tensors[f"{name}.mask"] = values[kept], _pack_bits(kept)
        tensors[f"{name}.values"] = values.contiguous()
    for name, buffer in model.named_buffers():
        tensors[name] = buffer.detach().cpu().contiguous()
    save_file(tensors, str(path), metadata={_METADATA_KEY: json.dumps(asdict(settings))})


def load_compressed_weights(model: nn.Module, path: str | Path, settings: CompressionSettings) -> None:
    """Fill `model` (built from config.json) with the float weights of a compressed file.

    Raises CompressedWeightsError naming the file and what is wrong: unreadable, compressed
    otherwise than config.json says, or a tensor the model's sizes do not match."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            recorded = (handle.metadata() or {}).get(_METADATA_KEY)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own and torch's errors on a damaged file
        raise CompressedWeightsError(f"{path}: cannot read the compressed weights "
                                     f"({type(error).__name__}: {error})") from error
    try:
        stored = CompressionSettings(**json.loads(recorded)) if recorded else None
    except (TypeError, ValueError) as error:
        raise CompressedWeightsError(f"{path}: unreadable compression metadata {recorded!r}") from error
    if stored != settings:
        raise CompressedWeightsError(
            f"{path}: the weights were compressed with {asdict(stored) if stored else 'no recorded settings'}, "
            f"but config.json's "
            f"\"compression\" says {asdict(settings)}; the two files come from different folders, so copy the "
            "whole compressed folder again or run `kefu generator compress` anew")
    matrices = weight_matrices(model)
    expected: set[str] = set()
    with torch.no_grad():
        for name, target in [*model.named_parameters(), *model.named_buffers()]:
            if name not in matrices:
                expected.add(name)
                _copy(target, _take(tensors, name, path), name, path)
                continue
            parts = {"values"} | ({"scales"} if settings.int8 else set()) | ({"mask"} if settings.prune else set())
            stored_parts = {part: _take(tensors, f"{name}.{part}", path) for part in sorted(parts)}
            expected |= {f"{name}.{part}" for part in parts}
            _copy(target, _rebuild(stored_parts, target.shape, name, path), name, path)
    unexpected = sorted(set(tensors) - expected)
    if unexpected:
        raise CompressedWeightsError(f"{path}: tensors {', '.join(unexpected[:5])} are not in the "
                                     "model config.json describes; the files come from different models")


def _take(tensors: dict[str, Tensor], key: str, path: Path) -> Tensor:
    if key not in tensors:
        raise CompressedWeightsError(f"{path}: no tensor {key!r}, which the model config.json describes needs; "
                                     "the files come from different models or the file is incomplete")
    return tensors[key]


def _rebuild(parts: dict[str, Tensor], shape: torch.Size, name: str, path: Path) -> Tensor:
    """The float matrix of `shape` from its stored values, scales and mask."""
    values = parts["values"]
    if "mask" in parts:
        if parts["mask"].numel() != (shape.numel() + 7) // 8:
            raise CompressedWeightsError(f"{path}: {name}.mask has {8 * parts['mask'].numel()} bits, but the "
                                         f"model's {name} has {shape.numel()} entries; the files do not match")
        kept = _unpack_bits(parts["mask"], shape)
        if int(kept.sum()) != values.numel():
            raise CompressedWeightsError(f"{path}: {name}.values has {values.numel()} entries, but its mask keeps "
                                         f"{int(kept.sum())}; the file is damaged")
        dense = torch.zeros(shape, dtype=values.dtype)
        dense[kept] = values
        values = dense
    if "scales" in parts:
        if parts["scales"].shape != shape[:1] or values.shape != shape:
            raise CompressedWeightsError(f"{path}: {name} is stored as {tuple(values.shape)} with "
                                         f"{tuple(parts['scales'].shape)} scales, but the model needs "
                                         f"{tuple(shape)}; the files do not match")
        values = dequantize_rows(values, parts["scales"])
    return values


def _copy(target: Tensor, source: Tensor, name: str, path: Path) -> None:
    if source.shape != target.shape:
        raise CompressedWeightsError(f"{path}: {name} has shape {tuple(source.shape)}, but the model config.json "
                                     f"describes needs {tuple(target.shape)}; the files come from different models")
    target.copy_(source.to(target.dtype))
