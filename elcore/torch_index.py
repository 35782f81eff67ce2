"""`gpu-flat`: exact inner-product search as a torch matmul over float16 vectors on the linker's device.

For GPU nodes, where it needs no faiss: a 6M x 384 catalogue takes 4.6 GB of GPU memory and one
matmul per batch of queries. On a CPU it works too (blocks are multiplied in float32), which is how
it is tested. Saved like the faiss indexes: `index.json` (type `torch-flat`) and one `.npy` of
float16 vectors.

    >>> index = TorchFlatIndex.build(vectors, device="cuda")
    >>> index.search(queries, k=10).ids
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import fs
from .errors import IndexMismatchError, IndexNotFoundError
from .index import EntityIndex, IndexKind, IndexSpec, SearchResult
from .index_files import write_manifest

TYPE = "torch-flat"
VECTORS_FILE = "vectors-fp16-00000.npy"
_BLOCK_ROWS = 1 << 20  # entity rows multiplied at a time, so the score matrix stays small


class TorchFlatIndex(EntityIndex):
    """Exact search over float16 entity vectors held as a torch tensor on `device`."""

    def __init__(self, vectors: torch.Tensor, metadata: dict[str, Any] | None = None) -> None:
        self.vectors = vectors.to(torch.float16)
        self.spec = IndexSpec(IndexKind.GPU_FLAT)
        self.metadata = dict(metadata or {})

    @classmethod
    def build(
        cls, vectors: np.ndarray, metadata: dict[str, Any] | None = None, device: str | None = None
    ) -> TorchFlatIndex:
        from .settings import device as default_device

        table = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float16))
        return cls(table.to(device or default_device()), metadata)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    def _queries(self, queries: np.ndarray) -> torch.Tensor:
        q = torch.as_tensor(np.asarray(queries, dtype=np.float32)).to(self.vectors.device)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise IndexMismatchError(f"queries must be [n, {self.dim}], got {tuple(q.shape)}")
        return q.to(self._compute_dtype)

    @property
    def _compute_dtype(self) -> torch.dtype:
        # CPU kernels for float16 matmul are slow (or missing); GPUs multiply float16 natively.
        return torch.float16 if self.vectors.is_cuda else torch.float32

    @torch.inference_mode()
    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        q = self._queries(queries)
        best_scores = torch.full((len(q), 0), -torch.inf, device=q.device)
        best_ids = torch.zeros((len(q), 0), dtype=torch.long, device=q.device)
        for lo in range(0, self.ntotal, _BLOCK_ROWS):
            block = self.vectors[lo : lo + _BLOCK_ROWS].to(self._compute_dtype)
            scores, ids = (q @ block.T).float().topk(min(k, len(block)), dim=1)
            best_scores = torch.cat([best_scores, scores], dim=1)
            best_ids = torch.cat([best_ids, ids + lo], dim=1)
            if best_scores.shape[1] > k:
                best_scores, keep = best_scores.topk(k, dim=1)
                best_ids = best_ids.gather(1, keep)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        found = best_scores.shape[1]
        scores[:, :found], ids[:, :found] = best_scores.cpu().numpy(), best_ids.cpu().numpy()
        return SearchResult(scores, ids)

    @torch.inference_mode()
    def score_ids(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        q = self._queries(queries)
        rows = torch.as_tensor(np.asarray(ids, dtype=np.int64)).to(q.device)
        vectors = self.vectors[rows.clamp(min=0)].to(q.dtype)  # [n, c, dim]
        scores = torch.einsum("nd,ncd->nc", q, vectors).float()
        return torch.where(rows >= 0, scores, -torch.inf).cpu().numpy()

    def save(self, url: str) -> None:
        fs.makedirs(url)
        with fs.atomic_writer(fs.join(url, VECTORS_FILE)) as f:
            np.save(f, self.vectors.cpu().numpy(), allow_pickle=False)
        write_manifest(url, TYPE, self.spec, self.dim, [self.ntotal], self.metadata)

    def serialized_size(self) -> int:
        return self.vectors.numel() * 2

    @classmethod
    def read(cls, url: str, manifest: dict[str, Any], device: str | None = None) -> TorchFlatIndex:
        vectors_url = fs.join(url, VECTORS_FILE)
        if not fs.exists(vectors_url):
            raise IndexNotFoundError(f"{vectors_url} is missing; index.json lists a {TYPE} index there")
        filesystem, path = fs.filesystem(vectors_url)
        with filesystem.open(path, "rb") as f:
            vectors = np.load(f, allow_pickle=False)
        return cls.build(vectors, manifest.get("metadata"), device)
