"""`link-corpus` on Ray Data: a text collection -> Parquet of links plus one status row per input record.

    read units (`corpus_input.plan_units`: a file, or a group of .txt files)
      -> map_batches(read_units): parse records into parts of `docs_per_part` documents
      -> spread (one part per block, so every actor gets work)
      -> map_batches(CorpusLinker, actor pool): `elcore.linker.Linker` on each document; retrieval from
         the index inside each actor, or from index shards held by `ShardServer` actors (`--retrieval
         shards`, for an index too big for one node)
      -> map(write_part): the part's links and status tables, then its record (`corpus_output`)

Inputs: jsonl (one object per line), Parquet, or a folder of `.txt` files (one document each), local or any
fsspec URL; `id_field`/`text_field` name the columns. Every input record gets a status row: `linked`,
`no_links`, or `failed` with the reason (bad bytes or JSON, missing or non-string text, a linker error). A
re-run of the same job skips the parts whose record verifies, rewrites the others whole, and links files
added to the input since: no row is lost or duplicated.

    python -m pipelines.link_corpus --input s3://b/docs/ --output s3://b/links --model runs/linker
"""

from __future__ import annotations

import time
from typing import Any

from elcore import fs
from elcore.catalogue import EntityCatalogue
from elcore.index_files import manifest_fingerprint

from .common import IO_TASK_CPUS, dataset_of, init_ray, model_fingerprint, prepare_output, spread, track
from .corpus_input import INPUTS_FILE, input_format, plan_units, planned_inputs, read_units
from .corpus_linker import CorpusLinker
from .corpus_output import RunTally, output_store, write_part
from .options import run_command_line
from .shard_servers import start_shard_servers
from .stage_configs import LinkCorpusConfig


def run(config: LinkCorpusConfig) -> dict[str, Any]:
    """Link the collection; parts written by an earlier run of the same job are kept. Returns a summary.

    Raises:
        ConfigError: bad settings, no input or no index, or `output` holds another job's output.
    """
    config.validate()
    started = time.perf_counter()
    index_url, catalogue_url = config.index_url(), config.catalogue_url()
    fmt = input_format(config.input, config.format)
    job = {
        "stage": "link-corpus",
        "model": model_fingerprint(config.model),
        "catalogue": EntityCatalogue.load(catalogue_url).fingerprint,
        "index": manifest_fingerprint(index_url),
        "input": config.input,
        "format": fmt,
        "fields": [config.id_field, config.text_field],
        "docs_per_part": config.docs_per_part,
        "overrides": config.inference.config_values(),
    }
    resumed = prepare_output(config.output, job, config.overwrite)
    inputs_url = fs.join(config.output, INPUTS_FILE)
    known = fs.read_json(inputs_url) if resumed and fs.exists(inputs_url) else None
    units = plan_units(config.input, fmt, config.docs_per_part, known)
    fs.write_json_atomic(inputs_url, planned_inputs(units))
    store = output_store(config.output)
    done = frozenset(store.done()) if resumed else frozenset()
    init_ray(config.address)
    plan = config.resources.plan()
    shards = start_shard_servers(index_url, config.shard_cpus) if config.retrieval == "shards" else None
    parts = spread(
        dataset_of(units).map_batches(
            read_units,
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={
                "fmt": fmt,
                "root": config.input,
                "id_field": config.id_field,
                "text_field": config.text_field,
                "docs_per_part": config.docs_per_part,
                "done": done,
            },
            num_cpus=IO_TASK_CPUS,
        )
    )
    linked = parts.map_batches(
        CorpusLinker,
        fn_constructor_kwargs={
            "model_dir": config.model,
            "catalogue": catalogue_url,
            "index": index_url,
            "shards": shards,
            "batch_size": config.batch_size,
            "overrides": config.inference.config_values(),
            "torch_threads": plan.torch_threads,
            "use_gpu": config.resources.use_gpu,
        },
        batch_size=1,
        batch_format="numpy",
        compute=plan.pool(plan.num_actors),
        **plan.remote_args(),
    ).map(write_part, fn_kwargs={"output": config.output}, num_cpus=IO_TASK_CPUS)
    tally = RunTally(started)
    for row in track(
        linked.iter_rows(), "link corpus", total=1.0, weight="weight", count="docs", skipped="skipped"
    ):
        tally.add(row)
    summary = {
        "output": config.output,
        "format": fmt,
        "retrieval": config.retrieval,
        "actors": plan.num_actors,
        **tally.summary(store.records()),  # every part was verified at the start or written by this run
    }
    fs.write_json_atomic(fs.join(config.output, "summary.json"), summary)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command_line(LinkCorpusConfig, run, "link-corpus", argv)


if __name__ == "__main__":
    main()
