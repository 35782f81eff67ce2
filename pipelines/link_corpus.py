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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from elcore import fs, settings
from elcore.catalogue import EntityCatalogue
from elcore.corpus import FORMATS
from elcore.errors import ConfigError
from elcore.index import load_index
from elcore.index_files import index_exists, manifest_fingerprint
from elcore.overrides import InferenceOverrides
from elcore.priors import PRIORS_FILE

from .common import (
    IO_TASK_CPUS,
    ActorResources,
    dataset_of,
    init_ray,
    model_fingerprint,
    prepare_output,
    spread,
    track,
)
from .corpus_input import INPUTS_FILE, input_format, plan_units, planned_inputs, read_units
from .corpus_output import RunTally, link_part, output_store, to_ipc, write_part
from .options import run_command_line
from .shard_servers import RemoteShardedIndex, start_shard_servers

RETRIEVAL = ("local", "shards")


@dataclass
class LinkCorpusConfig:
    """Link every document of a collection; write links and a per-document status table as Parquet."""

    input: str = field(
        metadata={"help": "jsonl or Parquet file/folder, or a folder of .txt files; fsspec URL"}
    )
    output: str = field(metadata={"help": "output folder: links/, status/, summary.json"})
    model: str | None = field(
        default=None,
        metadata={
            "help": "linker directory (model + catalogue.parquet + index/ [+ priors]) or model directory; "
            "default: the embedded default (elq build-default)"
        },
    )
    catalogue: str | None = field(default=None, metadata={"help": "catalogue (default: the linker's own)"})
    index: str | None = field(
        default=None, metadata={"help": "index folder from build-index (default: the linker's)"}
    )
    format: str = field(default="auto", metadata={"help": "auto, jsonl, parquet or text"})
    id_field: str = field(default="id", metadata={"help": "document id field (default: the line/row number)"})
    text_field: str = field(default="text", metadata={"help": "document text field"})
    docs_per_part: int = field(default=256, metadata={"help": "documents per output part (the resume unit)"})
    retrieval: str = field(
        default="local",
        metadata={"help": "local: the index in each encoder actor; shards: one actor per shard"},
    )
    shard_cpus: float = field(
        default=0.5, metadata={"help": "CPUs each shard actor asks for (retrieval=shards)"}
    )
    batch_size: int = field(default=32, metadata={"help": "windows per encoder call"})
    inference: InferenceOverrides = field(default_factory=InferenceOverrides)
    resources: ActorResources = field(default_factory=ActorResources)
    address: str | None = field(
        default=None, metadata={"help": "Ray address ('auto': the `ray start` cluster)"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace output left by a different job"})

    def validate(self) -> LinkCorpusConfig:
        if not self.model:
            from elcore.linker import require_default_linker

            self.model = require_default_linker()
        if self.format not in ("auto", *FORMATS):
            raise ConfigError(f"format {self.format!r} not supported; use auto, {', '.join(FORMATS)}")
        if self.retrieval not in RETRIEVAL:
            raise ConfigError(f"retrieval {self.retrieval!r} not supported; use one of {list(RETRIEVAL)}")
        if self.inference.use_priors and not fs.exists(fs.join(self.model, PRIORS_FILE)):
            raise ConfigError(
                f"--use-priors: {self.model} holds no {PRIORS_FILE}; link with the dense score "
                "(--no-use-priors) or give a linker with priors"
            )
        if self.docs_per_part < 1 or self.batch_size < 1:
            raise ConfigError(
                f"docs_per_part and batch_size must be >= 1, got {self.docs_per_part}, {self.batch_size}"
            )
        return self

    def catalogue_url(self) -> str:
        url = self.catalogue or fs.join(self.model, "catalogue.parquet")
        if not fs.exists(url):
            raise ConfigError(
                f"no catalogue at {url}: pass --catalogue (the catalogue the index was built from)"
            )
        return url

    def index_url(self) -> str:
        url = self.index or fs.join(self.model, "index")
        if not index_exists(url):
            raise ConfigError(f"no index at {url}: pass --index (an index folder from build-index)")
        return url


# -- link: the encoder actors and the shard actors ---------------------------------------------------------


class CorpusLinker:
    """Ray Data adapter: a `Linker` built once per actor; a row is one part of the corpus, the output row the
    same part with its links and status tables (Arrow IPC bytes)."""

    def __init__(
        self,
        model_dir: str,
        catalogue: str | None,
        index: str,
        shards: list | None,
        batch_size: int,
        overrides: dict[str, Any],
        torch_threads: int,
        use_gpu: bool,
    ) -> None:
        import torch

        from elcore.linker import Linker

        settings.hf_offline()
        torch.set_num_threads(torch_threads)
        # faiss gets the actor's threads too: its default (every core) would oversubscribe the node.
        entity_index: Any = (
            RemoteShardedIndex(*shards) if shards else load_index(index, num_threads=torch_threads)
        )
        self.linker = Linker.from_pretrained(
            model_dir,
            catalogue=catalogue,
            index=entity_index,
            batch_size=batch_size,
            device="cuda" if use_gpu else "cpu",
            **overrides,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        links, status = [], []
        for i in range(len(batch["part"])):
            if batch["skip"][i]:
                links.append(b"")
                status.append(b"")
                continue
            docs = [batch[key][i].tolist() for key in ("source", "line", "doc_id", "text", "error")]
            link_table, status_table = link_part(self.linker, *docs)
            links.append(to_ipc(link_table))
            status.append(to_ipc(status_table))
        keep = ("part", "weight", "skip", "docs")
        return {**{key: batch[key] for key in keep}, "links": links, "status": status}


# -- the pipeline ---------------------------------------------------------------------------------------------


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
