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
from typing import Any

from elcore.catalogue import EntityCatalogue
from elcore.embeddings import EmbeddingsManifest, cache_url, part_path, write_manifest, written_parts
from elcore.errors import ConfigError

from .common import IO_TASK_CPUS, init_ray, model_fingerprint, prepare_output, track
from .entity_encoder import EntityEncoder, part_table, write_part
from .options import run_command_line
from .stage_configs import EmbedEntitiesConfig


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
