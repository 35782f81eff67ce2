"""FAISS inner-product entity indexes: one index (`FaissIndex`) or row-range shards (`ShardedIndex`).

Ids returned by `search` are catalogue row numbers. An index is saved as a directory of shards and an
`index.json` (`elcore.index_files`).

Example:
    >>> index = FaissIndex.build(vectors, IndexSpec("hnsw", ef_search=128))
    >>> index.search(queries, k=3).ids
    array([[17,  4, 90], ...])
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

try:
    import faiss
except ImportError:  # a node without faiss (e.g. a GPU image): only the torch `gpu-flat` kind works there
    faiss = None

from . import fs
from .errors import ConfigError, IndexMismatchError
from .index_files import (
    MANIFEST,
    deserialize,
    read_manifest,
    read_shard_files,
    write_manifest,
    write_shard,
    write_sharded_manifest,
)
from .index_presets import (  # noqa: F401 - re-exported: the spec is part of this module's API
    IndexKind,
    IndexSpec,
    compact_bytes_per_entity,
    presets_text,
)

_ADD_BLOCK = (
    65_536  # rows converted to float32 at a time while adding, so fp16 or memmapped inputs stay small
)
_RERANK_BLOCK_BYTES = 64 << 20


class SearchResult(NamedTuple):
    """Top-k per query, best first; ids -1 and scores -inf where fewer than k entities were found."""

    scores: np.ndarray  # float32 [n, k]
    ids: np.ndarray  # int64 [n, k]


class EntityIndex(abc.ABC):
    """Inner-product search over entity vectors; ids are catalogue row numbers."""

    spec: IndexSpec
    metadata: dict[str, Any]

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @property
    @abc.abstractmethod
    def ntotal(self) -> int: ...

    @abc.abstractmethod
    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """Top-k entities per query row (float32 [n, dim], converted if needed)."""

    @abc.abstractmethod
    def score_ids(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Inner product of query row i with each entity `ids[i, j]` (-inf where the id is -1), as the
        index scores them (reconstructed vectors for compressed codes): scores for candidates that
        did not come from `search`, e.g. the prior table's."""

    @abc.abstractmethod
    def save(self, url: str) -> None:
        """Write `index.json` and the shard files under directory `url` (local or fsspec)."""

    @abc.abstractmethod
    def serialized_size(self) -> int:
        """Bytes the saved index files take (faiss shards plus re-rank vectors)."""

    def bytes_per_entity(self) -> float:
        return self.serialized_size() / max(1, self.ntotal)

    @classmethod
    def load(cls, url: str, *, num_threads: int | None = None) -> EntityIndex:
        """Read an index saved by `save`, whatever its type (dispatches on `index.json`).

        Raises:
            IndexNotFoundError: no `index.json` or a shard file is missing.
            IndexMismatchError: the files disagree with the manifest, or the type is not `cls`.
        """
        _set_threads(num_threads)
        manifest = read_manifest(url)
        spec = IndexSpec.from_dict(manifest["spec"])
        if manifest["type"] == "torch-flat":
            from .torch_index import TorchFlatIndex

            return TorchFlatIndex.read(url, manifest)
        shards = [
            read_shard(url, number, spec, manifest.get("metadata", {}), end - start)
            for number, (start, end) in enumerate(manifest["shards"])
        ]
        index: EntityIndex
        if manifest["type"] == "faiss":
            index = shards[0]
        elif manifest["type"] == "sharded":
            index = ShardedIndex(shards, manifest.get("metadata"))
        else:
            raise IndexMismatchError(
                f"{fs.join(url, MANIFEST)}: unknown index type {manifest['type']!r}; expected faiss, sharded or torch-flat"
            )
        if index.dim != manifest["dim"] or index.ntotal != manifest["ntotal"]:
            raise IndexMismatchError(
                f"{url}: files hold {index.ntotal} vectors of dim {index.dim}, "
                f"{MANIFEST} says {manifest['ntotal']} of dim {manifest['dim']}"
            )
        if not isinstance(index, cls):
            raise IndexMismatchError(f"{url} holds a {type(index).__name__}, not a {cls.__name__}")
        return index


def build_index(
    vectors: np.ndarray,
    spec: IndexSpec | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    num_threads: int | None = None,
) -> EntityIndex:
    """Index `vectors` as `spec` says: a `FaissIndex`, or for `gpu-flat` a `TorchFlatIndex`."""
    spec = spec or IndexSpec()
    if spec.kind is IndexKind.GPU_FLAT:
        from .torch_index import TorchFlatIndex

        return TorchFlatIndex.build(vectors, metadata)
    return FaissIndex.build(vectors, spec, metadata, num_threads=num_threads)


def load_index(url: str, *, num_threads: int | None = None) -> EntityIndex:
    """`EntityIndex.load`: a `FaissIndex` or `ShardedIndex`, as saved."""
    return EntityIndex.load(url, num_threads=num_threads)


class FaissIndex(EntityIndex):
    """One faiss index (inner product), plus float16 vectors for exact re-ranking when `spec.rerank > 0`."""

    def __init__(
        self,
        index: faiss.Index,
        spec: IndexSpec,
        metadata: dict[str, Any] | None = None,
        rerank_vectors: np.ndarray | None = None,
    ) -> None:
        _require_faiss(spec)
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ConfigError("entity indexes use inner product; got a faiss index with another metric")
        if spec.rerank and (rerank_vectors is None or rerank_vectors.shape != (index.ntotal, index.d)):
            raise IndexMismatchError(
                f"spec.rerank={spec.rerank} needs float16 vectors of shape {(index.ntotal, index.d)}, got "
                f"{None if rerank_vectors is None else rerank_vectors.shape}"
            )
        self.index, self.spec, self.metadata = index, spec, dict(metadata or {})
        self.rerank_vectors = rerank_vectors if spec.rerank else None
        self._direct_map = False  # IVF codes are found by id only through a direct map (made on demand)
        self._fast_scan_blocks: list[np.ndarray] | None = None  # per list, its packed code blocks (views)
        _apply_search_params(index, spec)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        spec: IndexSpec | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        trained: bytes | None = None,
        num_threads: int | None = None,
    ) -> FaissIndex:
        """Index `vectors` (row i gets id i).

        Args:
            vectors: [n, dim] array (any float dtype, converted in blocks).
            spec: what to build (default: exact flat).
            metadata: JSON-able facts stored in `index.json` (catalogue and model fingerprints).
            trained: an empty trained index from `train_empty_index`, so shards built apart share training.
            num_threads: faiss OpenMP threads (process-wide); None leaves faiss' setting alone.
        """
        spec = spec or IndexSpec()
        _set_threads(num_threads)
        _check_matrix(vectors, "vectors")
        index = deserialize(
            trained if trained is not None else train_empty_index(vectors, spec, len(vectors))
        )
        if index.d != vectors.shape[1]:
            raise IndexMismatchError(f"trained index has dim {index.d}, vectors have dim {vectors.shape[1]}")
        for start in range(0, len(vectors), _ADD_BLOCK):
            index.add(np.ascontiguousarray(vectors[start : start + _ADD_BLOCK], dtype=np.float32))
        rerank_vectors = np.array(vectors, dtype=np.float16) if spec.rerank else None
        return cls(index, spec, metadata, rerank_vectors)

    @property
    def dim(self) -> int:
        return self.index.d

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        queries = _as_queries(queries, self.dim, k)
        fetch = max(k, self.spec.rerank)
        scores, ids = self.index.search(queries, fetch)
        if self.rerank_vectors is not None:
            scores = _exact_scores(self.rerank_vectors, queries, ids)
        return _top_k(scores, ids, k)

    def score_ids(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        queries = _as_queries(queries, self.dim, 1)
        ids = np.asarray(ids, dtype=np.int64)
        if self.rerank_vectors is not None:
            return _exact_scores(self.rerank_vectors, queries, ids)
        wanted = np.unique(ids[ids >= 0])
        if not len(wanted):
            return np.full(ids.shape, -np.inf, dtype=np.float32)
        table = self._reconstruct(wanted)  # [len(wanted), dim], row r = entity wanted[r]
        where = np.searchsorted(wanted, np.maximum(ids, 0))
        return _exact_scores(table, queries, np.where(ids >= 0, where, -1))

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is not None and not self._direct_map:
            ivf.make_direct_map()
            self._direct_map = True
        ids = np.asarray(ids, dtype=np.int64)
        if ivf is not None and isinstance(faiss.downcast_index(ivf), faiss.IndexIVFPQFastScan):
            from .fast_scan import fast_scan_blocks, reconstruct_fast_scan

            if self._fast_scan_blocks is None:
                self._fast_scan_blocks = fast_scan_blocks(self.index)
            return reconstruct_fast_scan(self.index, ids, self._fast_scan_blocks)
        return self.index.reconstruct_batch(ids)

    def save(self, url: str) -> None:
        write_shard(url, 0, self)
        write_manifest(url, "faiss", self.spec, self.dim, [self.ntotal], self.metadata)

    def serialized_size(self) -> int:
        extra = 0 if self.rerank_vectors is None else self.rerank_vectors.nbytes
        return int(faiss.serialize_index(self.index).nbytes) + extra


class ShardedIndex(EntityIndex):
    """`FaissIndex` shards over contiguous row ranges; search merges the per-shard top-k exactly.

    Shard i holds rows [start_i, start_i + ntotal_i) with local ids; global id = local id + start_i.
    """

    def __init__(self, shards: Sequence[FaissIndex], metadata: dict[str, Any] | None = None) -> None:
        if not shards:
            raise ConfigError("a ShardedIndex needs at least one shard")
        first = shards[0]
        for number, shard in enumerate(shards):
            if shard.dim != first.dim or shard.spec != first.spec:
                raise IndexMismatchError(
                    f"shard {number} has dim {shard.dim} and spec {shard.spec.to_dict()}; "
                    f"shard 0 has dim {first.dim} and spec {first.spec.to_dict()}"
                )
        self.shards = list(shards)
        self.spec = first.spec
        self.metadata = dict(metadata if metadata is not None else first.metadata)
        self.starts = np.cumsum([0] + [s.ntotal for s in shards[:-1]]).astype(np.int64)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        spec: IndexSpec | None = None,
        num_shards: int = 2,
        metadata: dict[str, Any] | None = None,
        *,
        num_threads: int | None = None,
    ) -> ShardedIndex:
        """Train once on a sample of all `vectors`, then fill `num_shards` copies by contiguous row range."""
        spec = spec or IndexSpec()
        _set_threads(num_threads)
        _check_matrix(vectors, "vectors")
        trained = train_empty_index(vectors, spec, len(vectors))
        shards = [
            FaissIndex.build(vectors[start:end], spec, metadata, trained=trained)
            for start, end in shard_ranges(len(vectors), num_shards)
        ]
        return cls(shards, metadata)

    @classmethod
    def from_shards(
        cls, shards: Sequence[FaissIndex], metadata: dict[str, Any] | None = None
    ) -> ShardedIndex:
        """Join shards built apart (e.g. one per Ray task, all from one `train_empty_index`), in row order."""
        return cls(shards, metadata)

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    @property
    def ntotal(self) -> int:
        return int(sum(s.ntotal for s in self.shards))

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return [
            (int(start), int(start) + s.ntotal) for start, s in zip(self.starts, self.shards, strict=True)
        ]

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        queries = _as_queries(queries, self.dim, k)
        return merge_shard_results([shard.search(queries, k) for shard in self.shards], self.starts, k)

    def score_ids(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        local = split_ids(ids, self.ranges)
        return merge_shard_scores(
            [shard.score_ids(queries, mine) for shard, mine in zip(self.shards, local, strict=True)], local
        )

    def save(self, url: str) -> None:
        for number, shard in enumerate(self.shards):
            write_shard(url, number, shard)
        write_sharded_manifest(url, self.spec, self.dim, [s.ntotal for s in self.shards], self.metadata)

    def serialized_size(self) -> int:
        return sum(s.serialized_size() for s in self.shards)


# -- building blocks for pipelines -----------------------------------------------------------------------


def merge_shard_results(results: Sequence[SearchResult], starts: Sequence[int], k: int) -> SearchResult:
    """The exact top-k over per-shard results (shard-local ids, shard i starting at global row starts[i])."""
    scores = np.concatenate([r.scores for r in results], axis=1)
    ids = np.concatenate(
        [np.where(r.ids >= 0, r.ids + start, -1) for r, start in zip(results, starts, strict=True)], axis=1
    )
    return _top_k(scores, ids, k)


def split_ids(ids: np.ndarray, ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Per shard, `ids` as shard-local ids (-1 where another shard holds the row)."""
    ids = np.asarray(ids, dtype=np.int64)
    return [np.where((ids >= start) & (ids < end), ids - start, -1) for start, end in ranges]


def merge_shard_scores(scores: Sequence[np.ndarray], local_ids: Sequence[np.ndarray]) -> np.ndarray:
    """Combine per-shard `score_ids` answers: each position from the shard that holds its row."""
    out = np.full(local_ids[0].shape, -np.inf, dtype=np.float32)
    for shard_scores, mine in zip(scores, local_ids, strict=True):
        out = np.where(mine >= 0, shard_scores, out)
    return out


def shard_ranges(ntotal: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) row ranges of near-equal size, in order."""
    if num_shards < 1:
        raise ConfigError(f"num_shards must be >= 1, got {num_shards}")
    bounds = [i * ntotal // num_shards for i in range(num_shards + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def new_index(spec: IndexSpec, dim: int, ntotal: int) -> faiss.Index:
    """The empty, untrained faiss index of `spec` for `ntotal` vectors of `dim` dimensions.

    Raises:
        ConfigError: faiss cannot build the factory string (the message names it and the presets).
    """
    factory = spec.factory_string(dim, ntotal)
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise ConfigError(
            f"faiss cannot build {factory!r}: {str(error).strip().splitlines()[-1]}; "
            f"use a preset ({presets_text()}) or a valid faiss factory string"
        ) from error


def train_empty_index(vectors: np.ndarray, spec: IndexSpec, ntotal: int) -> bytes:
    """An empty index of `spec`, trained on a seeded sample of at most `spec.train_size` rows, serialized.

    Train once, then pass the bytes to `FaissIndex.build(..., trained=...)` for every shard (faiss
    demos/demo_ondisk_ivf.py). `ntotal` is the size of the whole index (it sets IVF list counts).
    """
    _require_faiss(spec)
    if spec.kind is IndexKind.GPU_FLAT:
        raise ConfigError("'gpu-flat' is a torch index, not a faiss one: build it with build_index")
    _check_matrix(vectors, "vectors")
    dim = vectors.shape[1]
    factory = spec.factory_string(dim, ntotal)
    index = new_index(spec, dim, ntotal)
    concrete = faiss.downcast_index(index)
    ivf = faiss.try_extract_index_ivf(index)
    ivfpq = None if ivf is None else faiss.downcast_index(ivf)
    if isinstance(ivfpq, faiss.IndexIVFPQ):
        ivfpq.do_polysemous_training = False  # polysemous codes are never searched here and cost minutes
        if spec.kind in (IndexKind.IVFPQ, IndexKind.COMPACT):
            ivfpq.pq.cp.min_points_per_centroid = 16  # ivfpq_layout picks bits for >= 16 points per centroid
    hnsw = getattr(concrete, "hnsw", None)
    if hnsw is not None:
        hnsw.efConstruction = spec.ef_construction
    if not index.is_trained:
        sample = _training_sample(vectors, spec)
        if len(sample) < _min_training_points(index):
            raise ConfigError(
                f"{factory!r} needs at least {_min_training_points(index)} training vectors, got {len(sample)}; "
                "use the flat or hnsw preset for an index this small"
            )
        index.train(sample)
    return faiss.serialize_index(index).tobytes()


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, block_size: int = 65_536) -> SearchResult:
    """Brute-force inner-product top-k over `vectors` in row blocks: the reference for every other index.

    Example:
        >>> exact_search(np.eye(3), np.array([[0.0, 2.0, 1.0]]), k=2)
        SearchResult(scores=array([[2., 1.]], dtype=float32), ids=array([[1, 2]]))
    """
    _check_matrix(vectors, "vectors")
    queries = _as_queries(queries, vectors.shape[1], k)
    scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), 0), -1, dtype=np.int64)
    for start in range(0, len(vectors), block_size):
        block = np.ascontiguousarray(vectors[start : start + block_size], dtype=np.float32)
        block_scores = queries @ block.T
        block_ids = np.broadcast_to(np.arange(start, start + len(block), dtype=np.int64), block_scores.shape)
        best = _top_k(np.concatenate([scores, block_scores], 1), np.concatenate([ids, block_ids], 1), k)
        scores, ids = best.scores, best.ids
    return _top_k(scores, ids, k)


# -- helpers ---------------------------------------------------------------------------------------------


def _set_threads(num_threads: int | None) -> None:
    if num_threads is not None:
        faiss.omp_set_num_threads(int(num_threads))


def _check_matrix(vectors: np.ndarray, name: str) -> None:
    if getattr(vectors, "ndim", None) != 2:
        raise ConfigError(f"{name} must be a 2-D array [n, dim], got shape {getattr(vectors, 'shape', None)}")


def _as_queries(queries: np.ndarray, dim: int, k: int) -> np.ndarray:
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise IndexMismatchError(f"queries have shape {queries.shape}; the index holds vectors of dim {dim}")
    return queries


def _training_sample(vectors: np.ndarray, spec: IndexSpec) -> np.ndarray:
    if len(vectors) <= spec.train_size:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.sort(np.random.default_rng(spec.seed).choice(len(vectors), spec.train_size, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def _min_training_points(index: faiss.Index) -> int:
    ivf = faiss.try_extract_index_ivf(index)
    needed = 1 if ivf is None else ivf.nlist
    pq = getattr(faiss.downcast_index(index), "pq", None)
    return max(needed, 1 if pq is None else 1 << pq.nbits)


def _apply_search_params(index: faiss.Index, spec: IndexSpec) -> None:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = spec.nprobe_for(ivf.nlist)
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = spec.ef_search


def _exact_scores(vectors16: np.ndarray, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Inner products of each query with its candidate rows (float16 storage, float32 maths); -inf for -1."""
    scores = np.full(ids.shape, -np.inf, dtype=np.float32)
    per_query = max(1, ids.shape[1] * queries.shape[1] * 4)
    step = max(1, _RERANK_BLOCK_BYTES // per_query)
    for start in range(0, len(queries), step):
        block_ids = ids[start : start + step]
        valid = block_ids >= 0
        candidates = vectors16[np.where(valid, block_ids, 0)].astype(np.float32)  # [b, fetch, dim]
        block = np.matmul(candidates, queries[start : start + step, :, None])[..., 0]
        scores[start : start + step] = np.where(valid, block, -np.inf)
    return scores


def _top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> SearchResult:
    """Best k columns per row (stable: earlier columns win ties), padded with -1 / -inf."""
    scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(scores, order, axis=1)
    ids = np.take_along_axis(np.asarray(ids, dtype=np.int64), order, axis=1)
    if scores.shape[1] < k:
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
    return SearchResult(np.ascontiguousarray(scores), np.ascontiguousarray(ids))


def _require_faiss(spec: IndexSpec) -> None:
    if faiss is None:
        raise ConfigError(
            f"index kind {spec.kind_name!r} needs faiss (pip install faiss-cpu); without it only "
            "'gpu-flat' (exact search with torch) is available"
        )


def read_shard(url: str, number: int, spec: IndexSpec, metadata: dict[str, Any], expected: int) -> FaissIndex:
    """Shard `number` of the index saved at `url`, as a `FaissIndex` (`elcore.index_files`)."""
    _require_faiss(spec)
    index, rerank_vectors = read_shard_files(url, number, spec.rerank > 0, expected)
    return FaissIndex(index, spec, metadata, rerank_vectors)
