"""A plain-torch BERT encoder that reads and writes transformers' BERT checkpoints.

Linking one sentence spent ~2 s importing transformers' modelling stack (torch.distributed, scipy,
loss functions) to build a six-layer encoder. `BertEncoder` is that encoder in ~100 lines with the
same parameter names, so a checkpoint loads without key mapping, `save_pretrained` writes what
`transformers.AutoModel` reads, and a model's fingerprint (a hash of its state dict) is unchanged.
`load_encoder` uses it for `model_type: bert` checkpoints with absolute positions and GELU, and
`transformers.AutoModel` for every other family.

    >>> encoder = load_encoder("runs/linker/context_encoder")
    >>> encoder(input_ids=ids, attention_mask=mask).last_hidden_state   # [B, L, hidden]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
# transformers' BertConfig defaults, for checkpoints whose config.json leaves them out.
DEFAULTS = {
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor


# Parameters are allocated, not initialised: every encoder is built to receive a checkpoint's weights
# (initialising 10M+ values twice per encoder cost more than loading them).
def _empty(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape))


class _Linear(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.weight, self.bias = _empty(outputs, inputs), _empty(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.linear(x, self.weight, self.bias)


class _LayerNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = _empty(size), _empty(size), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class _Embedding(nn.Module):
    def __init__(self, rows: int, size: int) -> None:
        super().__init__()
        self.weight = _empty(rows, size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return functional.embedding(ids, self.weight)


class _Embeddings(nn.Module):
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = _Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = _Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = _Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = _LayerNorm(c.hidden_size, c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x + self.token_type_embeddings.weight[0]))


class _DenseNorm(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual): BERT's `*.output` blocks."""

    def __init__(self, c: SimpleNamespace, inputs: int) -> None:
        super().__init__()
        self.dense = _Linear(inputs, c.hidden_size)
        self.LayerNorm = _LayerNorm(c.hidden_size, c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _SelfAttention(nn.Module):
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.heads, self.dropout = c.num_attention_heads, c.attention_probs_dropout_prob
        self.query, self.key, self.value = (_Linear(c.hidden_size, c.hidden_size) for _ in range(3))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (
            p(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)
            for p in (self.query, self.key, self.value)
        )
        out = functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return out.transpose(1, 2).reshape(b, n, d)


class _Attention(nn.Module):
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _DenseNorm(c, c.hidden_size)


class _Intermediate(nn.Module):
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.dense = _Linear(c.hidden_size, c.intermediate_size)


class _Layer(nn.Module):
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c, c.intermediate_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, mask), x)
        return self.output(functional.gelu(self.intermediate.dense(x)), x)


class _Encoder(nn.Module):
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))


class _Pooler(nn.Module):  # kept only so checkpoints round-trip with the same keys
    def __init__(self, c: SimpleNamespace) -> None:
        super().__init__()
        self.dense = _Linear(c.hidden_size, c.hidden_size)


class BertEncoder(nn.Module):
    """BERT's encoder stack (token type 0 everywhere); parameter names as in transformers' BertModel."""

    def __init__(self, config: dict[str, Any], pooler: bool = True) -> None:
        """Weights uninitialised: use `from_pretrained`."""
        super().__init__()
        self.config_dict = dict(config)
        self.config = c = SimpleNamespace(**{**DEFAULTS, **config})
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)
        self.pooler = _Pooler(c) if pooler else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        x = self.embeddings(input_ids)
        mask = attention_mask[:, None, None, :].bool()  # [B, 1, 1, L]: True = a key to attend to
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return EncoderOutput(x)

    @classmethod
    def from_pretrained(cls, path: str) -> BertEncoder:
        with open(os.path.join(path, CONFIG), encoding="utf-8") as f:
            config = json.load(f)
        state = load_file(os.path.join(path, WEIGHTS))
        state = {_modern_name(k.removeprefix("bert.")): v for k, v in state.items()}
        encoder = cls(config, pooler=any(k.startswith("pooler.") for k in state))
        names = set(encoder.state_dict())
        encoder.load_state_dict({k: v for k, v in state.items() if k in names}, strict=True)
        return encoder.eval()  # as transformers' from_pretrained leaves it

    def save_pretrained(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, CONFIG), "w", encoding="utf-8") as f:
            json.dump({**self.config_dict, "architectures": ["BertModel"]}, f, indent=2, sort_keys=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(weights, os.path.join(path, WEIGHTS))


def _modern_name(key: str) -> str:
    """Original BERT checkpoints name LayerNorm parameters gamma/beta (transformers renames them too)."""
    if key.endswith("LayerNorm.gamma"):
        return key.removesuffix("gamma") + "weight"
    if key.endswith("LayerNorm.beta"):
        return key.removesuffix("beta") + "bias"
    return key


def supported(config: dict[str, Any]) -> bool:
    """Whether `BertEncoder` computes exactly what transformers would for this checkpoint config."""
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act", "gelu") == "gelu"
        and not config.get("is_decoder", False)
    )


def load_encoder(path: str) -> nn.Module:
    """The encoder saved at `path`: `BertEncoder` when it supports the checkpoint, else AutoModel."""
    config_path = os.path.join(path, CONFIG)
    if os.path.exists(config_path) and os.path.exists(os.path.join(path, WEIGHTS)):
        with open(config_path, encoding="utf-8") as f:
            if supported(json.load(f)):
                try:
                    return BertEncoder.from_pretrained(path)
                except RuntimeError:  # weights under names it does not know: transformers maps them
                    pass
    from transformers import AutoModel

    return AutoModel.from_pretrained(path, use_safetensors=True)
