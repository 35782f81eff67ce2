"""`TrainConfig`: the options of one training run, their validation and the job fingerprint.

A config is saved with every checkpoint; `job_fingerprint` decides whether a checkpoint may be
resumed by another run (`elcore.checkpoint`).

    >>> TrainConfig.from_dict({"train_data": "train.jsonl", "catalogue": "e.jsonl", "output_dir": "out"}).epochs
    3
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import fs
from .errors import ConfigError
from .model import ElqConfig

AMP_MODES = ("none", "bf16", "fp16")
SELECT_BY = ("weak_f1", "strong_f1", "entity_f1")
# Fields that define the job: a checkpoint written with other values is not resumed
# (`elcore.checkpoint.load_checkpoint`).
JOB_FIELDS = (
    "train_data",
    "catalogue",
    "base_model",
    "init_model",
    "model",
    "freeze_entities",
    "hard_negatives",
    "batch_size",
    "grad_accumulation",
    "seed",
    "max_train_examples",
)


@dataclass
class TrainConfig:
    """Everything one training run needs; saved with every checkpoint.

    Attributes:
        train_data / dev_data: jsonl files (kit / ELQ format), local or fsspec URLs.
        catalogue: the entity catalogue linked against.
        output_dir: `best/` (the model with the best dev F1 and its tuned threshold),
            `checkpoints/` (single process; Ray keeps them under its storage path), `metrics.jsonl`,
            `summary.json`.
        base_model: encoder checkpoint for a fresh model (`minilm` = the shipped MiniLM).
        init_model: continue from a saved elq model instead (fine-tuning).
        model: ElqConfig overrides (max_context_length, entity_pooling, ...).
        freeze_entities: keep the entity encoder and its vectors fixed; train the question side.
        hard_negatives: negatives per gold mention mined from the entity index at each epoch start.
        eval_every_steps / checkpoint_every_steps: 0 = once per epoch (at its end). Every evaluation
            also writes a checkpoint.
        keep_checkpoints: checkpoints kept (the latest always; under Ray the best by dev score too).
        select_by: dev metric that picks the best checkpoint and the threshold.
        dev_catalogue_sample: 0 = link the dev sets against the whole catalogue. N > 0 = against
            the dev gold entities plus N random others, so a trainable entity encoder need not
            re-encode the whole catalogue at every evaluation. Scores are then optimistic (fewer
            distractors); `final_full_eval` re-scores the best model on the whole catalogue.
        final_full_eval: with `dev_catalogue_sample`, evaluate the best model on the whole
            catalogue at the end and store that sweep's threshold in `best/`.
        amp: `bf16` (GPU or CPU) or `fp16` (GPU, with a gradient scaler).
        hybrid: after training, fit the hybrid linker (`elcore.hybrid.HybridConfig` fields:
            `prior_data`, `head_data`, `anchor_counts`, `fusion`, `cased_copies`, `epochs`, `seed`) and
            write it to `output_dir/linker`;
            empty = no hybrid stage.
        recipe: the named recipe these values came from (`elcore.recipes`); checked by it.
    """

    train_data: list[str]
    catalogue: str
    output_dir: str
    dev_data: list[str] = field(default_factory=list)
    base_model: str = "minilm"
    init_model: str | None = None
    model: dict = field(default_factory=dict)
    freeze_entities: bool = False
    hard_negatives: int = 0
    epochs: int = 3
    batch_size: int = 16
    grad_accumulation: int = 1
    learning_rate: float = 3e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    max_train_examples: int | None = None
    max_dev_examples: int | None = None
    eval_every_steps: int = 0
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    select_by: str = "weak_f1"
    dev_catalogue_sample: int = 0
    final_full_eval: bool = True
    amp: str = "none"
    encode_batch_size: int = 64
    hybrid: dict = field(default_factory=dict)
    recipe: str = ""

    def validate(self) -> TrainConfig:
        """Check types and ranges; raise `ConfigError` naming the field and the allowed values."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _type_ok(value, hints[f.name]):
                raise ConfigError(
                    f"training option {f.name}={value!r}: expected {_type_name(hints[f.name])}, "
                    f"got {type(value).__name__}"
                )
        if not self.train_data:
            raise ConfigError("train_data: give at least one training file")
        for name in ("catalogue", "output_dir", "base_model"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")
        for name in ("epochs", "batch_size", "grad_accumulation", "keep_checkpoints", "encode_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "hard_negatives",
            "eval_every_steps",
            "checkpoint_every_steps",
            "dev_catalogue_sample",
            "weight_decay",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_train_examples", "max_dev_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 or null, got {getattr(self, name)}")
        for name in ("learning_rate", "head_learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.select_by not in SELECT_BY:
            raise ConfigError(f"select_by must be one of {', '.join(SELECT_BY)}, got {self.select_by!r}")
        if self.model:
            known = {f.name for f in dataclasses.fields(ElqConfig)}
            unknown = sorted(set(self.model) - known)
            if unknown:
                raise ConfigError(f"model: unknown ElqConfig fields {unknown}; known: {sorted(known)}")
            ElqConfig(**self.model).validate()
        if self.hybrid:
            from .hybrid import HybridConfig

            HybridConfig.from_dict(self.hybrid)
        if self.recipe:
            from .recipes import check_recipe

            check_recipe(self)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> TrainConfig:
        """Build and validate; a single file name is accepted for `train_data` / `dev_data`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        missing = sorted({"train_data", "catalogue", "output_dir"} - set(values))
        if missing:
            raise ConfigError(f"training options {missing} are required")
        values = dict(values)
        for name in ("train_data", "dev_data"):
            if isinstance(values.get(name), str):
                values[name] = [values[name]]
        return cls(**values).validate()

    def absolute(self) -> TrainConfig:
        """This config with its local paths made absolute, for workers that run in another directory."""

        def local(url: str) -> str:
            return os.path.abspath(url) if fs.is_local(url) else url

        values = self.to_dict()
        values["train_data"] = [local(u) for u in self.train_data]
        values["dev_data"] = [local(u) for u in self.dev_data]
        for name in ("catalogue", "output_dir"):
            values[name] = local(values[name])
        if self.init_model:
            values["init_model"] = local(self.init_model)
        if os.path.exists(self.base_model):
            values["base_model"] = os.path.abspath(self.base_model)
        return TrainConfig(**values)

    def job_fingerprint(self) -> str:
        """Hash of the fields that define the job; a checkpoint is resumed only by the same job."""
        return fs.fingerprint(json.dumps({k: getattr(self, k) for k in JOB_FIELDS}, sort_keys=True))


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    return str(hint).replace("typing.", "") if typing.get_origin(hint) else hint.__name__
