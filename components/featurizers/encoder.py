"""A local Hugging Face encoder that embeds already tokenised text: one vector per word
(its sub-word states pooled) and one per sentence. Plain PyTorch and transformers; no
Rasa, so it can be tested alone."""

from __future__ import annotations

import copy
import io
import logging
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import BatchEncoding

from components.torch_device import has_fast_bf16, pick_device

logger = logging.getLogger(__name__)


PRECISIONS = ("auto", "bf16", "fp32")  # of fine-tuning; see FinetuneSettings.precision
INFERENCE_PRECISIONS = ("fp32", "int8")  # of encoding; see EncoderSettings.precision
RUNTIMES = ("torch", "onnx")  # what runs the encoder's forward pass; see EncoderSettings.runtime


class EncoderError(ValueError):
    """A model folder that is missing or cannot be loaded."""


@dataclass
class EncoderSettings:
    batch_size: int = 32
    max_length: int = 128  # sub-words per message; words past it get zero vectors
    sentence_pooling: str = "mean"  # mean | cls
    device: str = "auto"  # auto picks cuda, then mps, then cpu
    # "int8": the linear layers run with int8 weights and dynamically quantised activations
    # (CPU only; about 3x faster here). The vectors differ slightly from fp32's, so whatever
    # learns from them must be trained on the same precision.
    precision: str = "fp32"
    # "onnx": the forward pass is exported to an ONNX graph when the encoder loads and run by
    # ONNX Runtime on the CPU: the same vectors as torch's (within 1e-5), and 3-4x faster on a
    # short message, where torch's per-operator overhead is most of the time. fp32 only.
    runtime: str = "torch"

    def __post_init__(self) -> None:
        if self.sentence_pooling not in ("mean", "cls"):
            raise ValueError(f'sentence_pooling must be "mean" or "cls", not {self.sentence_pooling!r}')
        if self.precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"encoder precision must be one of {', '.join(INFERENCE_PRECISIONS)}, "
                             f"not {self.precision!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"encoder runtime must be one of {', '.join(RUNTIMES)}, not {self.runtime!r}")
        if self.runtime == "onnx" and self.precision != "fp32":
            raise ValueError("the onnx runtime runs fp32 only; int8 needs runtime: torch")


@dataclass
class FinetuneSettings:
    """Intent classification on top of the mean-pooled sentence vector."""

    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    seed: int = 42
    # The classification head starts from random weights, so it learns this many times faster.
    head_learning_rate_factor: float = 20.0
    warmup_fraction: float = 0.1
    # The sub-word embedding table is half of a small encoder's weights: kept as pretrained, words
    # the intents never show keep their meaning, and each step updates half as many weights.
    freeze_embeddings: bool = True
    label_smoothing: float = 0.1
    # "auto": bf16 autocast where the device multiplies bf16 natively (CUDA, or a CPU with AMX or
    # AVX-512 BF16), else fp32; or "bf16" / "fp32". The weights and the optimiser stay in fp32.
    precision: str = "auto"
    # Weight of a supervised contrastive loss next to the classification loss (0: off). Each
    # batch then holds batch_size / 2 sentences of similar length, each with a partner of the same
    # intent (see _PartnerPicker); their normalised sentence vectors are pulled together and the
    # rest pushed apart, so the features themselves, not only the head that is thrown away,
    # separate the intents.
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"fine-tuning precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


class WordEncoder:
    def __init__(self, model_dir: Path, settings: EncoderSettings | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.settings = settings or EncoderSettings()
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise EncoderError(f"{self.model_dir}: no encoder here (config.json is missing); "
                               "fix the featurizer's `model_path`")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        except Exception as error:  # transformers raises many kinds on a damaged folder
            problem = f"{type(error).__name__}: {error}"
            raise EncoderError(f"{self.model_dir}: cannot load the encoder ({problem})") from error
        if not self.tokenizer.is_fast:
            raise EncoderError(f"{self.model_dir}: needs a fast tokenizer (tokenizer.json) to map sub-words to words")
        onnx = self.settings.runtime == "onnx"
        self.device = pick_device("cpu" if onnx and self.settings.device == "auto" else self.settings.device)
        if onnx and self.device.type != "cpu":
            raise EncoderError(f"the onnx runtime runs on the CPU only, not on {self.device.type}: "
                               "set the device to cpu (or auto) or the runtime to torch")
        self.model.to(self.device).eval()
        self._forward = self._inference_forward()

    def _inference_forward(self) -> Callable[[BatchEncoding], torch.Tensor]:
        """The last hidden states of a tokenised batch, as the settings say to compute them."""
        if self.settings.runtime == "onnx":
            return OnnxForward(self.model, self.tokenizer.model_input_names)
        model = self._quantised() if self.settings.precision == "int8" else self.model
        return lambda batch: model(**batch).last_hidden_state

    def _quantised(self) -> torch.nn.Module:
        if self.device.type != "cpu":
            raise EncoderError(f"int8 encoding runs on the CPU only, not on {self.device.type}: "
                               "set the device to cpu or the precision to fp32")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # A scale per output row: as fast as one per matrix, and the sentence vectors stay closer
        # to fp32's (cosine 0.97-0.98 against 0.92-0.96 on shop questions).
        with warnings.catch_warnings():  # torch's notice that this API moves to torchao one day
            warnings.simplefilter("ignore")
            return quantize_dynamic(copy.deepcopy(self.model), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                    dtype=torch.qint8)

    @property
    def dimensions(self) -> int:
        return int(self.model.config.hidden_size)

    def _batch(self, sentences: Sequence[list[str]]) -> BatchEncoding:
        return self.tokenizer(list(sentences), is_split_into_words=True, truncation=True,
                              max_length=self.settings.max_length, padding=True, return_tensors="pt")

    def _sentence(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.settings.sentence_pooling == "cls":
            return hidden[:, 0]
        mask = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)

    def _pooled(self, sentences: Sequence[list[str]]) -> torch.Tensor:
        batch = self._batch(sentences).to(self.device)
        return self._sentence(self.model(**batch).last_hidden_state, batch["attention_mask"])

    def encode(self, sentences: Sequence[list[str]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each sentence (a list of words): a [words, dims] matrix and a [dims] vector."""
        results: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(sentences), self.settings.batch_size):
            chunk = sentences[start : start + self.settings.batch_size]
            batch = self._batch(chunk)
            with torch.inference_mode():
                hidden = self._forward(batch.to(self.device))
                pooled = self._sentence(hidden, batch["attention_mask"])
            hidden, pooled = hidden.float().cpu().numpy(), pooled.float().cpu().numpy()
            for row, words in enumerate(chunk):
                word_vectors = np.zeros((len(words), hidden.shape[-1]), dtype=np.float32)
                counts = np.zeros(len(words), dtype=np.float32)
                for position, word in enumerate(batch.word_ids(row)):
                    if word is not None:
                        word_vectors[word] += hidden[row, position]
                        counts[word] += 1
                word_vectors[counts > 0] /= counts[counts > 0, None]
                results.append((word_vectors, pooled[row]))
        return results

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's sentence vector scaled to unit length, [texts, dims], so that a product
        of two is their cosine similarity. Texts are split into words at white space."""
        vectors = np.array([sentence for _, sentence in self.encode([text.split() or [text] for text in texts])])
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def finetune(self, sentences: Sequence[list[str]], labels: Sequence[str], settings: FinetuneSettings) -> None:
        """Tune the encoder to tell the labels (intents) apart from its sentence vector."""
        torch.manual_seed(settings.seed)
        names = sorted(set(labels))
        targets = torch.tensor([names.index(label) for label in labels])
        head = torch.nn.Linear(self.dimensions, len(names)).to(self.device)
        embeddings = self.model.get_input_embeddings()
        embeddings.requires_grad_(not settings.freeze_embeddings)
        tuned = [p for p in self.model.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW([
            {"params": tuned, "lr": settings.learning_rate},
            {"params": head.parameters(), "lr": settings.learning_rate * settings.head_learning_rate_factor},
        ])
        contrastive = settings.contrastive_weight > 0
        lengths = [len(" ".join(words)) for words in sentences]
        batches = length_buckets(lengths, max(1, settings.batch_size // 2) if contrastive else settings.batch_size)
        rng = random.Random(settings.seed)
        partners = _PartnerPicker(targets.tolist(), lengths, rng) if contrastive else None
        total_steps = max(1, settings.epochs * len(batches))
        warmup = max(1, int(total_steps * settings.warmup_fraction))
        decay_steps = max(1, total_steps - warmup)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / decay_steps)))
        bf16 = settings.precision == "bf16" or (settings.precision == "auto" and has_fast_bf16(self.device))
        self.model.train()
        for epoch in range(settings.epochs):
            rng.shuffle(batches)
            correct, seen, started = 0, 0, time.monotonic()
            for anchors in batches:
                # anchors and partners are each of similar length, but not to each other: two passes
                groups = [anchors, partners.pick(anchors)] if partners else [anchors]
                indices = [index for group in groups for index in group]
                with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
                    pooled = torch.cat([self._pooled([sentences[i] for i in group]) for group in groups])
                    logits = head(pooled).float()
                expected = targets[indices].to(self.device)
                loss = torch.nn.functional.cross_entropy(logits, expected, label_smoothing=settings.label_smoothing)
                if contrastive:
                    loss = loss + settings.contrastive_weight * supervised_contrastive_loss(
                        pooled.float(), expected, settings.contrastive_temperature)
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tuned, 1.0)
                optimiser.step()
                schedule.step()
                correct += int((logits.argmax(-1) == expected).sum())
                seen += len(indices)
            logger.info("Encoder fine-tuning epoch %d/%d (%s): training accuracy %.3f, %.0f s", epoch + 1,
                        settings.epochs, "bf16" if bf16 else "fp32", correct / max(seen, 1), time.monotonic() - started)
        embeddings.requires_grad_(True)
        self.model.eval()
        self._forward = self._inference_forward()

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)


class OnnxForward:
    """A torch encoder's forward pass exported to ONNX (in memory, with the batch size and the
    length left open) and run by ONNX Runtime on the CPU."""

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str]) -> None:
        import onnxruntime

        self.input_names = list(input_names)
        # two rows, one padded, so the traced graph masks padding as a real batch needs
        example = {name: torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]) for name in self.input_names}
        open_axes = {name: {0: "batch", 1: "length"} for name in [*self.input_names, "hidden"]}
        graph = io.BytesIO()
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # torch's notices about tracing shape checks and its newer exporter
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(_LastHiddenState(model, self.input_names).eval(), tuple(example.values()), graph,
                                  input_names=self.input_names, output_names=["hidden"], dynamic_axes=open_axes,
                                  opset_version=17, dynamo=False)
            except Exception as error:  # the exporter raises many kinds on an operator it lacks
                raise EncoderError(f"{type(model).__name__} cannot be exported to ONNX "
                                   f"({type(error).__name__}: {error}); set the runtime to torch") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Spinning threads wait for the next message busily: 7.3 ms of CPU per short message
        # against 5.0 without, CPU that TensorFlow and the other requests need under load.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: BatchEncoding) -> torch.Tensor:
        inputs = {name: batch[name].numpy() for name in self.input_names if name in batch}
        return torch.from_numpy(self.session.run(None, inputs)[0])


class _LastHiddenState(torch.nn.Module):
    """The encoder with positional inputs and one output, as the ONNX exporter wants it."""

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs, strict=True))).last_hidden_state


class _PartnerPicker:
    """A same-label partner for each sentence of a batch, all near one random length quantile of
    their labels: a partner's length is unrelated to its sentence's (a pair is rarely a near-copy),
    yet the partners are of similar length to each other, so their own pass adds little padding."""

    def __init__(self, labels: Sequence[int], lengths: Sequence[int], rng: random.Random) -> None:
        self.rng = rng
        self.by_label: dict[int, list[int]] = {}
        for index in sorted(range(len(labels)), key=lambda i: (lengths[i], i)):
            self.by_label.setdefault(labels[index], []).append(index)
        self.label = list(labels)

    def pick(self, anchors: Sequence[int]) -> list[int]:
        quantile = self.rng.random()
        picked = []
        for index in anchors:
            group = self.by_label[self.label[index]]
            rank = min(len(group) - 1, max(0, round(quantile * (len(group) - 1)) + self.rng.randint(-2, 2)))
            if group[rank] == index and len(group) > 1:  # not itself, where the label has others
                rank = rank + 1 if rank + 1 < len(group) else rank - 1
            picked.append(group[rank])
        return picked


def supervised_contrastive_loss(vectors: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean -log p(a same-label vector | vector) over the batch's cosine similarities, for every
    vector with a same-label partner (Khosla et al.'s SupCon, the partners averaged outside the log)."""
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    itself = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    log_prob = (unit @ unit.T / temperature).masked_fill(itself, float("-inf")).log_softmax(dim=-1)
    partners = (labels[:, None] == labels[None, :]) & ~itself
    count = partners.sum(dim=1)
    if not bool((count > 0).any()):
        return vectors.new_zeros(())
    per_vector = log_prob.masked_fill(~partners, 0.0).sum(dim=1)[count > 0] / count[count > 0]
    return -per_vector.mean()


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of indices of similar length, so little of each batch is padding."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
