"""`build-index` on Ray: embeddings Parquet -> N shards by row range -> one FAISS index per shard.

    embeddings -> train task (seeded sample, once) -> one build task per shard (global row range, shared
               training) -> shard files -> index.json

The same index `elcore.index.ShardedIndex.build(vectors, spec, num_shards)` makes in one process, without
holding all vectors anywhere: the training sample and each shard's rows are read from the Parquet parts on
demand. Search merges the shards' top-k exactly (`ShardedIndex.search`). Shards already written by the same
job are kept on a re-run.

    python -m pipelines.build_index --embeddings s3://b/emb --output s3://b/index --kind ivfpq --num-shards 4
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from elcore import fs
from elcore.embeddings import EmbeddingsManifest, read_manifest, table_to_vectors
from elcore.errors import ConfigError, EmbeddingsNotFoundError, IndexMismatchError
from elcore.index import IndexSpec

from .common import finished, init_ray, prepare_output, track
from .options import run_command_line


@dataclass
class BuildIndexConfig:
    """Build a sharded FAISS index over an embeddings folder: train once, one Ray task per shard."""

    embeddings: str = field(
        metadata={"help": "embeddings folder (manifest.json + Parquet parts), fsspec URL"}
    )
    output: str = field(metadata={"help": "index folder to write (index.json + shard files), fsspec URL"})
    index: IndexSpec = field(default_factory=IndexSpec)
    num_shards: int = field(default=1, metadata={"help": "shards by contiguous row range"})
    cpus_per_task: float = field(default=1.0, metadata={"help": "CPUs each train/build task asks Ray for"})
    address: str | None = field(
        default=None, metadata={"help": "Ray address ('auto': the `ray start` cluster)"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace output left by a different job"})

    def validate(self) -> BuildIndexConfig:
        if self.num_shards < 1 or self.cpus_per_task <= 0:
            raise ConfigError(
                f"num_shards must be >= 1 and cpus_per_task > 0, got {self.num_shards}, {self.cpus_per_task}"
            )
        return self


class EmbeddingRows:
    """The vectors of an embeddings folder, read on demand by row: a [count, dim] array-like.

    `train_empty_index` samples from it as from an array, and a shard task reads its row range, so no process
    holds all vectors. `part_rows` lists (file, first row, last row) per part, from `part_row_ranges`.
    """

    ndim = 2

    def __init__(self, url: str, manifest: EmbeddingsManifest, part_rows: list[tuple[str, int, int]]) -> None:
        self.url, self.manifest, self.part_rows = url, manifest, part_rows
        self.shape = (manifest.count, manifest.dim)

    def __len__(self) -> int:
        return self.manifest.count

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.read(np.arange(len(self)), dtype or np.float32)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        return self.read(rows)

    def read(self, rows: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Vectors of `rows` (distinct, in that order), reading only the parts that hold some of them."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.manifest.dim), dtype=dtype)
        found = np.zeros(len(rows), dtype=bool)
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        lo, hi = (int(wanted[0]), int(wanted[-1])) if len(rows) else (0, -1)
        for name, first, last in self.part_rows:
            if last < lo or first > hi:
                continue
            table = _read_part(fs.join(self.url, name), ["row", "vector"])
            part_rows = table.column("row").to_numpy()
            slot = np.minimum(np.searchsorted(wanted, part_rows), len(wanted) - 1)
            keep = np.flatnonzero(wanted[slot] == part_rows)
            if len(keep):
                target = order[slot[keep]]
                out[target] = table_to_vectors(table.column("vector").take(keep), dtype)
                found[target] = True
        if not found.all():
            raise IndexMismatchError(
                f"{self.url}: rows {rows[~found][:5].tolist()} are in no part; re-run embed-entities"
            )
        return out


def part_row_ranges(url: str, manifest: EmbeddingsManifest) -> list[tuple[str, int, int]]:
    """(file, first row, last row) of each part, from the `row` column only."""
    ranges = []
    for name in manifest.parts:
        rows = _read_part(fs.join(url, name), ["row"]).column("row").to_numpy()
        if len(rows):
            ranges.append((name, int(rows.min()), int(rows.max())))
    return ranges


def _read_part(url: str, columns: list[str]):
    filesystem, path = fs.filesystem(url)
    if not filesystem.exists(path):
        raise EmbeddingsNotFoundError(f"{url} is missing; manifest.json lists it (re-run embed-entities)")
    with filesystem.open(path, "rb") as f:
        return pq.read_table(f, columns=columns)


def train(rows: EmbeddingRows, spec: IndexSpec, threads: int) -> bytes:
    """Ray task: an empty index of `spec` trained on the seeded sample `ShardedIndex.build` would draw."""
    import faiss

    from elcore.index import train_empty_index

    faiss.omp_set_num_threads(threads)
    return train_empty_index(rows, spec, len(rows))


def build_shard(
    rows: EmbeddingRows,
    spec: IndexSpec,
    trained: bytes,
    number: int,
    start: int,
    end: int,
    output: str,
    metadata: dict[str, Any],
    threads: int,
) -> dict[str, Any]:
    """Ray task: index rows [start, end) (local ids 0..) from the shared training, write the shard files."""
    from elcore.index import FaissIndex
    from elcore.index_files import write_shard

    vectors = rows.read(np.arange(start, end), np.float16 if rows.manifest.dtype == "float16" else np.float32)
    shard = FaissIndex.build(vectors, spec, metadata, trained=trained, num_threads=threads)
    write_shard(output, number, shard)
    return {"shard": number, "ntotal": shard.ntotal}


def run(config: BuildIndexConfig) -> dict[str, Any]:
    """Build the index; shards already written by the same job are kept. Returns a summary.

    Raises:
        EmbeddingsNotFoundError: no manifest at `embeddings`, or a part missing.
        ConfigError: a bad setting, a trained type with too few vectors, or another job's output.
    """
    import ray

    from elcore.index import new_index, shard_ranges
    from elcore.index_files import shard_bytes, write_sharded_manifest, written_shards

    config.validate()
    started = time.perf_counter()
    manifest = read_manifest(config.embeddings)
    spec = config.index
    if manifest.count < config.num_shards:
        raise ConfigError(f"{manifest.count} vectors cannot fill {config.num_shards} shards")
    new_index(spec, manifest.dim, manifest.count)  # fails here, before any task starts, on a bad type
    job = {
        "stage": "build-index",
        "embeddings": manifest.to_dict(),
        "spec": spec.to_dict(),
        "num_shards": config.num_shards,
    }
    resumed = prepare_output(config.output, job, config.overwrite)
    written = written_shards(config.output, spec.rerank > 0) if resumed else set()
    ranges = shard_ranges(manifest.count, config.num_shards)
    todo = [n for n in range(len(ranges)) if n not in written]
    metadata = {
        "model_fingerprint": manifest.model_fingerprint,
        "catalogue_fingerprint": manifest.catalogue_fingerprint,
        "embeddings": config.embeddings,
    }
    if todo:
        init_ray(config.address)
        threads = max(1, int(config.cpus_per_task))
        rows = ray.put(
            EmbeddingRows(config.embeddings, manifest, part_row_ranges(config.embeddings, manifest))
        )
        remote = {"num_cpus": config.cpus_per_task}
        trained = ray.remote(**remote)(train).remote(rows, spec, threads)
        builds = [
            ray.remote(**remote)(build_shard).remote(
                rows, spec, trained, n, ranges[n][0], ranges[n][1], config.output, metadata, threads
            )
            for n in todo
        ]
        for _ in track(finished(builds), "build index", total=len(todo), count="ntotal"):
            pass
    write_sharded_manifest(
        config.output, spec, manifest.dim, [end - start for start, end in ranges], metadata
    )
    size = shard_bytes(config.output, spec.rerank > 0)
    return {
        "output": config.output,
        "kind": spec.kind_name,
        "factory": spec.factory_string(manifest.dim, manifest.count),
        "ntotal": manifest.count,
        "dim": manifest.dim,
        "shards": len(ranges),
        "shards_built": len(todo),
        "shards_skipped": len(ranges) - len(todo),
        "bytes_per_entity": round(size / manifest.count, 2),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command_line(BuildIndexConfig, run, "build-index", argv)


if __name__ == "__main__":
    main()
