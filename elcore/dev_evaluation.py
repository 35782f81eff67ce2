"""Dev evaluation during training: the linker's metrics on the dev sets, and the threshold to keep.

`evaluate_dev` is `elcore.evaluation.evaluate_linker` (the one evaluation path, also behind `elq
evaluate`) on the current weights, with the threshold swept and chosen on all dev sets together,
flattened to the `dev_*` numbers the loop logs and selects the best model by. `DevEvaluation`
holds what every evaluation of one run shares: the dev sets, the catalogue (or, when the entity
encoder trains, a seeded sample of it around the dev gold entities) and the frozen index.

    >>> dev = DevEvaluation.of(config, runtime, catalogue, frozen_index)
    >>> dev(model)["dev_weak_f1"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from .catalogue import EntityCatalogue
from .data import Example, read_examples
from .errors import ConfigError
from .evaluation import default_thresholds, evaluate_linker
from .index import EntityIndex, FaissIndex, IndexSpec
from .linker import Linker
from .model import ElqModel
from .train_config import TrainConfig
from .train_runtime import TrainingRuntime, catalogue_vectors_on_ranks

KINDS = ("weak", "strong", "entity")


def evaluate_dev(
    model: ElqModel,
    catalogue: EntityCatalogue,
    index: EntityIndex,
    examples: Sequence[Example] | Mapping[str, Sequence[Example]],
    select_by: str = "weak_f1",
) -> dict:
    """Dev metrics of `model` at the best swept threshold: flat `dev_*` scores (per set too, when
    several), `dev_sweep` (rows) and `dev_metrics` (all sets at the chosen threshold)."""
    sets = dict(examples) if isinstance(examples, Mapping) else {"dev": list(examples)}
    was_training = model.training
    linker = Linker(model, catalogue, index, device=str(model.device))
    try:
        found = evaluate_linker(linker, sets, sweep=default_thresholds(), select_by=select_by, at_best=True)
    finally:
        model.train(was_training)
    report: dict = {
        "dev_best_threshold": found["best_threshold"],
        **{f"dev_{kind}_f1": found["metrics"][kind]["f1"] for kind in KINDS},
        "dev_link_seconds": round(found["timing"]["link_seconds"], 2),
        "dev_sweep": found["sweep"],
        "dev_metrics": found["metrics"],
    }
    for name, metrics in found.get("sets", {}).items():
        report.update({f"dev_{name}_{kind}_f1": metrics[kind]["f1"] for kind in KINDS})
    return report


@dataclass
class DevEvaluation:
    """The dev sets of one run and what they are linked against."""

    config: TrainConfig
    runtime: TrainingRuntime
    catalogue: EntityCatalogue
    sets: dict[str, list[Example]]
    frozen_index: EntityIndex | None
    sample: EntityCatalogue | None  # evaluations link against it when set (a trainable entity encoder)

    @classmethod
    def of(
        cls,
        config: TrainConfig,
        runtime: TrainingRuntime,
        catalogue: EntityCatalogue,
        frozen_index: EntityIndex | None,
    ) -> DevEvaluation:
        names = [_set_name(url) for url in config.dev_data]
        if len(set(names)) != len(names):
            raise ConfigError(f"dev sets need distinct folder/file names, got {names} for {config.dev_data}")
        sets = {
            name: read_examples(url, config.max_dev_examples)
            for name, url in zip(names, config.dev_data, strict=True)
        }
        sample = None
        if sets and config.dev_catalogue_sample and frozen_index is None:
            sample = _dev_catalogue(catalogue, sets, config.dev_catalogue_sample, config.seed)
        return cls(config, runtime, catalogue, sets, frozen_index, sample)

    @property
    def entities(self) -> int:
        """Entities each evaluation links against."""
        return len(self.sample or self.catalogue)

    @property
    def rescores_in_full(self) -> bool:
        """Whether the best model is scored against the whole catalogue at the end (evaluations
        linked against a sample of it)."""
        return bool(self.sets and self.sample is not None and self.config.final_full_eval)

    def __call__(self, model: ElqModel) -> dict | None:
        """The dev report of the current weights on the main rank (None elsewhere, or without dev sets).
        Every rank calls it: with a trainable entity encoder the ranks share the catalogue encode."""
        if not self.sets:
            return None
        return self._report(model, self.sample or self.catalogue, self.frozen_index, cache=False)

    def full(self, model: ElqModel) -> dict | None:
        """The report of `model` against the whole catalogue (its vectors cached: linking with the
        model needs them next), for `rescores_in_full`. Every rank calls it."""
        return self._report(model, self.catalogue, None, cache=True)

    def _report(
        self, model: ElqModel, catalogue: EntityCatalogue, index: EntityIndex | None, cache: bool
    ) -> dict | None:
        if index is None:  # every rank encodes a share of the catalogue
            vectors = catalogue_vectors_on_ranks(
                self.runtime, model, catalogue, self.config.encode_batch_size, cache=cache
            )
            index = FaissIndex.build(vectors, IndexSpec()) if self.runtime.is_main else None
        if not self.runtime.is_main:
            return None
        return evaluate_dev(model, catalogue, index, self.sets, self.config.select_by)


def _set_name(url: str) -> str:
    """`.../webqsp/dev.jsonl` -> `webqsp_dev`."""
    path = PurePosixPath(url.split("://", 1)[-1])
    stem = path.name.split(".", 1)[0]
    return f"{path.parent.name}_{stem}" if path.parent.name else stem


def _dev_catalogue(
    catalogue: EntityCatalogue, dev_sets: Mapping[str, Sequence[Example]], sample: int, seed: int
) -> EntityCatalogue:
    """The dev gold entities plus `sample` random others (seeded: the same at every evaluation)."""
    keys = [m.entity for group in dev_sets.values() for e in group for m in e.mentions]
    gold = np.unique(catalogue.lookup(keys)) if keys else np.zeros(0, dtype=np.int64)
    gold = gold[gold >= 0]
    rest = np.setdiff1d(np.arange(len(catalogue), dtype=np.int64), gold)
    extra = np.random.default_rng([seed, 7]).choice(rest, size=min(sample, len(rest)), replace=False)
    rows = np.sort(np.concatenate([gold, extra]))
    return EntityCatalogue(catalogue.table.take(rows))
