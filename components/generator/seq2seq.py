"""Seq2Seq: a bidirectional GRU encoder and a GRU decoder with attention.

One embedding table serves the encoder input, the decoder input and the output layer
(tied weights). The decoder runs over the whole target at once in training (teacher
forcing), or token by token with `step` when decoding or when `teacher_forcing` < 1.

With `copy_attention` (a pointer-generator) each step mixes the vocabulary distribution with
the attention over the source, spread onto the source's tokens, by a learnt gate, so words of
the source (and of retrieved answers in it) can be copied. The model then returns
log-probabilities, which cross-entropy and decoding take as they take logits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from components.generator.copy_attention import copy_mixture
from components.generator.tokenizer import PAD_ID

DecoderState = dict[str, Tensor]  # every tensor has the batch first, so beams reorder with index_select


@dataclass
class Seq2SeqConfig:
    vocab_size: int = 8000
    embedding_dim: int = 256
    hidden_size: int = 256  # encoder: half per direction
    layers: int = 1  # GRU layers in the encoder and in the decoder
    dropout: float = 0.1
    attention: str = "luong"  # luong (multiplicative) | bahdanau (additive)
    teacher_forcing: float = 1.0  # chance of feeding the reference token in training; < 1 is slower
    copy_attention: bool = False  # pointer-generator: copy source tokens through the attention

    def __post_init__(self) -> None:
        if self.attention not in ("luong", "bahdanau"):
            raise ValueError(f'seq2seq attention must be "luong" or "bahdanau", not {self.attention!r}')
        if self.hidden_size % 2:
            raise ValueError(f"seq2seq hidden_size must be even (half per encoder direction), not {self.hidden_size}")


class Attention(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        size = config.hidden_size
        self.kind = config.attention
        self.query = nn.Linear(size, size, bias=False)
        self.record: list[Tensor] | None = None  # a list: each call's weights go in (decoding.decode_with_attention)
        if self.kind == "bahdanau":
            self.key = nn.Linear(size, size)
            self.energy = nn.Linear(size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """The encoder states as attention keys, computed once per source rather than per step.
        Luong's score q·W·m equals q·(mᵀW)ᵀ, so W moves onto the memory."""
        return memory @ self.query.weight if self.kind == "luong" else self.key(memory)

    def forward(self, queries: Tensor, keys: Tensor, memory: Tensor, memory_bias: Tensor) -> Tensor:
        """Context vectors [batch, steps, hidden] for decoder states [batch, steps, hidden];
        `keys` from `self.keys(memory)`; `memory_bias` [batch, 1, source steps] is 0 on real
        tokens and -inf on padding."""
        return self.weights(queries, keys, memory_bias) @ memory

    def weights(self, queries: Tensor, keys: Tensor, memory_bias: Tensor) -> Tensor:
        """Attention weights [batch, steps, source steps]."""
        if self.kind == "luong":
            scores = queries @ keys.transpose(1, 2)
        else:
            mixed = self.query(queries).unsqueeze(2) + keys.unsqueeze(1)
            scores = self.energy(torch.tanh(mixed)).squeeze(-1)
        weights = torch.softmax(scores + memory_bias, dim=-1)
        if self.record is not None:
            self.record.append(weights.detach())
        return weights


class Seq2Seq(nn.Module):
    architecture = "seq2seq"
    traceable_step = True  # the state holds the same tensors at every step (decoding.stepper)

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        hidden, layers = config.hidden_size, config.layers
        between_layers = config.dropout if layers > 1 else 0.0
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.encoder = nn.GRU(config.embedding_dim, hidden // 2, layers, batch_first=True,
                              bidirectional=True, dropout=between_layers)
        self.decoder = nn.GRU(config.embedding_dim, hidden, layers, batch_first=True, dropout=between_layers)
        self.attention = Attention(config)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.to_embedding = nn.Linear(hidden, config.embedding_dim)
        self.dropout = nn.Dropout(config.dropout)
        # P(generate from the vocabulary) at each step, from the decoder state and its context
        self.copy_gate = nn.Linear(2 * hidden, 1) if config.copy_attention else None
        nn.init.normal_(self.embedding.weight, std=config.embedding_dim**-0.5)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()

    def source_attentions(self) -> list[Attention]:
        """The attention over the source, whose weights `record` keeps."""
        return [self.attention]

    def start(self, source: Tensor, source_mask: Tensor) -> DecoderState:
        """Encode the source; the state the decoder starts from."""
        lengths = source_mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(self.embedding(source)), lengths,
                                                   batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=source.size(1))
        # final: [layers * 2, batch, hidden/2] -> [batch, layers, hidden], both directions side by side
        final = final.view(self.config.layers, 2, source.size(0), -1).permute(2, 0, 1, 3).flatten(2)
        # computed once here rather than at every decoding step
        memory_bias = torch.zeros(source_mask.shape, dtype=memory.dtype, device=memory.device)
        memory_bias = memory_bias.masked_fill(~source_mask, float("-inf")).unsqueeze(1)
        state = {"hidden": final, "memory": memory, "keys": self.attention.keys(memory), "memory_bias": memory_bias}
        if self.copy_gate is not None:  # only the copy needs the source ids at each step
            state["source"] = source
        return state

    def _output(self, states: Tensor, state: DecoderState) -> Tensor:
        weights = self.attention.weights(states, state["keys"], state["memory_bias"])
        context = weights @ state["memory"]
        both = torch.cat([states, context], dim=-1)
        logits = F.linear(self.to_embedding(self.dropout(torch.tanh(self.combine(both)))), self.embedding.weight)
        if self.copy_gate is None:
            return logits
        return copy_mixture(logits, weights, state["source"], torch.sigmoid(self.copy_gate(both)))

    def _run_decoder(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        hidden = state["hidden"].transpose(0, 1).contiguous()
        states, hidden = self.decoder(self.dropout(self.embedding(tokens)), hidden)
        return self._output(states, state), {**state, "hidden": hidden.transpose(0, 1)}

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Logits [batch, vocab] for the next token after `tokens` [batch].

        One GRU cell per layer on the decoder's own weights: for a single step `nn.GRU`
        spends more time on its setup than on the arithmetic."""
        inputs, hidden = self.dropout(self.embedding(tokens)), []
        for layer in range(self.config.layers):
            if layer:
                inputs = F.dropout(inputs, self.decoder.dropout, self.training)
            inputs = torch.gru_cell(inputs, state["hidden"][:, layer],
                                    *(getattr(self.decoder, f"{name}_l{layer}")
                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
            hidden.append(inputs)
        logits = self._output(inputs.unsqueeze(1), state).squeeze(1)
        return logits, {**state, "hidden": torch.stack(hidden, dim=1)}

    def forward(self, source: Tensor, source_mask: Tensor, target_input: Tensor) -> Tensor:
        """Logits [batch, target steps, vocab], each step fed the reference previous token,
        or (with probability 1 - teacher_forcing, in training) the model's own guess."""
        state = self.start(source, source_mask)
        if not self.training or self.config.teacher_forcing >= 1.0:
            return self._run_decoder(target_input, state)[0]
        steps, token = [], target_input[:, 0]
        for position in range(target_input.size(1)):
            logits, state = self.step(token, state)
            steps.append(logits)
            if position + 1 < target_input.size(1):
                use_reference = random.random() < self.config.teacher_forcing
                token = target_input[:, position + 1] if use_reference else logits.argmax(-1)
        return torch.stack(steps, dim=1)
