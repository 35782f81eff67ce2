"""Vectors out of a loaded IVF-PQ fast-scan index, which faiss 1.15 cannot give back itself: it reads
the packed 4-bit codes (interleaved in blocks of 32 for its SIMD kernels) as if they were plain ones,
and its own reconstruct crashes. The codes are gathered from the blocks with numpy, then PQ-decoded
and rotated back; `FaissIndex.score_ids` uses this for fast-scan indexes.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np


def fast_scan_blocks(index: faiss.Index) -> list[np.ndarray]:
    """`[blocks, block bytes]` views of every inverted list's packed codes (no copy)."""
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    views = []
    for number in range(lists.nlist):
        count = -(-lists.list_size(number) // lists.n_per_block)
        if count == 0:
            views.append(np.zeros((0, lists.block_size), dtype=np.uint8))
            continue
        data = faiss.rev_swig_ptr(lists.get_codes(number), count * lists.block_size)
        views.append(data.reshape(count, lists.block_size))
    return views


def reconstruct_fast_scan(index: faiss.Index, ids: np.ndarray, blocks_of: list[np.ndarray]) -> np.ndarray:
    """Vectors of `ids` in an IVF-PQ fast-scan index, decoded here: faiss 1.15 reads a loaded index's
    packed (4-bit, interleaved in blocks) codes as if they were plain ones, and its own reconstruct
    crashes. The codes are gathered from the blocks with numpy (`_pq4_layout`), then PQ-decoded."""
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    per_block, block_bytes = lists.n_per_block, lists.block_size
    layout = _pq4_layout(lists.packer, per_block, block_bytes, ivf.code_size)
    keys = np.fromiter((ivf.direct_map.get(entity) for entity in ids.tolist()), np.int64, len(ids))
    numbers, offsets = keys >> 32, keys & 0xFFFFFFFF
    blocks = np.zeros((len(ids), block_bytes), dtype=np.uint8)
    for n, (number, offset) in enumerate(zip(numbers.tolist(), offsets.tolist(), strict=True)):
        blocks[n] = blocks_of[number][offset // per_block]
    nibble_at = layout[offsets % per_block]  # [n, sub-quantizers]: nibble positions in the block
    nibbles = (np.take_along_axis(blocks, nibble_at // 2, axis=1) >> (4 * (nibble_at % 2))) & 15
    codes = (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8)
    vectors = ivf.pq.decode(codes)
    if ivf.by_residual:
        vectors += ivf.quantizer.reconstruct_batch(numbers)
    outer = faiss.downcast_index(index)
    if isinstance(outer, faiss.IndexPreTransform):
        for k in reversed(range(outer.chain.size())):
            vectors = outer.chain.at(k).reverse_transform(vectors)
    return vectors


_PQ4_LAYOUTS: dict[tuple[int, int, int], np.ndarray] = {}


def _pq4_layout(packer: Any, per_block: int, block_bytes: int, code_size: int) -> np.ndarray:
    """`[per_block, 2 * code_size]`: where in a packed block (nibble number: byte * 2 + high half) each
    element's 4-bit code of each sub-quantizer sits, found once by packing one-hot codes."""
    key = (per_block, block_bytes, code_size)
    if key not in _PQ4_LAYOUTS:
        layout = np.zeros((per_block, 2 * code_size), dtype=np.int64)
        for element in range(per_block):
            for q in range(2 * code_size):
                code = np.zeros(code_size, dtype=np.uint8)
                code[q // 2] = 15 << (4 * (q % 2))
                block = np.zeros((1, block_bytes), dtype=np.uint8)
                packer.pack_1(code, element, block)
                (byte,) = np.flatnonzero(block[0])
                layout[element, q] = 2 * byte + int(block[0, byte] >> 4 == 15)
        _PQ4_LAYOUTS[key] = layout
    return _PQ4_LAYOUTS[key]
