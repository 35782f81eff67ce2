"""`EmbeddingRows`: the vectors of an embeddings folder as a [count, dim] array-like, read on demand by row.

An index is trained on a sample and built shard by shard without any process holding every vector:
`elcore.index.train_empty_index` samples from it as from an array, and a shard reads its row range. Only
the parts that hold some of the wanted rows are read (their row ranges are listed once, from the `row`
column alone).

    >>> rows = EmbeddingRows.open("s3://b/emb")
    >>> rows.read(np.arange(1000, 2000)).shape
    (1000, 384)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .embeddings import EmbeddingsManifest, read_manifest, read_part, table_to_vectors
from .errors import IndexMismatchError


class EmbeddingRows:
    """An embeddings folder by row. `part_rows` lists (part, first row, last row) per non-empty part."""

    ndim = 2

    def __init__(self, url: str, manifest: EmbeddingsManifest, part_rows: list[tuple[str, int, int]]) -> None:
        self.url, self.manifest, self.part_rows = url, manifest, part_rows
        self.shape = (manifest.count, manifest.dim)

    @classmethod
    def open(cls, url: str) -> EmbeddingRows:
        """Read the manifest and each part's row range.

        Raises:
            EmbeddingsNotFoundError: no manifest, or a part it lists is missing.
        """
        manifest = read_manifest(url)
        ranges = []
        for part in manifest.parts:
            rows = read_part(url, part, ["row"]).column("row").to_numpy()
            if len(rows):
                ranges.append((part, int(rows.min()), int(rows.max())))
        return cls(url, manifest, ranges)

    @property
    def dtype(self) -> type:
        """The stored precision, as the numpy type to read vectors in without losing any."""
        return np.float16 if self.manifest.dtype == "float16" else np.float32

    def __len__(self) -> int:
        return self.manifest.count

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.read(np.arange(len(self)), dtype or np.float32)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        return self.read(rows)

    def read(self, rows: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Vectors of `rows` (distinct, in that order), reading only the parts that hold some of them.

        Raises:
            IndexMismatchError: a row is in no part.
        """
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.manifest.dim), dtype=dtype)
        found = np.zeros(len(rows), dtype=bool)
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        lo, hi = (int(wanted[0]), int(wanted[-1])) if len(rows) else (0, -1)
        for part, first, last in self.part_rows:
            if last < lo or first > hi:
                continue
            table = read_part(self.url, part, ["row", "vector"])
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
