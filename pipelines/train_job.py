"""`TrainJob`: the options of one training run, the same for `elq train`, `python -m pipelines.train`
and `ray job submit -- python -m pipelines.train`. No torch here: `elq` builds its options from it
without loading the training stack.

    >>> TrainJob(recipe="frozen-entities", set=["epochs=2"]).train_config().epochs
    2
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from elcore import fs

if TYPE_CHECKING:
    from elcore.train_config import TrainConfig


@dataclass
class TrainJob:
    """Train a linker (ELQ's losses): in this process (--workers 0), or in N Ray Train DDP workers.

    Args:
        recipe: a named recipe (`elq recipes` lists them).
        config: JSON file of TrainConfig fields, applied after the recipe (any fsspec URL).
        set: override a field, name=JSON value (model.<field> for ElqConfig fields); repeatable.
        workers: Ray Train workers (0: this process, no Ray).
        use_gpu: one GPU per worker (nccl; AMP when amp is set).
        cpus_per_worker: CPUs each worker asks Ray for.
        storage_path: where Ray keeps checkpoints (local, s3://, gs://; default: output_dir/ray).
        resume: continue from the latest checkpoint of a run with the same output_dir.
        max_failures: worker failures Ray Train recovers from (from the latest checkpoint).
        address: Ray address ('auto': the `ray start` cluster; default $RAY_ADDRESS, else a local Ray).
    """

    recipe: str | None = None
    config: str | None = None
    set: list[str] = field(default_factory=list)
    workers: int = 0
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    storage_path: str | None = None
    resume: bool = True
    max_failures: int = 0
    address: str | None = None

    def train_config(self) -> TrainConfig:
        """The recipe, then the JSON file, then each `--set`, as one validated `TrainConfig`."""
        from elcore.recipes import parse_overrides, recipe_config, set_value
        from elcore.train_config import TrainConfig

        values = recipe_config(self.recipe) if self.recipe else {}
        if self.config:
            values.update(fs.read_json(self.config))
        for key, value in parse_overrides(self.set).items():
            set_value(values, key, value)
        return TrainConfig.from_dict(values)
