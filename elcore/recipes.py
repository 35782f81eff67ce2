"""Named training recipes: ELQ's runs as `TrainConfig` values over the benchmark kit.

| recipe            | ELQ run                          | data                                                  |
|-------------------|----------------------------------|-------------------------------------------------------|
| `webqsp`          | `webqsp_all_ents`                | kit webqsp/train + ELQ span sample/train              |
| `wiki`            | `wiki_all_ents` (hard negatives) | kit anchors/*.jsonl (Wikipedia hyperlink sentences)   |
| `finetune`        | wiki -> WebQSP fine-tune         | webqsp data, from `init_model` (required)             |
| `frozen-entities` | ELQ's released recipe            | webqsp data; entity encoder and vectors frozen        |
| `hybrid`          | frozen-entities + priors + head  | + alias table and fusion head (`elcore.hybrid`)       |

The best model on the kit is `wiki`, then `hybrid` from it (`--set init_model=runs/wiki/best`):
ELQ's Wikipedia pre-training with the entity vectors frozen, then WebQSP and the hybrid step.

Every recipe is developed on webqsp/dev + mintaka/dev, links against the kit catalogue and picks
its best checkpoint and threshold by dev F1 (ELQ chose it on a slice of the training data). The
base encoder is the shipped MiniLM; on a cluster give a BERT by name or path:
`--set base_model=bert-base-uncased` (or `bert-large-uncased`), with the model in the Hugging
Face cache or `HF_HUB_OFFLINE=0`.

    >>> values = recipe_config("webqsp")        # a dict of TrainConfig fields
    >>> config = recipe("webqsp", {"epochs": 1})  # a validated TrainConfig
    >>> config.train_data[0]
    '/work/shared/kit/data/webqsp/train.jsonl'
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings
from .errors import ConfigError

if TYPE_CHECKING:
    from .train_config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """One named recipe: what it mirrors, and its TrainConfig values for a kit directory."""

    name: str
    mirrors: str
    description: str
    values: Callable[[Path], dict[str, Any]]
    requires: tuple[str, ...] = ()  # fields that must be set (by --set) before it can run


ENTITY_WORDPIECES = 32


def _kit(kit: Path, *parts: str) -> str:
    return str(kit.joinpath(*parts))


def _questions(kit: Path) -> dict[str, Any]:
    """WebQSP training data, both dev sets, the kit catalogue; questions fit 32 wordpieces."""
    return {
        "train_data": [
            _kit(kit, "data", "webqsp", "train.jsonl"),
            _kit(kit, "data", "elq_webqsp_span_sample", "train.jsonl"),
        ],
        "dev_data": [_kit(kit, "data", "webqsp", "dev.jsonl"), _kit(kit, "data", "mintaka", "dev.jsonl")],
        "catalogue": _kit(kit, "catalogue", "entities.jsonl"),
        "base_model": "minilm",
        # MiniLM was trained with mean pooling + unit length; ELQ's BERT used [CLS] (--set
        # model.entity_pooling=cls --set model.normalize_entities=false).
        # Entities are cut to 32 wordpieces (ELQ: 128): mean-pooled over a long description, the title
        # is diluted (kit frozen-entities run: webqsp/dev entity F1 0.42 at 128, 0.56 at 32).
        "model": {
            "max_context_length": 32,
            "context_stride": 16,
            "max_entity_length": ENTITY_WORDPIECES,
            "entity_pooling": "mean",
            "normalize_entities": True,
        },
        "batch_size": 16,
        "select_by": "weak_f1",
    }


def _webqsp(kit: Path) -> dict[str, Any]:
    return {
        **_questions(kit),
        "output_dir": "runs/webqsp",
        "epochs": 3,
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-3,
        "warmup_ratio": 0.1,
    }


def _wiki(kit: Path) -> dict[str, Any]:
    anchors = ["fewrel.jsonl", "bootleg.jsonl", "oke_train.jsonl"]
    questions = _questions(kit)
    return {
        **questions,
        "train_data": [_kit(kit, "data", "anchors", name) for name in anchors],
        "output_dir": "runs/wiki",
        # Anchor sentences fit 64 wordpieces; the entity side stays frozen, as in the recipes that
        # continue from it (`hybrid` with init_model: their entity vectors are the cached ones).
        "model": {**questions["model"], "max_context_length": 64, "context_stride": 32},
        "batch_size": 16,
        "epochs": 1,
        "learning_rate": 3e-5,
        "hard_negatives": 10,
        "freeze_entities": True,
    }


def _finetune(kit: Path) -> dict[str, Any]:
    return {
        **_webqsp(kit),
        "output_dir": "runs/finetune",
        "init_model": None,
        "learning_rate": 2e-5,
        "head_learning_rate": 2e-4,
    }


def _frozen_entities(kit: Path) -> dict[str, Any]:
    return {
        **_webqsp(kit),
        "output_dir": "runs/frozen-entities",
        "freeze_entities": True,
        "hard_negatives": 10,
    }


# Training files whose gold spans become prior counts, and (file, sample) the fusion head is fitted on.
_PRIOR_FILES = (
    ("webqsp", "train"),
    ("elq_webqsp_span_sample", "train"),
    ("simplequestions", "train"),
    ("graphquestions", "train"),
    ("anchors", "fewrel"),
    ("anchors", "bootleg"),
    ("anchors", "oke_train"),
)
# (file, examples sampled (0 = all), annotation) the fusion head is fitted on; anchor sets annotate
# only some names of a sentence ("partial").
_HEAD_DATA = (
    ("webqsp/train", 0, "complete"),
    ("elq_webqsp_span_sample/train", 0, "complete"),
    ("simplequestions/train", 3000, "complete"),
    ("anchors/fewrel", 2000, "partial"),
    ("anchors/bootleg", 0, "partial"),
    ("anchors/oke_train", 0, "partial"),
)


def _hybrid(kit: Path) -> dict[str, Any]:
    files = {f"{a}/{b}": _kit(kit, "data", a, f"{b}.jsonl") for a, b in _PRIOR_FILES}
    return {
        **_frozen_entities(kit),
        "output_dir": "runs/hybrid",
        "epochs": 1,
        "max_train_examples": 13000,
        "hybrid": {
            "prior_data": list(files.values()),
            "head_data": [[files[name], limit, annotation] for name, limit, annotation in _HEAD_DATA],
            "unseen_surfaces": 0.1,  # unseen names fitted (kit: +0.012 webqsp entity and strong F1; 0.05, 0.2: less)
            "cased_copies": 0.5,  # Mintaka-style cased names (kit: +0.007 mintaka strong F1, +0.008 webqsp entity F1)
        },
    }


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "webqsp",
            "ELQ webqsp_all_ents",
            "train on WebQSP from a base encoder; both encoders train",
            _webqsp,
        ),
        Recipe(
            "wiki",
            "ELQ wiki_all_ents",
            "Wikipedia hyperlink sentences with hard negatives refreshed each epoch",
            _wiki,
        ),
        Recipe(
            "finetune",
            "ELQ wiki -> WebQSP fine-tune",
            "continue from a saved model (init_model) on WebQSP",
            _finetune,
            requires=("init_model",),
        ),
        Recipe(
            "frozen-entities",
            "ELQ's released model",
            "entity encoder and its vectors frozen; question side trains with hard negatives from the index",
            _frozen_entities,
        ),
        Recipe(
            "hybrid",
            "ELQ + mention-entity priors",
            "frozen-entities, then the alias table and a fusion head fitted on training data "
            "(the best model: from a `wiki` run, --set init_model=runs/wiki/best)",
            _hybrid,
        ),
    )
}


def recipe_names() -> list[str]:
    return list(RECIPES)


def recipe_config(name: str, kit: str | Path | None = None) -> dict[str, Any]:
    """The TrainConfig fields of recipe `name` (a fresh dict), with kit paths resolved.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    return copy.deepcopy(_get(name).values(Path(kit) if kit else settings.kit_dir())) | {"recipe": name}


def recipe(
    name: str, overrides: Mapping[str, Any] | None = None, kit: str | Path | None = None
) -> TrainConfig:
    """A validated TrainConfig: recipe `name` with `overrides` (dotted keys reach into `model`)."""
    from .train_config import TrainConfig

    values = recipe_config(name, kit)
    for key, value in (overrides or {}).items():
        set_value(values, key, value)
    return TrainConfig.from_dict(values)


def set_value(values: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` in `values`; `model.entity_pooling` sets one field of the `model` dict."""
    if "." in key:
        outer, inner = key.split(".", 1)
        if outer != "model":
            raise ConfigError(f"--set {key}: only model.<field> may be dotted")
        values["model"] = {**(values.get("model") or {}), inner: value}
    else:
        values[key] = value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["epochs=2", "model.entity_pooling=cls"]` -> values (JSON where it parses, else the string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected name=value")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def check_recipe(config: TrainConfig) -> None:
    """Recipe-level requirements (called by `TrainConfig.validate` when `config.recipe` is set)."""
    spec = _get(config.recipe)
    for name in spec.requires:
        if not getattr(config, name):
            raise ConfigError(
                f"recipe {spec.name!r} ({spec.mirrors}) needs {name}: --set {name}=<saved elq model directory>, "
                "e.g. the `best/` folder of a `wiki` run"
            )


def _get(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
