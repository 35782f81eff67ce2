"""How an entity index is saved: the files of a directory, and the only module that names them.

    index.json                 type, spec, dim, ntotal, shard row ranges, metadata (fingerprints)
    shard-00000.faiss          one faiss index per shard (local ids)
    vectors-fp16-00000.npy     float16 vectors beside each shard when `spec.rerank > 0`
    parts/00000.json           each shard's record (sizes, sha256; `elcore.parts.PartStore`)

Shards are written first, each with its record, `index.json` last: a reader sees all or none, and a
resumed build keeps the shards whose files match their records.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    import faiss
except ImportError:  # see elcore.index
    faiss = None

from . import fs
from .errors import IndexMismatchError, IndexNotFoundError
from .parts import PartStore

if TYPE_CHECKING:
    from .index import FaissIndex
    from .index_presets import IndexSpec

MANIFEST = "index.json"
FORMAT_VERSION = 1
_NAMES = {"faiss": "shard-{part}.faiss", "rerank": "vectors-fp16-{part}.npy"}


def index_exists(url: str) -> bool:
    return fs.exists(fs.join(url, MANIFEST))


def read_manifest(url: str) -> dict[str, Any]:
    """The `index.json` of the index at `url`.

    Raises:
        IndexNotFoundError: there is none.
    """
    if not index_exists(url):
        raise IndexNotFoundError(
            f"no entity index at {url}: {MANIFEST} is missing; build one with `elq build-index`"
        )
    return fs.read_json(fs.join(url, MANIFEST))


def manifest_fingerprint(url: str) -> str:
    """A hash of the index's `index.json`: what a job that links against it is keyed by."""
    return fs.fingerprint(fs.read_bytes(fs.join(url, MANIFEST)))


def write_manifest(
    url: str, kind: str, spec: IndexSpec, dim: int, shard_sizes: Sequence[int], metadata: dict[str, Any]
) -> None:
    bounds = np.concatenate([[0], np.cumsum(shard_sizes)]).astype(int).tolist()
    fs.write_json_atomic(
        fs.join(url, MANIFEST),
        {
            "format_version": FORMAT_VERSION,
            "type": kind,
            "spec": spec.to_dict(),
            "dim": int(dim),
            "ntotal": bounds[-1],
            "shards": [[start, end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)],
            "metadata": metadata,
            "faiss_version": faiss.__version__ if faiss is not None else None,
        },
    )


def write_sharded_manifest(
    url: str, spec: IndexSpec, dim: int, shard_sizes: Sequence[int], metadata: dict[str, Any] | None = None
) -> None:
    """Write `index.json` for shards written with `write_shard`; last, so a reader sees all or none."""
    write_manifest(url, "sharded", spec, dim, shard_sizes, metadata or {})


def _shard_store(url: str, rerank: bool) -> PartStore:
    return PartStore(url, ("faiss", "rerank") if rerank else ("faiss",), _NAMES)


def write_shard(url: str, number: int, shard: FaissIndex) -> None:
    """Write shard `number`'s faiss file (and its re-rank vectors) under `url`, each file atomically,
    then the shard's record (sizes, checksums) that `written_shards` checks."""
    files = {"faiss": faiss.serialize_index(shard.index).tobytes()}
    if shard.rerank_vectors is not None:
        buffer = io.BytesIO()
        np.save(buffer, shard.rerank_vectors, allow_pickle=False)
        files["rerank"] = buffer.getvalue()
    _shard_store(url, "rerank" in files).write(f"{number:05d}", files, counts={"ntotal": shard.ntotal})


def written_shards(url: str, rerank: bool) -> set[int]:
    """Numbers of the shards under `url` whose files match their records: what a resumed build keeps."""
    return {int(part) for part in _shard_store(url, rerank).done()}


def shard_bytes(url: str, rerank: bool) -> int:
    """Bytes of the shard files written under `url` (from their records)."""
    records = _shard_store(url, rerank).records().values()
    return sum(file["bytes"] for record in records for file in record["files"].values())


def deserialize(data: bytes) -> Any:
    """A faiss index from the bytes `faiss.serialize_index` wrote (a shard file, a trained empty index)."""
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


def read_shard_files(url: str, number: int, rerank: bool, expected: int) -> tuple[Any, np.ndarray | None]:
    """Shard `number`'s faiss index (memory-mapped when local) and, with `rerank`, its float16 vectors.

    Raises:
        IndexNotFoundError: a file is missing. IndexMismatchError: it holds another number of vectors.
    """
    index_url = fs.join(url, _NAMES["faiss"].format(part=f"{number:05d}"))
    if not fs.exists(index_url):
        raise IndexNotFoundError(
            f"{index_url} is missing; {MANIFEST} lists it (rebuild or re-copy the index)"
        )
    if fs.is_local(index_url):
        # Memory-mapped: the OS shares the pages between every process of a node that searches it.
        index = faiss.read_index(fs.localize(index_url), faiss.IO_FLAG_MMAP_IFC)
    else:
        index = deserialize(fs.read_bytes(index_url))
    if index.ntotal != expected:
        raise IndexMismatchError(f"{index_url} holds {index.ntotal} vectors, {MANIFEST} says {expected}")
    if not rerank:
        return index, None
    vectors_url = fs.join(url, _NAMES["rerank"].format(part=f"{number:05d}"))
    if not fs.exists(vectors_url):
        raise IndexNotFoundError(f"{vectors_url} is missing; the spec's re-rank needs it")
    filesystem, path = fs.filesystem(vectors_url)
    with filesystem.open(path, "rb") as f:
        return index, np.load(f, allow_pickle=False)
