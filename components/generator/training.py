"""Training the response generator on a corpus split.

AdamW with linear warm-up then cosine decay, gradient clipping, label smoothing, teacher
forcing, length-bucketed batches, early stopping on the validation loss (the best weights
are kept), bf16 autocast on CUDA, fixed seeds. After training, the reply confidence is
calibrated on the validation split.

Under torchrun the same function trains data-parallel (DistributedDataParallel): rank 0
trains the tokenizer and shares it, each rank takes its share of every epoch's batches, the
ranks agree on the validation loss, early stopping and the time limit, and only rank 0
writes checkpoints and calibrates.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from components.generator import distributed
from components.generator.data import Dialogue, length_bucketed_batches
from components.generator.decoding import DecodingSettings
from components.generator.generator import (
    InputSettings,
    ResponseGenerator,
    build_model,
    dataclass_from_dict,
    mean_token_loss,
    needs_training_pairs,
)
from components.generator.metrics import PlattCalibration, token_f1
from components.generator.retrieval import RetrievalIndex
from components.generator.tokenizer import PAD_ID, SubwordTokenizer, TokenizerSettings
from components.torch_device import pick_device

logger = logging.getLogger(__name__)


@dataclass
class TrainingSettings:
    epochs: int = 30
    batch_size: int = 64  # examples per batch at most
    batch_tokens: int = 6000  # padded source or target tokens per batch at most
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    patience: int = 3  # epochs without a better validation loss before stopping
    seed: int = 42
    device: str = "auto"  # auto: cuda, then mps, then cpu
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default
    max_minutes: float = 0.0  # stop training after this long (0: no limit)
    calibration_examples: int = 300  # validation replies decoded to calibrate the confidence
    progress: bool = True  # tqdm bar with loss, perplexity and tokens/s


@dataclass
class GeneratorConfig:
    architecture: str = "transformer"  # seq2seq | transformer
    model: dict[str, Any] = field(default_factory=dict)  # Seq2SeqConfig / TransformerConfig fields
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    inputs: InputSettings = field(default_factory=InputSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    # word vectors to start the embeddings from: a folder saved by WordEmbeddingFeaturizer
    # (vectors.safetensors), or a word2vec / GloVe / fastText file
    init_embeddings: str | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "generator config") -> GeneratorConfig:
        values = dict(values)
        nested = {"tokenizer": TokenizerSettings, "inputs": InputSettings, "training": TrainingSettings,
                  "decoding": DecodingSettings}
        for key, kind in nested.items():
            section = values.get(key) or {}
            if not isinstance(section, dict):
                raise ValueError(f"{where}: `{key}` must be a mapping")
            values[key] = dataclass_from_dict(kind, section, f"{where} `{key}`")
        config = dataclass_from_dict(cls, values, where)
        build_model(config.architecture, 1000, config.model)  # fails early on a bad architecture or size
        return config


@dataclass
class TrainingResult:
    generator: ResponseGenerator
    history: list[dict[str, float]]  # per epoch: train loss, valid loss, valid perplexity, tokens/s (all ranks)
    best_epoch: int
    seconds: float
    stopped_early: bool
    ranks: distributed.Ranks = field(default_factory=distributed.Ranks)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def initialise_embeddings(embedding: nn.Embedding, tokenizer: SubwordTokenizer, path: str | Path) -> int:
    """Copy word vectors into the rows of tokens that are whole words; returns how many.

    Vectors are rescaled to the embedding's own spread, so training starts stable."""
    from components.word_vectors import WordVectors, load_pretrained

    path = Path(path)
    words = {}
    for token_id in range(tokenizer.vocab_size):
        token = tokenizer.id_to_token(token_id) or ""
        word = token.lstrip("▁")
        if word and not token.startswith("<"):
            words[token_id] = word
    if path.is_dir():
        vectors = WordVectors.load(path)
    else:
        vectors = load_pretrained(path, keep_words={w for word in words.values() for w in (word, word.lower())},
                                  keep_most_frequent=0)
    if vectors.dimensions != embedding.embedding_dim:
        raise ValueError(f"{path}: vectors have {vectors.dimensions} dimensions but the model's embeddings "
                         f"have {embedding.embedding_dim}; set the embedding size to {vectors.dimensions}")
    found = {}
    for token_id, word in words.items():
        vector = vectors.lookup(word)
        if vector is None:
            vector = vectors.lookup(word.lower())
        if vector is not None and np.any(vector):
            found[token_id] = vector
    if found:
        matrix = torch.tensor(np.stack(list(found.values())), dtype=embedding.weight.dtype)
        spread = matrix.std()
        if spread > 0:
            matrix = matrix / spread * embedding.weight.detach().std()
        with torch.no_grad():
            embedding.weight[list(found)] = matrix.to(embedding.weight.device)
    logger.info("initialised %d of %d token embeddings from %s", len(found), tokenizer.vocab_size, path)
    return len(found)


def _learning_rate_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _optimiser(model: nn.Module, settings: TrainingSettings) -> torch.optim.AdamW:
    # no weight decay on biases, norms and embeddings
    decayed = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": settings.weight_decay},
                              {"params": other, "weight_decay": 0.0}], lr=settings.learning_rate)


def calibrate(generator: ResponseGenerator, dialogues: Sequence[Dialogue], good_f1: float = 0.5) -> PlattCalibration:
    """Fit P(token F1 >= good_f1) from the mean token log-prob of replies to `dialogues`."""
    replies = generator.replies([d.question for d in dialogues], [d.context for d in dialogues])
    outcomes = [token_f1(r.text, d.answer) >= good_f1 for r, d in zip(replies, dialogues, strict=True)]
    return PlattCalibration.fit([r.mean_log_prob for r in replies], outcomes, good_f1)


def train_generator(train: Sequence[Dialogue], valid: Sequence[Dialogue], config: GeneratorConfig | None = None,
                    init_from: str | Path | ResponseGenerator | None = None,
                    checkpoint: str | Path | None = None) -> TrainingResult:
    """Train a generator; with `init_from` (a generator or its folder), continue from it:
    its tokenizer, architecture and sizes are kept. With `checkpoint`, rank 0 saves the best
    model so far there after each epoch that improves it."""
    config = config or GeneratorConfig()
    settings = config.training
    if not train:
        raise ValueError("the train split has no question-answer pairs")
    if not valid:
        raise ValueError("the valid split has no question-answer pairs; early stopping and calibration need it")
    set_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = pick_device(settings.device)
    ranks = distributed.join(device)
    device = distributed.local_device(device, ranks)
    if init_from:
        previous = init_from if isinstance(init_from, ResponseGenerator) else ResponseGenerator.load(init_from, "cpu")
        tokenizer, model, inputs = previous.tokenizer, previous.model, previous.inputs
    else:
        texts = [text for d in train for text in (d.question, d.answer, *d.context)]
        shared = distributed.share_text(ranks, SubwordTokenizer.train(texts, config.tokenizer).to_str()
                                        if ranks.is_main else None)
        tokenizer = SubwordTokenizer.from_str(shared)
        model = build_model(config.architecture, tokenizer.vocab_size, config.model)
        inputs = config.inputs
        if config.init_embeddings:
            initialise_embeddings(model.embedding, tokenizer, config.init_embeddings)
    # Retrieved answers come from the train split only; a training pair never reads its own.
    retrieval = RetrievalIndex([d.question for d in train], [d.answer for d in train]) \
        if needs_training_pairs(inputs, config.decoding) else None
    generator = ResponseGenerator(model, tokenizer, inputs, config.decoding, device=device, retrieval=retrieval)
    model.train()
    train_examples = generator.examples(train, own_pairs=True)
    valid_examples = generator.examples(valid)
    batches_per_epoch = len(distributed.shard(list(length_bucketed_batches(
        train_examples, settings.batch_size, settings.batch_tokens)), ranks))
    total_steps = batches_per_epoch * settings.epochs
    optimiser = _optimiser(model, settings)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: _learning_rate_factor(step, settings.warmup_steps, total_steps))
    loss_function = nn.CrossEntropyLoss(ignore_index=PAD_ID, label_smoothing=settings.label_smoothing)
    batch_rng = random.Random(settings.seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    # DDP averages the gradients of the ranks in backward(); `model` stays the plain module.
    trained = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) \
        if ranks.distributed else model

    history: list[dict[str, float]] = []
    best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
    started = time.perf_counter()
    out_of_time = stopped_early = False
    for epoch in range(1, settings.epochs + 1):
        model.train()
        epoch_loss, epoch_tokens, epoch_start = 0.0, 0, time.perf_counter()
        # Every rank draws the same batches from the same seed, then takes its share.
        batches = distributed.shard(list(length_bucketed_batches(train_examples, settings.batch_size,
                                                                 settings.batch_tokens, batch_rng)), ranks)
        bar = tqdm(batches, total=batches_per_epoch, desc=f"{model.architecture} epoch {epoch}/{settings.epochs}",
                   disable=not settings.progress or not ranks.is_main, leave=False)
        for batch in bar:
            batch = batch.to(device)
            with autocast:
                logits = trained(batch.source, batch.source_mask, batch.target_input)
            loss = loss_function(logits.float().flatten(0, 1), batch.target_output.flatten())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
            optimiser.step()
            schedule.step()
            tokens = batch.target_tokens
            epoch_loss += loss.item() * tokens
            epoch_tokens += tokens
            seconds = time.perf_counter() - epoch_start
            bar.set_postfix(loss=f"{loss.item():.3f}", ppl=f"{math.exp(min(loss.item(), 20)):.1f}",
                            tok_s=f"{epoch_tokens / max(seconds, 1e-9):.0f}")
            if settings.max_minutes and distributed.agree_any(
                    ranks, time.perf_counter() - started > 60 * settings.max_minutes):
                out_of_time = True
                break
        valid_loss = distributed.agree_mean(ranks, mean_token_loss(model, valid_examples, device))
        all_tokens = distributed.agree_sum(ranks, epoch_tokens)
        history.append({"epoch": epoch,
                        "train_loss": distributed.agree_sum(ranks, epoch_loss) / max(all_tokens, 1),
                        "valid_loss": valid_loss, "valid_perplexity": math.exp(min(valid_loss, 50)),
                        "tokens_per_second": all_tokens / max(time.perf_counter() - epoch_start, 1e-9),
                        "seconds": time.perf_counter() - started})
        logger.info("epoch %d: train loss %.3f, valid loss %.3f (perplexity %.1f)", epoch,
                    history[-1]["train_loss"], valid_loss, history[-1]["valid_perplexity"])
        if valid_loss < best_loss:
            best_loss, best_epoch, waited = valid_loss, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            if checkpoint and ranks.is_main:
                generator.save(checkpoint)
        else:
            waited += 1
            if waited >= settings.patience:
                stopped_early = True
                break
        if out_of_time:
            break
    if best_state is None:
        raise ValueError("training diverged: the validation loss is not a number; lower `learning_rate` "
                         "or check `init_embeddings`")
    model.load_state_dict(best_state)
    model.eval()
    if ranks.is_main:  # the other ranks' copies are only compared, never used
        generator.calibration = calibrate(generator, list(valid)[: settings.calibration_examples])
    return TrainingResult(generator, history, best_epoch, time.perf_counter() - started, stopped_early, ranks)


def training_report(result: TrainingResult, config: GeneratorConfig) -> dict[str, Any]:
    return {"config": asdict(config), "history": result.history, "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 1), "stopped_early": result.stopped_early,
            "parameters": result.generator.parameter_count()}
