"""Entity vectors in Parquet: parts in an `elcore.parts.PartStore` plus `manifest.json`, readable with plain pyarrow.

Each part (`vectors/part-00000.parquet`, its record `parts/part-00000.json`) has columns `row: int64`
(catalogue row = index id), `id`, `qid` and `vector: fixed_size_list<float16|float32>[dim]`. Parts may
hold any rows in any order; `read_embeddings` puts them back in row order and checks that rows
0..count-1 each appear exactly once. A writer resumes by skipping `written_parts` (records whose file
still matches its size and checksum); the manifest, written last, lists the parts by relative path
(folders written before the parts store, with parts at the top level, read the same way).

Example:
    >>> write_embeddings_part(url, "part-00000", [0, 1], ["Q90", "Q64"], ["Q90", "Q64"], vectors, "float16")
    'vectors/part-00000.parquet'
    >>> write_manifest(url, EmbeddingsManifest("m1", "c1", 4, "float16", 2, ["vectors/part-00000.parquet"]))
    >>> read_embeddings(url)[0].shape
    (2, 4)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import fs, settings
from .errors import ConfigError, EmbeddingsNotFoundError, IndexMismatchError
from .parts import PartStore

MANIFEST = "manifest.json"
VECTORS = "vectors"  # the store's one table


class VectorDtype(str, Enum):
    FLOAT16 = "float16"
    FLOAT32 = "float32"

    @classmethod
    def parse(cls, value: str | VectorDtype) -> VectorDtype:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(
                f"vector dtype {value!r} not supported; use one of {[d.value for d in cls]}"
            ) from None

    @property
    def arrow(self) -> pa.DataType:
        return pa.float16() if self is VectorDtype.FLOAT16 else pa.float32()


def embeddings_schema(dim: int, dtype: str | VectorDtype = VectorDtype.FLOAT16) -> pa.Schema:
    return pa.schema(
        [
            pa.field("row", pa.int64(), nullable=False),
            pa.field("id", pa.string()),
            pa.field("qid", pa.string()),
            pa.field("vector", pa.list_(VectorDtype.parse(dtype).arrow, dim), nullable=False),
        ]
    )


@dataclass
class EmbeddingsManifest:
    """What an embeddings directory holds and what produced it (checked before a cache is reused)."""

    model_fingerprint: str
    catalogue_fingerprint: str
    dim: int
    dtype: str
    count: int
    parts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dtype = VectorDtype.parse(self.dtype).value
        if self.dim < 1 or self.count < 0:
            raise ConfigError(
                f"manifest needs dim >= 1 and count >= 0, got dim={self.dim} count={self.count}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> EmbeddingsManifest:
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in value]
        if missing:
            raise ConfigError(f"embeddings manifest lacks {missing}; it needs {names}")
        return cls(**{name: value[name] for name in names})


def cache_url(model_fingerprint: str, catalogue_fingerprint: str) -> str:
    """The cache of one (model, catalogue) pair: `<cache_dir>/embeddings/<model_fp>-<catalogue_fp>`."""
    return fs.join(settings.cache_dir(), "embeddings", f"{model_fingerprint}-{catalogue_fingerprint}")


def embeddings_to_table(
    rows: Sequence[int] | np.ndarray,
    ids: Sequence[str] | pa.Array,
    qids: Sequence[str | None] | pa.Array,
    vectors: np.ndarray,
    dtype: str | VectorDtype = VectorDtype.FLOAT16,
) -> pa.Table:
    """A table in `embeddings_schema`; vectors [n, dim] become a fixed_size_list column, no Python loop."""
    dtype = VectorDtype.parse(dtype)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ConfigError(f"vectors must be a 2-D array [n, dim], got shape {vectors.shape}")
    rows = np.asarray(rows, dtype=np.int64)
    n, dim = vectors.shape
    if not (len(rows) == len(ids) == len(qids) == n):
        raise IndexMismatchError(
            f"embeddings columns differ in length: rows {len(rows)}, ids {len(ids)}, qids {len(qids)}, vectors {n}"
        )
    values = pa.array(np.ascontiguousarray(vectors, dtype=dtype.value).reshape(-1), type=dtype.arrow)
    return pa.Table.from_arrays(
        [
            pa.array(rows, type=pa.int64()),
            pa.array(ids, type=pa.string()),
            pa.array(qids, type=pa.string()),
            pa.FixedSizeListArray.from_arrays(values, dim),
        ],
        schema=embeddings_schema(dim, dtype),
    )


def table_to_vectors(column: pa.Table | pa.ChunkedArray | pa.Array, dtype: Any = np.float32) -> np.ndarray:
    """The `vector` column (or a table holding it) as a [n, dim] numpy array of `dtype`."""
    if isinstance(column, pa.Table):
        column = column.column("vector")
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not pa.types.is_fixed_size_list(column.type):
        raise IndexMismatchError(
            f"vector column has type {column.type}, expected fixed_size_list<float>[dim]"
        )
    dim = column.type.list_size
    parts = []
    for chunk in chunks:
        if chunk.null_count:
            raise IndexMismatchError(f"vector column has {chunk.null_count} null vectors")
        parts.append(chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim))
    if not parts:
        return np.empty((0, dim), dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


def write_embeddings_part(
    url_dir: str,
    part_name: str,
    rows: Sequence[int] | np.ndarray,
    ids: Sequence[str] | pa.Array,
    qids: Sequence[str | None] | pa.Array,
    vectors: np.ndarray,
    dtype: str | VectorDtype = VectorDtype.FLOAT16,
) -> str:
    """Write one part atomically, then its record; return its path for the manifest.

    Name parts after the input shard they cover, so a re-run overwrites instead of duplicating rows.
    """
    if "/" in part_name or not part_name or part_name.endswith(".parquet"):
        raise ConfigError(f"part_name must be a plain name without suffix, got {part_name!r}")
    table = embeddings_to_table(rows, ids, qids, vectors, dtype)
    _store(url_dir).write(part_name, {VECTORS: table}, counts={"rows": table.num_rows})
    return part_path(part_name)


def part_path(part_name: str) -> str:
    """Where part `part_name` lives in an embeddings folder (the path its manifest lists)."""
    return PartStore.relative(VECTORS, part_name)


def written_parts(url_dir: str) -> set[str]:
    """Names of the parts whose files match their records: the ones a resumed job skips."""
    return set(_store(url_dir).done())


def _store(url_dir: str) -> PartStore:
    return PartStore(url_dir, (VECTORS,))


def write_manifest(url_dir: str, manifest: EmbeddingsManifest) -> None:
    """Write `manifest.json` last: a directory with a manifest is complete."""
    for part in manifest.parts:
        if not fs.exists(fs.join(url_dir, part)):
            raise EmbeddingsNotFoundError(
                f"{fs.join(url_dir, part)} is missing; write every part before the manifest"
            )
    fs.write_json_atomic(fs.join(url_dir, MANIFEST), manifest.to_dict())


def read_manifest(url_dir: str) -> EmbeddingsManifest:
    url = fs.join(url_dir, MANIFEST)
    if not fs.exists(url):
        raise EmbeddingsNotFoundError(
            f"no embeddings at {url_dir}: {MANIFEST} is missing (the job did not finish)"
        )
    return EmbeddingsManifest.from_dict(fs.read_json(url))


def read_embeddings(url_dir: str, dtype: Any = np.float32) -> tuple[np.ndarray, EmbeddingsManifest]:
    """All vectors of a directory as [count, dim] in row order, with the manifest.

    Raises:
        EmbeddingsNotFoundError: no manifest, or a part it lists is missing.
        IndexMismatchError: a part's dim or dtype differ from the manifest, or rows 0..count-1 are not each
            present exactly once (the message names the missing or repeated rows).
    """
    manifest = read_manifest(url_dir)
    vectors = np.zeros((manifest.count, manifest.dim), dtype=dtype)
    counts = np.zeros(manifest.count, dtype=np.int32)
    expected_type = pa.list_(VectorDtype.parse(manifest.dtype).arrow, manifest.dim)
    for part in manifest.parts:
        url = fs.join(url_dir, part)
        table = read_part(url_dir, part, ["row", "vector"])
        if table.column("vector").type != expected_type:
            raise IndexMismatchError(
                f"{url}: vector type {table.column('vector').type}, manifest says {expected_type}"
            )
        rows = table.column("row").to_numpy()
        outside = rows[(rows < 0) | (rows >= manifest.count)]
        if len(outside):
            raise IndexMismatchError(f"{url}: row {int(outside[0])} outside 0..{manifest.count - 1}")
        counts += np.bincount(rows, minlength=manifest.count).astype(np.int32)
        vectors[rows] = table_to_vectors(table.column("vector"), dtype)
    _check_counts(counts, url_dir)
    return vectors, manifest


def read_part(url_dir: str, part: str, columns: list[str]) -> pa.Table:
    """`columns` of one part its manifest lists (`part` relative to `url_dir`).

    Raises:
        EmbeddingsNotFoundError: the part's file is missing.
    """
    url = fs.join(url_dir, part)
    filesystem, path = fs.filesystem(url)
    if not filesystem.exists(path):
        raise EmbeddingsNotFoundError(f"{url} is missing; {MANIFEST} lists it (re-run the embedding job)")
    with filesystem.open(path, "rb") as f:
        return pq.read_table(f, columns=columns)


def _check_counts(counts: np.ndarray, url_dir: str) -> None:
    for problem, rows in (("missing", np.flatnonzero(counts == 0)), ("repeated", np.flatnonzero(counts > 1))):
        if len(rows):
            shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
            raise IndexMismatchError(
                f"{url_dir}: {len(rows)} rows {problem} ({shown}); re-run the embedding job for the parts holding them"
            )
