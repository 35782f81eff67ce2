"""What differs between training in one process and on Ray Train workers: `TrainingRuntime`.

The loop (`elcore.training`) calls the runtime for its device, DDP wrapping, data sharding,
collectives and checkpoint reporting; `pipelines.ray_train_runtime.RayTrainRuntime` implements the same
methods with Ray Train. `catalogue_vectors_on_ranks` shares a catalogue encode out over the ranks.

    >>> runtime = TrainingRuntime()
    >>> runtime.shard(items), runtime.is_main
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from . import fs, settings
from .catalogue import EntityCatalogue
from .checkpoint import finished_checkpoints
from .embeddings import MANIFEST, cache_url
from .encoding import catalogue_vectors, encode_entities, store_catalogue_vectors
from .index import shard_ranges
from .model import ElqModel


class TrainingRuntime:
    """One process, no DDP. `pipelines.ray_train_runtime.RayTrainRuntime` is the Ray Train version.

    The collective methods (`all_gather_rows`, `all_true`, `broadcast_weights`) must be called by
    every rank at the same point; here they are identities.
    """

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        return torch.device(settings.device())

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device())

    def shard(self, items: Sequence) -> list:
        return shard_evenly(items, self.rank, self.world_size)

    def latest_checkpoint(self, output_dir: str) -> str | None:
        root = fs.join(output_dir, "checkpoints")
        done = finished_checkpoints(root)
        return f"{root}/{done[-1]}" if done else None

    def report(self, metrics: dict, checkpoint_dir: str | None, output_dir: str, keep: int = 2) -> None:
        """Record metrics; copy a finished checkpoint into `output_dir/checkpoints/`, keep the last `keep`."""
        if checkpoint_dir is None:
            return
        root = fs.join(output_dir, "checkpoints")
        target = fs.join(root, f"step-{metrics['step']:08d}")
        filesystem, path = fs.filesystem(target)
        filesystem.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.remove(target)
        filesystem.put(checkpoint_dir.rstrip("/") + "/", path, recursive=True)
        for old in finished_checkpoints(root)[:-keep]:
            fs.remove(fs.join(root, old))

    def barrier(self) -> None:
        pass

    def all_gather_rows(self, local: np.ndarray) -> np.ndarray:
        """Concatenate every rank's rows in rank order."""
        return local

    def all_true(self, flag: bool) -> bool:
        return flag

    def broadcast_weights(self, model: torch.nn.Module) -> None:
        """Copy rank 0's weights into every rank's `model`."""


def shard_evenly(items: Sequence, rank: int, world_size: int) -> list:
    """Every `world_size`-th item from `rank`, padded by wrapping so every rank gets as many.

    Equal shard lengths give every rank the same number of steps and micro-batches, which DDP
    needs (a rank with one more step would wait forever for the others' gradients).

        >>> shard_evenly(list(range(5)), 1, 2)
        [1, 3, 0]
    """
    if world_size <= 1 or not items:
        return list(items)
    per_rank = math.ceil(len(items) / world_size)
    padded = [items[i % len(items)] for i in range(per_rank * world_size)]
    return padded[rank::world_size]


def catalogue_vectors_on_ranks(
    runtime: TrainingRuntime, model: ElqModel, catalogue: EntityCatalogue, batch_size: int, cache: bool
) -> np.ndarray:
    """All catalogue vectors on every rank; with several ranks each encodes a contiguous share."""
    if runtime.world_size == 1:
        return catalogue_vectors(
            model, catalogue, batch_size=batch_size, cache=cache, progress=runtime.is_main
        )
    model_fp, catalogue_fp = model.entity_fingerprint(), catalogue.fingerprint
    url = cache_url(model_fp, catalogue_fp)
    if cache and runtime.all_true(fs.exists(fs.join(url, MANIFEST))):
        return catalogue_vectors(model, catalogue, batch_size=batch_size, cache=True, progress=False)
    lo, hi = shard_ranges(len(catalogue), runtime.world_size)[runtime.rank]
    rows = np.arange(lo, hi, dtype=np.int64)
    local = encode_entities(
        model, catalogue.entity_inputs(rows), batch_size=batch_size, progress=runtime.is_main
    )
    vectors = runtime.all_gather_rows(local)
    if cache and runtime.is_main:
        store_catalogue_vectors(model, catalogue, vectors)
    return vectors
