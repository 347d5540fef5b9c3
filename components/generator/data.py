"""From corpus records to padded tensors: source = last context turns + question (+ retrieved
answers), target = answer."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from components.generator.tokenizer import BOS_ID, EOS_ID, PAD_ID, SEP_ID, SubwordTokenizer

SPLITS = ("train", "valid", "test")


class CorpusFolderError(ValueError):
    """A corpus folder without usable train/valid/test splits."""


@dataclass(frozen=True)
class Dialogue:
    question: str
    answer: str
    context: tuple[str, ...] = ()
    intent: str | None = None
    lang: str | None = None


def read_split(folder: Path, split: str) -> list[Dialogue]:
    """One split written by `kefu corpus build` (DIR/{train,valid,test}.jsonl)."""
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise CorpusFolderError(f"{path}: no such file; build the corpus first with "
                                f"`kefu corpus build INPUT --out {folder}`")
    dialogues = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                dialogues.append(Dialogue(row["question"], row["answer"], tuple(row.get("context") or ()),
                                          row.get("intent"), row.get("lang")))
            except (ValueError, KeyError, TypeError) as error:
                raise CorpusFolderError(f"{path} line {number}: not a corpus record ({error})") from error
    answered = [d for d in dialogues if d.answer.strip()]
    if not answered:
        raise CorpusFolderError(f"{path}: the {split} split has no question-answer pairs; "
                                "a generator needs answers to learn from")
    return answered


def encode_source(tokenizer: SubwordTokenizer, question: str, context: Sequence[str], context_turns: int,
                  max_tokens: int, evidence: Sequence[str] = (), max_evidence_tokens: int = 48) -> list[int]:
    """`turn <sep> turn <sep> question`, cut from the left so the question survives; then
    `<sep> answer` for each retrieved answer in `evidence` (each cut to `max_evidence_tokens`),
    the question keeping at least half of `max_tokens`."""
    turns = [*list(context)[-context_turns:], question] if context_turns else [question]
    ids: list[int] = []
    for turn in turns:
        if ids:
            ids.append(SEP_ID)
        ids.extend(tokenizer.encode(turn))
    if not evidence:
        return ids[-max_tokens:] or [SEP_ID]
    retrieved: list[int] = []
    for answer in evidence:
        retrieved += [SEP_ID, *tokenizer.encode(answer)[:max_evidence_tokens]]
    question_ids = ids[-max(max_tokens - len(retrieved), max_tokens // 2):] or [SEP_ID]
    return (question_ids + retrieved)[:max_tokens]


def encode_target(tokenizer: SubwordTokenizer, answer: str, max_tokens: int) -> list[int]:
    """`<s> answer </s>`; an answer over the limit is cut and keeps no `</s>`."""
    ids = tokenizer.encode(answer)
    return [BOS_ID, *ids[:max_tokens], *([EOS_ID] if len(ids) <= max_tokens else [])]


@dataclass
class Example:
    source: list[int]
    target: list[int]


def encode_dialogues(dialogues: Sequence[Dialogue], tokenizer: SubwordTokenizer, context_turns: int,
                     max_source_tokens: int, max_target_tokens: int,
                     evidence: Sequence[Sequence[str]] | None = None, max_evidence_tokens: int = 48) -> list[Example]:
    """`evidence[i]`: the retrieved answers put after dialogue i's question (none by default)."""
    evidence = evidence or [()] * len(dialogues)
    return [Example(encode_source(tokenizer, d.question, d.context, context_turns, max_source_tokens, found,
                                  max_evidence_tokens),
                    encode_target(tokenizer, d.answer, max_target_tokens))
            for d, found in zip(dialogues, evidence, strict=True)]


def pad(rows: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Padded ids [batch, longest] and the mask of real tokens."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids, ids != PAD_ID


@dataclass
class Batch:
    source: Tensor
    source_mask: Tensor
    target_input: Tensor  # <s> a b c
    target_output: Tensor  # a b c </s>

    @property
    def target_tokens(self) -> int:
        return int((self.target_output != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device) for t in (self.source, self.source_mask, self.target_input, self.target_output)))


def collate(examples: Sequence[Example]) -> Batch:
    source, source_mask = pad([e.source for e in examples])
    target, _ = pad([e.target for e in examples])
    return Batch(source, source_mask, target[:, :-1], target[:, 1:])


def length_bucketed_batches(examples: Sequence[Example], max_examples: int, max_tokens: int,
                            rng: random.Random | None = None) -> Iterator[Batch]:
    """Batches of examples of similar length, so little of each batch is padding.

    Examples are sorted by length (with a little noise, so batches differ between epochs
    when `rng` is given), cut into batches of at most `max_examples` and about `max_tokens`
    padded tokens, and the batches are shuffled."""
    def size(index: int) -> float:
        example = examples[index]
        noise = rng.random() if rng else 0.0
        return max(len(example.source), len(example.target)) + noise

    order = sorted(range(len(examples)), key=size)
    batches, current, longest = [], [], 0
    for index in order:
        length = max(len(examples[index].source), len(examples[index].target))
        if current and (len(current) >= max_examples or max(longest, length) * (len(current) + 1) > max_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    if rng:
        rng.shuffle(batches)
    for indices in batches:
        yield collate([examples[i] for i in indices])
