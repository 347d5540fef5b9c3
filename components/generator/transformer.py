"""Transformer encoder-decoder with pre-LayerNorm blocks and tied embeddings.

Decoding can keep each layer's keys and values (`use_cache`), so a step costs one
position instead of the whole prefix; without the cache every step re-reads the prefix,
which gives the same tokens and is kept to check the cache against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from components.generator.tokenizer import PAD_ID

DecoderState = dict[str, Tensor]  # every tensor has the batch first, so beams reorder with index_select


@dataclass
class TransformerConfig:
    vocab_size: int = 8000
    d_model: int = 256
    heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    feedforward: int = 1024
    dropout: float = 0.1
    max_positions: int = 512
    use_cache: bool = True  # keep keys/values while decoding
    tie_embeddings: bool = True  # the output layer is the token embedding (False: a layer of its own)

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"transformer d_model {self.d_model} must be a multiple of heads {self.heads}")


class MultiHeadAttention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.heads, self.dropout = config.heads, config.dropout
        self.query = nn.Linear(config.d_model, config.d_model)
        self.key_value = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.record: list[Tensor] | None = None  # a list: each call's weights go in (decoding.decode_with_attention)

    def split_heads(self, x: Tensor) -> Tensor:
        batch, steps, width = x.shape
        return x.view(batch, steps, self.heads, width // self.heads).transpose(1, 2)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        keys, values = self.key_value(x).chunk(2, dim=-1)
        return self.split_heads(keys), self.split_heads(values)

    def forward(self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None,
                causal: bool = False) -> Tensor:
        queries = self.split_heads(self.query(x))
        if self.record is not None:
            # the same attention by hand, since the fused kernel does not return its weights
            scores = queries @ keys.transpose(-2, -1) / keys.size(-1) ** 0.5
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
            weights = torch.softmax(scores, dim=-1)
            self.record.append(weights.mean(1).detach())  # averaged over heads: [batch, steps, source]
            attended = weights @ values
        else:
            attended = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask,
                                                      dropout_p=self.dropout if self.training else 0.0,
                                                      is_causal=causal)
        return self.out(attended.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.d_model, config.feedforward)
        self.down = nn.Linear(config.feedforward, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        # the tanh form: the exact (erf) GELU costs ten times more per decoding step on a CPU
        return self.down(self.dropout(F.gelu(self.up(x), approximate="tanh")))


class EncoderBlock(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.d_model)
        self.attention = MultiHeadAttention(config)
        self.feedforward_norm = nn.LayerNorm(config.d_model)
        self.feedforward = FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        normed = self.attention_norm(x)
        x = x + self.dropout(self.attention(normed, *self.attention.keys_values(normed), mask=mask))
        return x + self.dropout(self.feedforward(self.feedforward_norm(x)))


class DecoderBlock(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.self_attention_norm = nn.LayerNorm(config.d_model)
        self.self_attention = MultiHeadAttention(config)
        self.cross_attention_norm = nn.LayerNorm(config.d_model)
        self.cross_attention = MultiHeadAttention(config)
        self.feedforward_norm = nn.LayerNorm(config.d_model)
        self.feedforward = FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, memory_keys: Tensor, memory_values: Tensor, memory_mask: Tensor,
                past: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """With `past` (keys, values of earlier positions), `x` holds one new position, which
        may attend to everything before it: no mask needed."""
        normed = self.self_attention_norm(x)
        keys, values = self.self_attention.keys_values(normed)
        if past is not None:
            keys, values = torch.cat([past[0], keys], dim=2), torch.cat([past[1], values], dim=2)
        x = x + self.dropout(self.self_attention(normed, keys, values, causal=past is None))
        x = x + self.dropout(self.cross_attention(self.cross_attention_norm(x), memory_keys, memory_values,
                                                  mask=memory_mask))
        return x + self.dropout(self.feedforward(self.feedforward_norm(x))), (keys, values)


class Transformer(nn.Module):
    architecture = "transformer"

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model, padding_idx=PAD_ID)
        self.positions = nn.Embedding(config.max_positions, config.d_model)
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.encoder_layers))
        self.encoder_norm = nn.LayerNorm(config.d_model)
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.decoder_layers))
        self.decoder_norm = nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.output = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()

    @property
    def traceable_step(self) -> bool:
        """With the cache, the state holds the same tensors at every step (decoding.stepper);
        without it, the prefix grows."""
        return self.config.use_cache

    def source_attentions(self) -> list[MultiHeadAttention]:
        """Each decoder layer's cross-attention over the source, whose weights `record` keeps."""
        return [block.cross_attention for block in self.decoder]

    def _init_weights(self, module: nn.Module) -> None:
        # Small, unscaled embeddings: with tied output weights, large ones make the
        # untrained model predict the token it was just fed.
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _embed(self, tokens: Tensor) -> Tensor:
        """Token plus position embeddings of a whole sequence, from position 0."""
        steps = tokens.size(1)
        if steps <= self.config.max_positions:
            positions = self.positions.weight[:steps]
        else:
            index = torch.arange(steps, device=tokens.device).clamp(max=self.config.max_positions - 1)
            positions = self.positions(index)
        return self.dropout(self.embedding(tokens) + positions)

    def start(self, source: Tensor, source_mask: Tensor) -> DecoderState:
        """Encode the source, and precompute each decoder layer's keys and values over it.

        The state has the same tensors at every step (the key/value cache starts empty, the
        position is a tensor), so a step has no Python branches and can be traced."""
        attention_mask = source_mask[:, None, None, :]
        x = self._embed(source)
        for block in self.encoder:
            x = block(x, attention_mask)
        memory = self.encoder_norm(x)
        # An additive mask, built once rather than converted from booleans at every step.
        memory_bias = torch.zeros(attention_mask.shape, dtype=memory.dtype, device=memory.device)
        state: DecoderState = {"memory_mask": memory_bias.masked_fill(~attention_mask, float("-inf"))}
        for layer, block in enumerate(self.decoder):
            state[f"memory_keys_{layer}"], state[f"memory_values_{layer}"] = block.cross_attention.keys_values(memory)
        batch = source.size(0)
        if self.config.use_cache:
            empty = memory.new_zeros((batch, self.config.heads, 0, self.config.d_model // self.config.heads))
            for layer in range(len(self.decoder)):
                state[f"keys_{layer}"], state[f"values_{layer}"] = empty, empty
            state["position"] = source.new_zeros(batch)
        else:
            state["tokens"] = source.new_zeros((batch, 0))
        return state

    def _run_decoder(self, tokens: Tensor, state: DecoderState) -> Tensor:
        """Logits for every position of `tokens`, which start at position 0 (no cache)."""
        x = self._embed(tokens)
        for layer, block in enumerate(self.decoder):
            x, _ = block(x, state[f"memory_keys_{layer}"], state[f"memory_values_{layer}"], state["memory_mask"])
        return self._logits(self.decoder_norm(x))

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Logits [batch, vocab] for the next token after `tokens` [batch]."""
        if not self.config.use_cache:
            prefix = torch.cat([state["tokens"], tokens.unsqueeze(1)], dim=1)
            return self._run_decoder(prefix, state)[:, -1], {**state, "tokens": prefix}
        position = state["position"]
        positions = self.positions(position.clamp(max=self.config.max_positions - 1))
        x = self.dropout(self.embedding(tokens) + positions).unsqueeze(1)
        new_state = {**state, "position": position + 1}
        for layer, block in enumerate(self.decoder):
            x, (new_state[f"keys_{layer}"], new_state[f"values_{layer}"]) = block(
                x, state[f"memory_keys_{layer}"], state[f"memory_values_{layer}"], state["memory_mask"],
                (state[f"keys_{layer}"], state[f"values_{layer}"]))
        return self._logits(self.decoder_norm(x[:, 0])), new_state

    def _logits(self, hidden: Tensor) -> Tensor:
        return F.linear(hidden, self.embedding.weight) if self.output is None else self.output(hidden)

    def forward(self, source: Tensor, source_mask: Tensor, target_input: Tensor) -> Tensor:
        """Logits [batch, target steps, vocab] with the reference fed at every step."""
        return self._run_decoder(target_input, self.start(source, source_mask))
