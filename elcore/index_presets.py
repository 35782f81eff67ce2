"""Index presets: `IndexSpec` (what to build and how to search it), the `IndexKind` presets and the
sizing maths of `ivfpq` / `compact` (lists, sub-quantizers, rotation, bytes per entity). No faiss
here: `elcore.index` turns a spec into faiss indexes.

    >>> IndexSpec("compact").factory_string(dim=384, ntotal=6_000_000)
    'OPQ112_448,IVF1680,PQ112x8'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import numpy as np

from .errors import ConfigError


class IvfPqLayout(NamedTuple):
    """An IVF-PQ index's shape: lists, sub-quantizers (code bytes at 8 bits), bits per code, and the
    dims an OPQ rotation maps to (0: no rotation)."""

    nlist: int
    m: int
    bits: int
    rotated_dim: int


class IndexKind(str, Enum):
    FLAT = "flat"  # exact, float32 (IndexFlatIP)
    FLAT_FP16 = "flat-fp16"  # exact search over float16 storage (scalar quantizer fp16)
    SQ8 = "sq8"  # 8-bit scalar quantizer, trained
    HNSW = "hnsw"  # HNSW graph over float32 vectors
    IVFPQ = "ivfpq"  # inverted lists + product quantizer, trained; nlist/m chosen from n and dim
    COMPACT = "compact"  # <= 128 bytes/entity: OPQ rotation, inverted lists, as many 8-bit PQ codes as fit
    GPU_FLAT = "gpu-flat"  # exact, float16 vectors searched by a torch matmul on the device (no faiss)


# `compact` visits this share of its lists: entity vectors are not well clustered, so the nearest entity
# is often outside the lists closest to the query (kit vectors, 1-recall@10: 0.980 at 20%, 0.988 at 30%).
COMPACT_PROBE_SHARE = 0.3
# Training points for 8-bit (256-centroid) codebooks at faiss' 39 points per centroid.
_FULL_CODEBOOK_SAMPLE = 256 * 39
# `compact`'s budget: codes + 8-byte ids + its share of the centroids, rotation and codebooks.
COMPACT_BYTES_PER_ENTITY = 128
_COMPACT_MIN_CODE_BYTES = 64  # fewer code bytes lose too much recall to be worth the saving


def compact_bytes_per_entity(dim: int, ntotal: int, nlist: int, m: int, rotated_dim: int) -> float:
    """Bytes per entity of an IVF-PQ index with 8-bit codes (faiss' serialized size, to within a byte):
    codes, ids, and the float32 coarse centroids, OPQ matrix and PQ codebooks shared by `ntotal`."""
    space = rotated_dim or dim
    shared = 4 * space * (nlist + 256 + (dim if rotated_dim else 0))
    return m + 8 + shared / max(1, ntotal)


def _sub_quantizer_choices(dim: int, *, rotate: bool, most: int) -> list[int]:
    """Sub-quantizer counts of >= 2 dims each, at most `most`: divisors of dim, and with a rotation that
    pads to a multiple of m also multiples of 8."""
    top = max(1, min(most, dim // 2))
    return [m for m in range(1, top + 1) if dim % m == 0 or (rotate and m % 8 == 0)]


def _rotated_dim(dim: int, m: int) -> int:
    """The dims an OPQ rotation for m sub-quantizers maps `dim` to: the next multiple of m."""
    return m * math.ceil(dim / m)


def _compact_sub_quantizers(dim: int, ntotal: int, nlist: int, rotate: bool) -> int:
    """The most sub-quantizers that keep `compact` within `COMPACT_BYTES_PER_ENTITY`.

    On small catalogues (under ~27k entities at 384 dims, more at larger dims) the shared tables would
    leave fewer than `_COMPACT_MIN_CODE_BYTES` for the codes; there the codes and ids take the budget
    and the tables, a few MB in all, are not counted.
    """
    budget = COMPACT_BYTES_PER_ENTITY
    choices = _sub_quantizer_choices(dim, rotate=rotate, most=budget)

    def size(m: int) -> float:
        return compact_bytes_per_entity(dim, ntotal, nlist, m, _rotated_dim(dim, m) if rotate else 0)

    fitting = [m for m in choices if size(m) <= budget]
    if not fitting or max(fitting) < min(_COMPACT_MIN_CODE_BYTES, max(choices)):
        fitting = [m for m in choices if m + 8 <= budget]
    return max(fitting or choices[:1])


@dataclass(frozen=True)
class IndexSpec:
    """What index to build and how to search it.

    Args:
        kind: a preset (flat, flat-fp16, sq8, hnsw, ivfpq, compact: <= 128 B/entity) or any faiss factory
            string (e.g. "IVF256,SQ8").
        rerank: if > 0, fetch max(k, rerank) candidates and re-rank them exactly with float16 copies of
            the vectors kept beside the index.
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW build beam width.
        ef_search: HNSW search beam width.
        nlist: IVF lists (default: chosen from the number of vectors).
        pq_m: PQ sub-quantizers (default: chosen from the dimension).
        pq_bits: bits per PQ code (default: chosen from the number of vectors).
        nprobe: IVF lists visited per query (default 16; compact: 30% of its lists).
        train_size: at most this many vectors (a seeded sample) train a trained index type.
        seed: seed of that sample.
    """

    kind: IndexKind | str = IndexKind.FLAT
    rerank: int = 0
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nlist: int | None = None
    pq_m: int | None = None
    pq_bits: int | None = None
    nprobe: int | None = None
    train_size: int = 65_536
    seed: int = 0

    def __post_init__(self) -> None:
        kind = self.kind
        if not isinstance(kind, IndexKind):
            if not isinstance(kind, str) or not kind.strip():
                raise ConfigError(f"index kind must be a preset ({presets_text()}) or a faiss factory string")
            try:
                kind = IndexKind(kind)
            except ValueError:
                pass  # a faiss factory string, checked when the index is created
            object.__setattr__(self, "kind", kind)
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe", "train_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"IndexSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.rerank < 0:
            raise ConfigError(f"IndexSpec.rerank must be >= 0 (0 = no re-ranking), got {self.rerank}")

    @property
    def kind_name(self) -> str:
        return self.kind.value if isinstance(self.kind, IndexKind) else self.kind

    def factory_string(self, dim: int, ntotal: int) -> str:
        """The faiss factory string this spec builds for `ntotal` vectors of `dim` dimensions."""
        if self.kind is IndexKind.FLAT:
            return "Flat"
        if self.kind is IndexKind.GPU_FLAT:
            return "torch:fp16-flat"
        if self.kind is IndexKind.FLAT_FP16:
            return "SQfp16"
        if self.kind is IndexKind.SQ8:
            return "SQ8"
        if self.kind is IndexKind.HNSW:
            return f"HNSW{self.hnsw_m},Flat"
        if self.kind in (IndexKind.IVFPQ, IndexKind.COMPACT):
            layout = self.ivfpq_layout(dim, ntotal)
            rotation = ""
            if layout.rotated_dim:
                padded = f"_{layout.rotated_dim}" if layout.rotated_dim != dim else ""
                rotation = f"OPQ{layout.m}{padded},"
            return f"{rotation}IVF{layout.nlist},PQ{layout.m}x{layout.bits}"
        return str(self.kind)

    def sample_size(self, ntotal: int) -> int:
        """Vectors that train an index of `ntotal`: at most `train_size`."""
        return max(1, min(ntotal, self.train_size))

    def nprobe_for(self, nlist: int) -> int:
        """IVF lists to visit per query, at most `nlist`."""
        if self.nprobe is not None:
            return min(self.nprobe, nlist)
        if self.kind is IndexKind.COMPACT:
            return max(1, math.ceil(COMPACT_PROBE_SHARE * nlist))
        return min(16, nlist)

    def ivfpq_layout(self, dim: int, ntotal: int) -> IvfPqLayout:
        """The `ivfpq` and `compact` presets' parameters for `ntotal` vectors of `dim` dimensions.

        Lists: ~4 sqrt(n) (`compact`: 2 sqrt(n), so its centroids stay small beside the codes) with >= 39
        training points each. Codes: 8 bits once the sample allows 256 centroids per sub-quantizer.
        Sub-quantizers: `ivfpq` takes the largest divisor of dim up to 64; `compact` takes as many as fit
        `COMPACT_BYTES_PER_ENTITY` with the ids, centroids and rotation (`compact_bytes_per_entity`), and
        learns an OPQ rotation when the sample is big enough for 8-bit codebooks; the rotation maps to
        `m * ceil(dim / m)` dims, so m need not divide dim (384 dims: 112 sub-quantizers over 448).
        """
        compact = self.kind is IndexKind.COMPACT
        n_train = self.sample_size(ntotal)
        full_codebooks = n_train >= _FULL_CODEBOOK_SAMPLE
        nlist = self.nlist or max(1, min(int((2 if compact else 4) * math.sqrt(ntotal)), n_train // 39))
        bits = self.pq_bits or (8 if full_codebooks else int(np.clip(np.log2(n_train / 16), 4, 8)))
        rotate = compact and full_codebooks
        if self.pq_m:
            m = self.pq_m
        elif compact:
            m = _compact_sub_quantizers(dim, ntotal, nlist, rotate)
        else:
            m = max(_sub_quantizer_choices(dim, rotate=False, most=64))
        if not rotate and dim % m:
            raise ConfigError(f"IndexSpec.pq_m={m} must divide the vector dim {dim}")
        return IvfPqLayout(nlist, m, bits, _rotated_dim(dim, m) if rotate else 0)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "kind": self.kind_name}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> IndexSpec:
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ConfigError(f"unknown IndexSpec fields {unknown}; allowed: {sorted(allowed)}")
        return cls(**value)


def presets_text() -> str:
    return ", ".join(kind.value for kind in IndexKind)
