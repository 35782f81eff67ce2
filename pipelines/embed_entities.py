"""`embed-entities` on Ray Data: every catalogue entity's vector, as Parquet parts plus `manifest.json`.

    catalogue -> parts of `rows_per_part` rows, one block each -> map_batches(EntityEncoder, actor pool)
              -> map(write_part) -> manifest.json (model and catalogue fingerprints, dim, dtype, count)

The Parquet layout is `elcore.embeddings` (row, id, qid, vector: fixed_size_list<float16|float32>[dim]);
plain pyarrow reads it, `elcore.embeddings.read_embeddings` checks it. A part is named by its number in row
order and written with its record (rows, bytes, sha256; `elcore.parts`), so a re-run for the same model and
catalogue skips the parts whose files are whole and writes missing or damaged ones again. The catalogue is
read once on the driver (its fingerprint hashes all of it); the actors get the entities with the work.

    python -m pipelines.embed_entities --catalogue kb/entities.jsonl --model runs/linker --output s3://b/emb
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from elcore import settings
from elcore.catalogue import EntityCatalogue
from elcore.embeddings import (
    EmbeddingsManifest,
    VectorDtype,
    cache_url,
    part_path,
    write_embeddings_part,
    write_manifest,
    written_parts,
)
from elcore.errors import ConfigError

from .common import (
    IO_TASK_CPUS,
    ActorResources,
    init_ray,
    model_fingerprint,
    part_name,
    prepare_output,
    track,
)
from .options import run_command_line

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass
class EmbedEntitiesConfig:
    """Encode a catalogue's entities with a model's entity encoder into Parquet parts and a manifest."""

    catalogue: str = field(metadata={"help": "catalogue: jsonl(.gz) or Parquet file/folder, any fsspec URL"})
    model: str = field(metadata={"help": "model or linker directory (its entity encoder is used)"})
    output: str | None = field(
        default=None, metadata={"help": "embeddings folder (default: the cache for this model and catalogue)"}
    )
    dtype: str = field(default="float16", metadata={"help": "stored vector type: float16 or float32"})
    rows_per_part: int = field(
        default=10_000, metadata={"help": "entities per Parquet part (the resume unit)"}
    )
    batch_size: int = field(default=64, metadata={"help": "entities per encoder call (grouped by length)"})
    resources: ActorResources = field(default_factory=ActorResources)
    precision: str = field(
        default="auto", metadata={"help": "auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16"}
    )
    address: str | None = field(
        default=None, metadata={"help": "Ray address ('auto': the `ray start` cluster)"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace output left by a different job"})

    def validate(self) -> EmbedEntitiesConfig:
        VectorDtype.parse(self.dtype)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} not supported; use one of {list(PRECISIONS)}")
        for name in ("rows_per_part", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        return self


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


def run(config: EmbedEntitiesConfig) -> dict[str, Any]:
    """Embed every entity; parts already written by the same job are kept. Returns a summary.

    Raises:
        CatalogueNotFoundError, InputRecordError: the catalogue is missing or invalid.
        ConfigError: a setting is out of range, or `output` holds another job's parts (see `--overwrite`).
    """
    config.validate()
    started = time.perf_counter()
    catalogue = EntityCatalogue.load(config.catalogue)
    if len(catalogue) == 0:
        raise ConfigError(f"{config.catalogue}: the catalogue is empty; nothing to embed")
    model = model_fingerprint(config.model)
    output = config.output or cache_url(model["entity_fingerprint"], catalogue.fingerprint)
    job = {
        "stage": "embed-entities",
        "model": model,
        "catalogue": catalogue.fingerprint,
        "count": len(catalogue),
        "dtype": config.dtype,
        "rows_per_part": config.rows_per_part,
    }
    done = written_parts(output) if prepare_output(output, job, config.overwrite) else set()
    parts = part_table(catalogue, config.rows_per_part)
    todo = [i for i, name in enumerate(parts.column("part").to_pylist()) if name not in done]
    if todo:
        import ray

        init_ray(config.address)
        plan = config.resources.plan()
        written = (
            ray.data.from_arrow([parts.take([i]) for i in todo])  # one block per part: every actor gets work
            .map_batches(
                EntityEncoder,
                fn_constructor_kwargs={
                    "model_dir": config.model,
                    "batch_size": config.batch_size,
                    "precision": config.precision,
                    "torch_threads": plan.torch_threads,
                    "use_gpu": config.resources.use_gpu,
                },
                batch_size=1,
                batch_format="numpy",
                compute=plan.pool(len(todo)),
                **plan.remote_args(),
            )
            .map(
                write_part,
                fn_kwargs={"output": output, "dim": model["dim"], "dtype": config.dtype},
                num_cpus=IO_TASK_CPUS,
            )
        )
        for _ in track(written.iter_rows(), "embed entities", total=len(todo), count="count"):
            pass
    names = [part_path(name) for name in parts.column("part").to_pylist()]
    write_manifest(
        output,
        EmbeddingsManifest(
            model_fingerprint=model["entity_fingerprint"],
            catalogue_fingerprint=catalogue.fingerprint,
            dim=model["dim"],
            dtype=config.dtype,
            count=len(catalogue),
            parts=names,
        ),
    )
    seconds = time.perf_counter() - started
    embedded = sum(min(config.rows_per_part, len(catalogue) - i * config.rows_per_part) for i in todo)
    return {
        "output": output,
        "count": len(catalogue),
        "dim": model["dim"],
        "dtype": config.dtype,
        "parts": len(names),
        "parts_written": len(todo),
        "parts_skipped": len(names) - len(todo),
        "seconds": round(seconds, 3),
        "entities_per_second": round(embedded / max(seconds, 1e-9), 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command_line(EmbedEntitiesConfig, run, "embed-entities", argv)


if __name__ == "__main__":
    main()
