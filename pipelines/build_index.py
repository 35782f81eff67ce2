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
from typing import Any

import numpy as np

from elcore.embedding_rows import EmbeddingRows
from elcore.embeddings import read_manifest
from elcore.errors import ConfigError
from elcore.index import IndexSpec

from .common import finished, init_ray, prepare_output, track
from .options import run_command_line
from .stage_configs import BuildIndexConfig


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

    vectors = rows.read(np.arange(start, end), rows.dtype)
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
    manifest, spec = read_manifest(config.embeddings), config.index
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
        rows = ray.put(EmbeddingRows.open(config.embeddings))
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
