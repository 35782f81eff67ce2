"""Index shards held by Ray actors, searched through futures: `--retrieval shards` of link-corpus.

For an index too big for one node, each `ShardServer` actor holds one shard of a saved index, and
`RemoteShardedIndex` is an `elcore.index.EntityIndex` over them: every call goes to every shard
actor at once and the answers are merged as `ShardedIndex` merges in-process shards, so links equal
the in-process sharded index's.

    >>> index = RemoteShardedIndex(*start_shard_servers("s3://b/index", shard_cpus=2))
    >>> Linker(model, catalogue, index)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elcore.errors import ConfigError
from elcore.index import EntityIndex


class ShardServer:
    """Ray actor: one shard of a saved index in memory; `search` answers with shard-local ids."""

    def __init__(self, index_url: str, number: int, threads: int) -> None:
        import faiss

        from elcore.index import IndexSpec, read_shard
        from elcore.index_files import read_manifest

        faiss.omp_set_num_threads(threads)
        manifest = read_manifest(index_url)
        start, end = manifest["shards"][number]
        spec = IndexSpec.from_dict(manifest["spec"])
        # elcore reads one shard with `read_shard` (used by `load_index` for all shards at once).
        self.shard = read_shard(index_url, number, spec, manifest.get("metadata", {}), end - start)

    def search(self, queries: np.ndarray, k: int):
        return self.shard.search(queries, k)

    def score_ids(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.shard.score_ids(queries, ids)

    def size(self) -> int:
        return self.shard.serialized_size()


class RemoteShardedIndex(EntityIndex):
    """An `EntityIndex` whose shards live in `ShardServer` actors; plugs into `Linker(model, catalogue, index)`.

    Each call goes to every shard actor at once (futures), and the answers are merged as
    `ShardedIndex` merges its in-process shards, so results equal the in-process sharded index.
    """

    def __init__(
        self, actors: list, sizes: list[int], dim: int, spec: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        from elcore.index import IndexSpec

        self.actors, self.spec, self.metadata, self._dim = actors, IndexSpec.from_dict(spec), metadata, dim
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.starts = bounds[:-1]
        self.ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def ntotal(self) -> int:
        return self.ranges[-1][1]

    def search(self, queries: np.ndarray, k: int):
        import ray

        from elcore.index import merge_shard_results

        shared = ray.put(np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32))
        return merge_shard_results(ray.get([a.search.remote(shared, k) for a in self.actors]), self.starts, k)

    def score_ids(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        import ray

        from elcore.index import merge_shard_scores, split_ids

        shared = ray.put(np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32))
        local = split_ids(ids, self.ranges)
        futures = [a.score_ids.remote(shared, mine) for a, mine in zip(self.actors, local, strict=True)]
        return merge_shard_scores(ray.get(futures), local)

    def save(self, url: str) -> None:
        raise ConfigError("a RemoteShardedIndex is a view of shard actors; save the index it was loaded from")

    def serialized_size(self) -> int:
        import ray

        return int(sum(ray.get([a.size.remote() for a in self.actors])))


def start_shard_servers(index_url: str, shard_cpus: float) -> tuple:
    """One `ShardServer` actor per shard of the index; returns `RemoteShardedIndex` constructor arguments."""
    import ray

    from elcore.index_files import read_manifest

    manifest = read_manifest(index_url)
    server = ray.remote(num_cpus=shard_cpus)(ShardServer)
    threads = max(1, int(shard_cpus))
    actors = [server.remote(index_url, n, threads) for n in range(len(manifest["shards"]))]
    sizes = [end - start for start, end in manifest["shards"]]
    return actors, sizes, manifest["dim"], manifest["spec"], manifest.get("metadata", {})
