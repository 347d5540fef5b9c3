"""Decoding: greedy, beam search, sampling and minimum Bayes risk, batched, for any model with
`start` and `step`.

Every hypothesis carries its mean token log-probability under the model (before any
sampling temperature or bans), which the generator turns into a calibrated confidence.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
from torch import Tensor, nn

from components.generator.metrics import consensus_index
from components.generator.tokenizer import BOS_ID, EOS_ID, PAD_ID, SEP_ID, UNK_ID

STRATEGIES = ("greedy", "beam", "sample", "mbr")
NEVER_GENERATED = (PAD_ID, UNK_ID, BOS_ID, SEP_ID)
DecoderState = dict[str, Tensor]


class EncoderDecoder(Protocol):
    def start(self, source: Tensor, source_mask: Tensor) -> DecoderState: ...

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]: ...


@dataclass
class DecodingSettings:
    strategy: str = "beam"  # greedy | beam | sample | mbr
    beam_width: int = 4
    samples: int = 16  # mbr: replies sampled beside the beam's best; the one most like the others wins
    neighbours: int = 0  # mbr: also liken them to the answers of this many nearest training questions
    length_penalty: float = 1.0  # beam score = sum log p / length ** length_penalty
    temperature: float = 1.0  # sampling and mbr's samples
    top_k: int = 0  # sampling: keep the k likeliest tokens (0: all)
    top_p: float = 1.0  # sampling: keep the smallest set with this much probability
    no_repeat_ngram: int = 3  # never repeat an n-gram of this size (0: allow)
    min_length: int = 1  # generated tokens before </s> may end the reply
    max_length: int = 64  # generated tokens at most
    seed: int | None = None  # of sampling and mbr's samples, so a reply repeats; None: torch's global generator

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"decoding strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if self.max_length < 1 or self.min_length > self.max_length:
            raise ValueError(f"decoding needs 1 <= max_length and min_length <= max_length "
                             f"(got min {self.min_length}, max {self.max_length})")
        if self.beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, not {self.beam_width}")
        if self.strategy == "mbr" and self.samples < 1:
            raise ValueError(f"mbr decoding needs at least 1 sample, not {self.samples}")
        if self.neighbours < 0:
            raise ValueError(f"neighbours must be 0 or more, not {self.neighbours}")


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, without <s> and </s>
    mean_log_prob: float  # over the generated tokens and </s> when it was generated
    finished: bool = True  # False when it stopped at max_length
    score: float = field(default=0.0, repr=False)


def banned_by_ngrams(history: list[int], n: int) -> list[int]:
    """Tokens that would complete an n-gram already in `history`."""
    if n <= 0 or len(history) < n:
        return []
    prefix = tuple(history[len(history) - n + 1 :])
    return [history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i : i + n - 1]) == prefix]


@functools.lru_cache(maxsize=8)
def _never_generated(vocab: int, device: torch.device) -> Tensor:
    """Added to every step's log-probs: -inf on tokens a reply never contains (read-only)."""
    bias = torch.zeros(vocab, device=device)
    bias[list(NEVER_GENERATED)] = float("-inf")
    return bias


def _scores(log_probs: Tensor, histories: list[list[int]], settings: DecodingSettings) -> Tensor:
    """Log-probs with impossible choices set to -inf."""
    scores = log_probs + _never_generated(log_probs.size(-1), log_probs.device)
    for row, history in enumerate(histories):
        if len(history) < settings.min_length:
            scores[row, EOS_ID] = float("-inf")
        banned = banned_by_ngrams(history, settings.no_repeat_ngram)
        if banned:
            scores[row, banned] = float("-inf")
    return scores


Step = Callable[[Tensor, DecoderState], tuple[Tensor, DecoderState]]


class _StepWithTensors(nn.Module):
    """`model.step` with the state as positional tensors, the form `torch.jit.trace` records."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, tokens: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
        logits, state = self.model.step(tokens, dict(zip(self.names, values, strict=True)))
        return (logits, *(state[name] for name in self.names))


# model -> {(state names, batch rows, dtype): traced step}; traces share the model's
# parameters, so training and load_state_dict reach them; a model that is gone takes its traces along.
_TRACED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stepper(model: EncoderDecoder, tokens: Tensor, state: DecoderState) -> Step:
    """The decoding step to call: on a CPU, a TorchScript trace of `model.step`.

    A step runs a few dozen small operations; on a CPU the Python between them costs a good
    part of the time, and the trace runs them without it (benchmarks/decoding_latency.py
    times both). A trace replays the operations of its first call, so only models that declare
    `traceable_step` (same state tensors at every step, no Python value read from them)
    are traced; CUDA and models in training mode keep the eager step.
    """
    if not getattr(model, "traceable_step", False) or model.training or tokens.device.type != "cpu":
        return model.step
    names = tuple(state)
    first = next(iter(state.values()))
    key = (names, tokens.size(0), first.dtype)  # always on the CPU
    traces = _TRACED_STEPS.setdefault(model, {})
    if key not in traces:
        wrapped = _StepWithTensors(model, names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice; torch.compile takes minutes here
            traces[key] = torch.jit.trace(wrapped, (tokens, *state.values()), check_trace=False)
    traced = traces[key]

    def step(step_tokens: Tensor, step_state: DecoderState) -> tuple[Tensor, DecoderState]:
        logits, *values = traced(step_tokens, *(step_state[name] for name in names))
        return logits, dict(zip(names, values, strict=True))

    return step


def _reorder(state: DecoderState, rows: Tensor) -> DecoderState:
    return {name: tensor.index_select(0, rows) for name, tensor in state.items()}


@torch.inference_mode()
def decode(model: EncoderDecoder, source: Tensor, source_mask: Tensor,
           settings: DecodingSettings | None = None, trace: bool = True,
           to_text: Callable[[list[int]], str] | None = None,
           neighbour_answers: Sequence[Sequence[str]] | None = None) -> list[Hypothesis]:
    """The best hypothesis for each row of `source`; `trace=False` keeps the eager step (see `stepper`).
    `to_text` (token ids to text) is what `mbr` compares replies by, and `neighbour_answers[row]`
    what else it likens them to."""
    settings = settings or DecodingSettings()
    if settings.strategy == "beam":
        return _beam_search(model, source, source_mask, settings, trace)
    if settings.strategy == "mbr":
        if to_text is None:
            raise ValueError("mbr decoding compares texts: pass to_text")
        return _minimum_bayes_risk(model, source, source_mask, settings, trace, to_text,
                                   neighbour_answers or [()] * source.size(0))
    return _greedy_or_sample(model, source, source_mask, settings, trace)


def _minimum_bayes_risk(model: EncoderDecoder, source: Tensor, source_mask: Tensor, settings: DecodingSettings,
                        trace: bool, to_text: Callable[[list[int]], str],
                        neighbour_answers: Sequence[Sequence[str]]) -> list[Hypothesis]:
    """For each row, the beam's best and `samples` sampled replies compete; the one with the
    highest mean chrF against the rest (and the row's neighbour answers, real answers to similar
    questions) wins. The beam alone says each kind of answer in its likeliest wording; the
    consensus keeps the answer and more of the question's own details (docs/generation.md)."""
    beams = _beam_search(model, source, source_mask, replace(settings, strategy="beam"), trace)
    rows = torch.arange(source.size(0), device=source.device).repeat_interleave(settings.samples)
    drawn = _greedy_or_sample(model, source.index_select(0, rows), source_mask.index_select(0, rows),
                              replace(settings, strategy="sample"), trace)
    chosen = []
    for row, best in enumerate(beams):
        pool = [best, *drawn[row * settings.samples : (row + 1) * settings.samples]]
        chosen.append(pool[consensus_index([to_text(h.tokens) for h in pool], neighbour_answers[row])])
    return chosen


def decode_with_attention(model: nn.Module, source: Tensor, source_mask: Tensor,
                          settings: DecodingSettings | None = None) -> tuple[Hypothesis, Tensor]:
    """Greedy decoding of one source ([1, steps]) and what each step attended to: weights
    [decoding steps, source steps], averaged over the model's `source_attentions()` (the
    seq2seq's attention; the transformer's cross-attention, over heads and layers). Runs the
    eager step, since a traced one would not record."""
    modules = model.source_attentions()
    for module in modules:
        module.record = []
    try:
        [hypothesis] = decode(model, source, source_mask, replace(settings or DecodingSettings(), strategy="greedy"),
                              trace=False)
        # without a key/value cache a step re-reads the whole prefix: its last row is the new token's
        steps = [torch.stack([module.record[step][0, -1] for module in modules]).mean(0)
                 for step in range(len(modules[0].record))]
    finally:
        for module in modules:
            module.record = None
    return hypothesis, torch.stack(steps) if steps else source.new_zeros((0, source.size(1)), dtype=torch.float)


def _sample_from(scores: Tensor, settings: DecodingSettings, generator: torch.Generator | None) -> Tensor:
    scores = scores / max(settings.temperature, 1e-5)
    if settings.top_k > 0:
        kth = scores.topk(min(settings.top_k, scores.size(-1)), dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if settings.top_p < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        # keep a token while the probability before it is below top_p (the first always stays)
        drop = (cumulative - ordered.softmax(-1)) >= settings.top_p
        scores = scores.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)


def _greedy_or_sample(model: EncoderDecoder, source: Tensor, source_mask: Tensor,
                      settings: DecodingSettings, trace: bool) -> list[Hypothesis]:
    batch = source.size(0)
    generator = None
    if settings.strategy == "sample" and settings.seed is not None:
        generator = torch.Generator(device=source.device).manual_seed(settings.seed)
    state = model.start(source, source_mask)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=source.device)
    histories: list[list[int]] = [[] for _ in range(batch)]
    log_prob_sums = [0.0] * batch
    done = [False] * batch
    step = stepper(model, tokens, state) if trace else model.step
    for _ in range(settings.max_length):
        logits, state = step(tokens, state)
        log_probs = logits.float().log_softmax(-1)
        scores = _scores(log_probs, histories, settings)
        if settings.strategy == "sample":
            tokens = _sample_from(scores, settings, generator)
        else:
            tokens = scores.argmax(-1)
        chosen = log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1).tolist()
        for row, token in enumerate(tokens.tolist()):
            if done[row]:
                continue
            log_prob_sums[row] += chosen[row]
            if token == EOS_ID:
                done[row] = True
            else:
                histories[row].append(token)
        if all(done):
            break
    # a row that reached max_length has no </s> to count
    return [Hypothesis(history, log_prob_sums[row] / max(len(history) + done[row], 1), done[row])
            for row, history in enumerate(histories)]


def _beam_search(model: EncoderDecoder, source: Tensor, source_mask: Tensor,
                 settings: DecodingSettings, trace: bool) -> list[Hypothesis]:
    batch, width = source.size(0), settings.beam_width
    rows = torch.arange(batch, device=source.device).repeat_interleave(width)
    state = model.start(source.index_select(0, rows), source_mask.index_select(0, rows))
    tokens = torch.full((batch * width,), BOS_ID, dtype=torch.long, device=source.device)
    # Only the first beam of each example is live at the start, so the first step
    # does not pick the same token `width` times.
    beam_scores = torch.full((batch, width), float("-inf"), device=source.device)
    beam_scores[:, 0] = 0.0
    histories: list[list[int]] = [[] for _ in range(batch * width)]
    log_prob_sums = [0.0] * (batch * width)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    step = stepper(model, tokens, state) if trace else model.step
    for _ in range(settings.max_length):
        logits, state = step(tokens, state)
        log_probs = logits.float().log_softmax(-1)
        scores = _scores(log_probs, histories, settings)
        vocab = scores.size(-1)
        candidates = (beam_scores.view(-1, 1) + scores).view(batch, width * vocab)
        top_scores, top_indices = candidates.topk(2 * width, dim=-1)
        top_log_probs = log_probs.view(batch, width * vocab).gather(1, top_indices).tolist()
        next_rows, next_tokens, next_scores = [], [], []
        next_histories, next_sums = [], []
        for example in range(batch):
            kept = 0
            ranked = zip(top_scores[example].tolist(), top_indices[example].tolist(), top_log_probs[example],
                         strict=True)
            for rank, (score, index, log_prob) in enumerate(ranked):
                if kept == width or score == float("-inf") or len(finished[example]) >= width:
                    break
                row, token = example * width + index // vocab, index % vocab
                total = log_prob_sums[row] + log_prob
                if token == EOS_ID:
                    # a finished hypothesis counts only if it ranks among the top `width`
                    if rank < width:
                        length = len(histories[row]) + 1
                        finished[example].append(Hypothesis(
                            list(histories[row]), total / length, True, score / length**settings.length_penalty))
                    continue
                next_rows.append(row)
                next_tokens.append(token)
                next_scores.append(score)
                next_histories.append([*histories[row], token])
                next_sums.append(total)
                kept += 1
            while kept < width:  # a done example keeps dead beams so the tensors keep their shape
                next_rows.append(example * width)
                next_tokens.append(PAD_ID)
                next_scores.append(float("-inf"))
                next_histories.append(list(histories[example * width]))
                next_sums.append(0.0)
                kept += 1
        if all(len(hypotheses) >= width for hypotheses in finished):
            break
        index = torch.tensor(next_rows, device=source.device)
        state = _reorder(state, index)
        tokens = torch.tensor(next_tokens, device=source.device)
        beam_scores = torch.tensor(next_scores, device=source.device).view(batch, width)
        histories, log_prob_sums = next_histories, next_sums
    best = []
    for example in range(batch):
        hypotheses = finished[example]
        if len(hypotheses) < width:  # max_length reached: live beams compete as they are
            for beam in range(width):
                row = example * width + beam
                score = beam_scores[example, beam].item()
                if score > float("-inf"):
                    length = max(len(histories[row]), 1)
                    hypotheses.append(Hypothesis(list(histories[row]), log_prob_sums[row] / length, False,
                                                 score / length**settings.length_penalty))
        best.append(max(hypotheses, key=lambda h: h.score))
    return best
