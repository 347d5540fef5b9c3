"""ResponseGenerator: tokenizer + model + calibration, saved as a self-describing folder.

    MODEL/config.json         architecture, model sizes, input and decoding settings
    MODEL/model.safetensors   weights (tied embeddings stored once)
    MODEL/tokenizer.json      the sub-word tokenizer
    MODEL/calibration.json    Platt scaling of the reply confidence
    MODEL/retrieval.jsonl     the pairs whose answers it reads beside the question (retrieval_k > 0)

A compressed folder (`kefu generator compress`) has MODEL/model.compressed.safetensors in
place of the weights and says how it was compressed in config.json; it loads the same way.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.generator.compression import (
    COMPRESSED_WEIGHTS_FILE,
    CompressedWeightsError,
    CompressionSettings,
    compress_weights,
    load_compressed_weights,
    save_compressed_weights,
)
from components.generator.data import Dialogue, Example, encode_dialogues, encode_source, length_bucketed_batches, pad
from components.generator.decoding import DecodingSettings, decode
from components.generator.metrics import PlattCalibration
from components.generator.retrieval import RetrievalFileError, RetrievalIndex
from components.generator.seq2seq import Seq2Seq, Seq2SeqConfig
from components.generator.tokenizer import PAD_ID, SubwordTokenizer
from components.generator.transformer import Transformer, TransformerConfig
from components.torch_device import pick_device

logger = logging.getLogger(__name__)

ARCHITECTURES: dict[str, tuple[type[nn.Module], type]] = {
    "seq2seq": (Seq2Seq, Seq2SeqConfig),
    "transformer": (Transformer, TransformerConfig),
}
CONFIG_FILE, WEIGHTS_FILE, CALIBRATION_FILE = "config.json", "model.safetensors", "calibration.json"
FORMAT_VERSION = 1


class GeneratorFileError(ValueError):
    """A generator folder with a missing or unreadable file."""


@dataclass
class InputSettings:
    context_turns: int = 2  # earlier turns put before the question
    max_source_tokens: int = 128  # the source is cut from the left, so the question stays
    max_target_tokens: int = 96  # longer answers are cut in training
    # Retrieval-augmented generation: the answers of the k nearest training questions follow the
    # question in the source (components/generator/retrieval.py); 0 reads the question alone.
    retrieval_k: int = 0
    max_evidence_tokens: int = 48  # of each retrieved answer

    def __post_init__(self) -> None:
        for name in ("context_turns", "retrieval_k"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"inputs.{name} must be a whole number >= 0, not {getattr(self, name)!r}")
        for name in ("max_source_tokens", "max_target_tokens", "max_evidence_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"inputs.{name} must be a whole number >= 1, not {getattr(self, name)!r}")


def dataclass_from_dict(kind: type, values: dict[str, Any], where: str) -> Any:
    """`kind(**values)`, with an error naming `where` and the known keys for an unknown key."""
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {', '.join(map(repr, unknown))}; "
                         f"known keys: {', '.join(sorted(known))}")
    return kind(**values)


def build_model(architecture: str, vocab_size: int, sizes: dict[str, Any]) -> nn.Module:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}")
    model_class, config_class = ARCHITECTURES[architecture]
    config = dataclass_from_dict(config_class, {**sizes, "vocab_size": vocab_size}, f"{architecture} model")
    return model_class(config)


@dataclass
class Reply:
    text: str
    tokens: int  # generated tokens
    mean_log_prob: float
    confidence: float  # calibrated P(token F1 with a good answer >= 0.5)
    finished: bool  # False when cut at max_length


class ResponseGenerator:
    def __init__(self, model: nn.Module, tokenizer: SubwordTokenizer, inputs: InputSettings | None = None,
                 decoding: DecodingSettings | None = None, calibration: PlattCalibration | None = None,
                 device: str | torch.device = "cpu", retrieval: RetrievalIndex | None = None) -> None:
        self.device = pick_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.inputs = inputs or InputSettings()
        self.decoding = decoding or DecodingSettings()
        self.calibration = calibration or PlattCalibration()
        self.trace_steps = True  # on a CPU, decode with a traced step (decoding.stepper); False: eager
        self.compression: CompressionSettings | None = None  # how `save` stores the weights; None: float
        self.retrieval = retrieval
        if self.inputs.retrieval_k and retrieval is None:
            raise ValueError(f"inputs.retrieval_k is {self.inputs.retrieval_k}, but the generator has no "
                             "retrieval index")
        self.check_decoding(self.decoding)

    @property
    def architecture(self) -> str:
        return self.model.architecture

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def check_decoding(self, decoding: DecodingSettings) -> None:
        """ValueError when this generator cannot decode with `decoding`."""
        if decoding.strategy == "mbr" and decoding.neighbours and self.retrieval is None:
            raise ValueError(f"mbr decoding with {decoding.neighbours} neighbours needs the training pairs, which "
                             "this generator does not keep: train it with `decoding: {strategy: mbr, neighbours: "
                             "K}`, or use 0 neighbours")

    def compress(self, settings: CompressionSettings) -> None:
        """Prune and/or round the weights to int8 in place; `save` then writes a compressed folder."""
        settings = self.compression.combined(settings) if self.compression else settings
        compress_weights(self.model, settings)
        self.compression = settings

    def reply(self, question: str, context: Sequence[str] = (), decoding: DecodingSettings | None = None) -> Reply:
        return self.replies([question], [context], decoding)[0]

    def replies(self, questions: Sequence[str], contexts: Sequence[Sequence[str]] | None = None,
                decoding: DecodingSettings | None = None, batch_size: int = 32) -> list[Reply]:
        contexts = contexts or [()] * len(questions)
        decoding = decoding or self.decoding
        self.check_decoding(decoding)
        neighbours = decoding.neighbours if decoding.strategy == "mbr" else 0
        results: list[Reply] = []
        for start in range(0, len(questions), batch_size):
            end = start + batch_size
            source, mask = pad(self.sources(questions[start:end], contexts[start:end]))
            neighbour_answers = self.retrieval.evidence(questions[start:end], neighbours) if neighbours else None
            hypotheses = decode(self.model, source.to(self.device), mask.to(self.device), decoding,
                                self.trace_steps, self.tokenizer.decode, neighbour_answers)
            results += [Reply(self.tokenizer.decode(h.tokens), len(h.tokens), h.mean_log_prob,
                              self.calibration.probability(h.mean_log_prob), h.finished) for h in hypotheses]
        return results

    def evidence(self, questions: Sequence[str], exclude: Sequence[int] | None = None) -> list[list[str]] | None:
        """The retrieved answers for each question; None when the generator reads none."""
        if not self.inputs.retrieval_k or self.retrieval is None:
            return None
        return self.retrieval.evidence(questions, self.inputs.retrieval_k, exclude)

    def sources(self, questions: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[list[int]]:
        """Source token ids, as the model reads them: context, question, retrieved answers."""
        evidence = self.evidence(questions) or [()] * len(questions)
        return [encode_source(self.tokenizer, q, c, self.inputs.context_turns, self.inputs.max_source_tokens,
                              found, self.inputs.max_evidence_tokens)
                for q, c, found in zip(questions, contexts, evidence, strict=True)]

    def examples(self, dialogues: Sequence[Dialogue], own_pairs: bool = False) -> list[Example]:
        """Training examples; `own_pairs`: `dialogues` are the index's own pairs, in its order,
        and none reads its own answer."""
        questions = [d.question for d in dialogues]
        evidence = self.evidence(questions, list(range(len(dialogues))) if own_pairs else None)
        return encode_dialogues(dialogues, self.tokenizer, self.inputs.context_turns, self.inputs.max_source_tokens,
                                self.inputs.max_target_tokens, evidence, self.inputs.max_evidence_tokens)

    @torch.inference_mode()
    def perplexity(self, dialogues: Sequence[Dialogue], batch_tokens: int = 8000) -> float:
        """exp(mean negative log-likelihood per reference answer token)."""
        return math.exp(mean_token_loss(self.model, self.examples(dialogues), self.device, batch_tokens))

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_model

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"format_version": FORMAT_VERSION, "architecture": self.architecture,
                  "model": asdict(self.model.config), "inputs": asdict(self.inputs), "decoding": asdict(self.decoding)}
        if self.compression:
            config["compression"] = asdict(self.compression)
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        # one set of weights per folder, so a stale file never sits next to the one config.json names
        if self.compression:
            save_compressed_weights(self.model, folder / COMPRESSED_WEIGHTS_FILE, self.compression)
            (folder / WEIGHTS_FILE).unlink(missing_ok=True)
        else:
            save_model(self.model, str(folder / WEIGHTS_FILE))
            (folder / COMPRESSED_WEIGHTS_FILE).unlink(missing_ok=True)
        self.tokenizer.save(folder)
        (folder / CALIBRATION_FILE).write_text(json.dumps(asdict(self.calibration), indent=2) + "\n",
                                               encoding="utf-8")
        if self.retrieval is not None:
            self.retrieval.save(folder)

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto") -> ResponseGenerator:
        """Load on `device`; weights saved on a GPU load on a CPU-only machine."""
        from safetensors.torch import load_model

        folder = Path(folder)
        if not folder.is_dir():
            raise GeneratorFileError(f"{folder}: no such generator folder")
        config = _read_json(folder / CONFIG_FILE)
        try:
            architecture, sizes = config["architecture"], dict(config["model"])
            inputs = dataclass_from_dict(InputSettings, config["inputs"], f"{folder / CONFIG_FILE} inputs")
            decoding = dataclass_from_dict(DecodingSettings, config["decoding"], f"{folder / CONFIG_FILE} decoding")
            model = build_model(architecture, sizes.pop("vocab_size"), sizes)
            compression = (dataclass_from_dict(CompressionSettings, config["compression"],
                                               f"{folder / CONFIG_FILE} compression")
                           if "compression" in config else None)
        except (KeyError, TypeError, ValueError) as error:
            raise GeneratorFileError(f"{folder / CONFIG_FILE}: not a generator config ({error})") from error
        weights = folder / (COMPRESSED_WEIGHTS_FILE if compression else WEIGHTS_FILE)
        if not weights.is_file():
            raise GeneratorFileError(f"{weights}: missing; the generator folder is incomplete")
        try:
            if compression:
                load_compressed_weights(model, weights, compression)
            else:
                load_model(model, str(weights), device="cpu")
        except CompressedWeightsError as error:
            raise GeneratorFileError(str(error)) from error
        except Exception as error:  # safetensors raises its own and torch's errors on a damaged file
            raise GeneratorFileError(f"{weights}: cannot load the weights ({type(error).__name__}: {error})") from error
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise GeneratorFileError(f"{tokenizer_file}: missing; the generator folder is incomplete")
        try:
            tokenizer = SubwordTokenizer.load(folder)
        except ValueError as error:
            raise GeneratorFileError(str(error)) from error
        calibration_file = folder / CALIBRATION_FILE
        calibration = (dataclass_from_dict(PlattCalibration, _read_json(calibration_file), str(calibration_file))
                       if calibration_file.exists() else PlattCalibration())
        try:
            retrieval = RetrievalIndex.load(folder) if needs_training_pairs(inputs, decoding) else None
        except RetrievalFileError as error:
            raise GeneratorFileError(str(error)) from error
        generator = cls(model, tokenizer, inputs, decoding, calibration, device, retrieval)
        generator.compression = compression
        return generator


def needs_training_pairs(inputs: InputSettings, decoding: DecodingSettings) -> bool:
    """Whether the generator keeps its training pairs (the retrieval index) beside its weights:
    to read neighbours' answers, or to liken mbr's candidates to them."""
    return bool(inputs.retrieval_k or (decoding.strategy == "mbr" and decoding.neighbours))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GeneratorFileError(f"{path}: missing; the generator folder is incomplete")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GeneratorFileError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise GeneratorFileError(f"{path}: expected a JSON object")
    return data


def mean_token_loss(model: nn.Module, examples: Sequence, device: torch.device, batch_tokens: int = 8000) -> float:
    """Mean cross-entropy per target token, with no label smoothing."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in length_bucketed_batches(examples, 256, batch_tokens):
            batch = batch.to(device)
            logits = model(batch.source, batch.source_mask, batch.target_input)
            total += torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch.target_output.flatten(),
                                                       ignore_index=PAD_ID, reduction="sum").item()
            count += batch.target_tokens
    model.train(was_training)
    return total / max(count, 1)
