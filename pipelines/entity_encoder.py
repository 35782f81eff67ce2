"""The pieces `embed-entities` composes: the catalogue cut into parts, the encoder actor, the part writer.

A part is one row of `part_table` (its name, first row, and its entities as list columns), so a Ray Data
block is a whole part and every actor of the pool gets work; `EntityEncoder` turns it into float32 vectors
and `write_part` stores them with their record (`elcore.embeddings`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from elcore import settings
from elcore.catalogue import EntityCatalogue
from elcore.embeddings import write_embeddings_part

from .common import part_name


class EntityEncoder:
    """Ray Data adapter: the entity encoder loaded once per actor; a row is one part of the catalogue
    (list columns `title`, `text`), the output row the same part with its float32 vectors as bytes."""

    def __init__(
        self, model_dir: str, batch_size: int, precision: str, torch_threads: int, use_gpu: bool
    ) -> None:
        import torch

        from elcore.model import ElqModel

        settings.hf_offline()
        torch.set_num_threads(torch_threads)
        device = "cuda" if use_gpu else "cpu"
        self.model = ElqModel.from_pretrained(model_dir).to(device).eval()
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(
            precision, torch.float16 if use_gpu else torch.float32
        )
        self.model.to(dtype)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from elcore.encoding import encode_entities

        vectors = []
        for titles, texts in zip(batch["title"], batch["text"], strict=True):
            entities = list(zip(titles.tolist(), texts.tolist(), strict=True))
            vectors.append(encode_entities(self.model, entities, self.batch_size, progress=False).tobytes())
        return {
            "part": batch["part"],
            "start": batch["start"],
            "id": batch["id"],
            "qid": batch["qid"],
            "vectors": vectors,
        }


def write_part(row: dict[str, Any], output: str, dim: int, dtype: str) -> dict[str, Any]:
    """Write one part's vectors (rows start.. in catalogue order) and its record; return its name and count."""
    vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dim)
    rows = np.arange(int(row["start"]), int(row["start"]) + len(vectors), dtype=np.int64)
    write_embeddings_part(output, str(row["part"]), rows, list(row["id"]), list(row["qid"]), vectors, dtype)
    return {"part": str(row["part"]), "count": len(vectors)}


def part_table(catalogue: EntityCatalogue, rows_per_part: int) -> pa.Table:
    """One row per part: name, first row, and the part's id/qid/title/text as list columns (no copy)."""
    n = len(catalogue)
    offsets = pa.array(list(range(0, n, rows_per_part)) + [n], type=pa.int32())
    columns = {name: catalogue.table.column(name).combine_chunks() for name in ("id", "qid", "title", "text")}
    starts = list(range(0, n, rows_per_part))
    return pa.table(
        {
            "part": [part_name(i) for i in range(len(starts))],
            "start": pa.array(starts, type=pa.int64()),
            **{name: pa.ListArray.from_arrays(offsets, values) for name, values in columns.items()},
        }
    )
