"""Tiny training data and configs shared by the single-process and Ray Train tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from elcore.train_config import TrainConfig

TIMINGS = ("examples_per_second", "dev_link_seconds")
TEMPLATES = ["who is {}", "where is {}", "what is {} ?", "when was {} born", "how did {} play"]


def write_tiny_data(root: Path, catalogue, n_train: int = 30, n_dev: int = 10) -> dict[str, str]:
    """Questions built from the tiny vocabulary, each with one gold span; and the 10-entity catalogue."""
    root.mkdir(parents=True, exist_ok=True)
    records = catalogue.rows(range(len(catalogue)))
    examples = []
    for i in range(n_train + n_dev):
        entity = records[i % len(records)]
        template = TEMPLATES[(i // len(records)) % len(TEMPLATES)]
        name = entity["title"].lower()
        text = template.format(name)
        start = text.index(name)
        examples.append(
            {
                "id": f"q{i}",
                "text": text,
                "mentions": [[start, start + len(name)]],
                "wikidata_id": [entity["id"]],
                "entity": [entity["title"]],
            }
        )
    paths = {"train": root / "train.jsonl", "dev": root / "dev.jsonl", "catalogue": root / "entities.parquet"}
    paths["train"].write_text("".join(json.dumps(e) + "\n" for e in examples[:n_train]))
    paths["dev"].write_text("".join(json.dumps(e) + "\n" for e in examples[n_train:]))
    catalogue.save(str(paths["catalogue"]))
    return {k: str(v) for k, v in paths.items()}


def tiny_config(base: Path, data: dict[str, str], output_dir: Path, **overrides) -> TrainConfig:
    values = {
        "train_data": [data["train"]],
        "dev_data": [data["dev"]],
        "catalogue": data["catalogue"],
        "output_dir": str(output_dir),
        "base_model": str(base),
        "model": {"max_context_length": 32, "context_stride": 12, "max_entity_length": 16},
        "epochs": 2,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "head_learning_rate": 1e-2,
        "warmup_ratio": 0.0,
        "encode_batch_size": 16,
        **overrides,
    }
    return TrainConfig.from_dict(values)


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def checkpoint_weights(checkpoint_dir: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of the model saved in a checkpoint directory, keyed `<part>.<name>`."""
    out = {}
    for part in ("context_encoder", "entity_encoder", "mention_head"):
        for key, value in load_file(Path(checkpoint_dir, "model", part, "model.safetensors")).items():
            out[f"{part}.{key}"] = value
    return out
