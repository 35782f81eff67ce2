"""`link-corpus` on Ray Data: a text collection -> Parquet of links plus one status row per input record.

    input files -> flat_map(read_parts): parse records, one row per part of `docs_per_part` documents
      -> spread (one part per block, so every actor gets work)
      -> map_batches(CorpusLinker, actor pool): tokenise and window, encode, retrieve, joint scores,
         overlap resolution (`elcore.linker.Linker`); retrieval from the index inside each actor, or from
         index shards held by `ShardServer` actors (`--retrieval shards`, for an index too big for one node)
      -> map(write_part): links/part-F-C.parquet, then status/part-F-C.parquet

Inputs: jsonl (one object per line), Parquet, or a folder of `.txt` files (one document each), local or any
fsspec URL; `id_field`/`text_field` name the columns. Every input record gets a status row: `linked`,
`no_links`, or `failed` with the reason (bad JSON, missing or non-string text, a linker error). Part F-C is
chunk C of input file F, so a re-run skips the parts whose status file exists and rewrites the others whole:
no row is lost or duplicated.

    python -m pipelines.link_corpus --input s3://b/docs/ --output s3://b/links --model runs/linker
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from elcore import fs, settings
from elcore.catalogue import EntityCatalogue
from elcore.corpus import FORMATS, Document, format_of, link_read, read_documents
from elcore.errors import ConfigError
from elcore.index import load_index
from elcore.overrides import InferenceOverrides
from elcore.parts import PartStore

from .common import (
    IO_TASK_CPUS,
    ActorResources,
    dataset_of,
    init_ray,
    list_files,
    model_fingerprint,
    part_name,
    prepare_output,
    spread,
    track,
)
from .corpus_output import LINKS_SCHEMA, STATUS_SCHEMA, output_store, rows_table, to_ipc, write_part
from .options import run_command_line
from .shard_servers import RemoteShardedIndex, start_shard_servers

RETRIEVAL = ("local", "shards")
INPUTS_FILE = "_inputs.json"  # input file -> [read unit, size]: what a re-run keeps and what it adds

PART_SCHEMA = pa.schema(
    [
        ("part", pa.string()),
        ("weight", pa.float64()),
        ("skip", pa.bool_()),
        ("docs", pa.int64()),
        ("source", pa.list_(pa.string())),
        ("line", pa.list_(pa.int64())),
        ("doc_id", pa.list_(pa.string())),
        ("text", pa.list_(pa.string())),
        ("error", pa.list_(pa.string())),
    ]
)


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
        if not fs.exists(fs.join(url, "index.json")):
            raise ConfigError(f"no index at {url}: pass --index (an index folder from build-index)")
        return url


# -- read: files -> parts ------------------------------------------------------------------------------------


def read_parts(
    unit: dict[str, Any],
    fmt: str,
    root: str,
    id_field: str,
    text_field: str,
    docs_per_part: int,
    done: frozenset[str],
) -> list[dict[str, Any]]:
    """Parse one input unit (a jsonl/Parquet file, or a list of .txt files) into parts of documents.

    A part row holds per-document lists `source`, `line`, `doc_id`, `text`, `error` (a record that cannot be
    linked has its reason in `error` and no text), its `weight` (share of all input bytes) and `skip` (written
    by an earlier run: its lists are left empty).
    """
    docs = [d for url in unit["files"] for d in read_documents(url, fmt, id_field, text_field, root)]
    parts = []
    chunks = range(0, max(1, len(docs)), docs_per_part)
    for c, lo in enumerate(chunks):
        name = part_name(unit["number"], 0) if fmt == "text" else part_name(unit["number"], c)
        chunk = docs[lo : lo + docs_per_part]
        skip = name in done
        row: dict[str, Any] = {
            "part": name,
            "weight": unit["weight"] * (len(chunk) / len(docs) if docs else 1.0),
            "skip": skip,
            "docs": len(chunk),
        }
        for i, key in enumerate(("source", "line", "doc_id", "text", "error")):
            row[key] = [] if skip else [d[i] for d in chunk]
        parts.append(row)
    return parts


def read_units(batch: pa.Table, **options: Any) -> pa.Table:
    """`map_batches` form of `read_parts`: a batch of read units in, their parts out (typed, `PART_SCHEMA`)."""
    rows = [part for unit in batch.to_pylist() for part in read_parts(unit, **options)]
    return pa.Table.from_pylist(rows, schema=PART_SCHEMA)


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


def link_part(
    linker,
    sources: list[str],
    lines: list[int],
    doc_ids: list[str],
    texts: list[str | None],
    errors: list[str | None],
) -> tuple[pa.Table, pa.Table]:
    """Links and one status row per document of a part, in input order (`elcore.corpus.link_read`)."""
    docs = [Document(*fields) for fields in zip(sources, lines, doc_ids, texts, errors, strict=True)]
    link_rows, status_rows = [], []
    for doc, result in zip(docs, link_read(linker, docs), strict=True):
        for link in result.links:
            link_rows.append(
                (
                    doc.id,
                    doc.source,
                    doc.line,
                    link.start,
                    link.end,
                    link.mention,
                    link.entity_row,
                    link.entity_id,
                    link.qid,
                    link.title,
                    link.score,
                    link.mention_score,
                    link.entity_score,
                    link.window,
                )
            )
        status_rows.append(
            (doc.id, doc.source, doc.line, result.status.value, len(result.links), result.error)
        )
    return rows_table(link_rows, LINKS_SCHEMA), rows_table(status_rows, STATUS_SCHEMA)


# -- the pipeline ---------------------------------------------------------------------------------------------


def input_format(config: LinkCorpusConfig) -> str:
    """`config.format`, or for `auto` the one the input's name (or a folder's files) says."""
    if config.format != "auto":
        return config.format
    try:
        return format_of(config.input)
    except ConfigError:
        pass
    for candidate, suffixes in FORMATS.items():  # a folder: the first format it holds files of
        try:
            list_files(config.input, suffixes)
            return candidate
        except ConfigError:
            continue
    raise ConfigError(f"{config.input}: no .jsonl, .parquet or .txt input found; set --format")


def plan_units(
    config: LinkCorpusConfig, known: dict[str, list[int]] | None = None, fmt: str | None = None
) -> tuple[str, list[dict]]:
    """The input format and the read units: one per jsonl/Parquet file, or `docs_per_part` .txt files each.

    `known` (file -> [unit number, size]) is what an earlier run of the job planned: those files keep their
    units, so a re-run skips their parts; files added since get new units after them.

    Raises:
        ConfigError: a file the earlier run read has changed size since.
    """
    fmt = fmt or input_format(config)
    files = list_files(config.input, FORMATS[fmt])
    known = known or {}
    sizes = dict(files)
    changed = [f for f, (_, size) in known.items() if f in sizes and sizes[f] != size]
    if changed:
        raise ConfigError(
            f"input {changed[0]} changed since this job linked it ({len(changed)} changed file(s)); "
            "pass --overwrite to link everything again, or write to another output"
        )
    by_unit: dict[int, list[str]] = {}
    for f, (number, _) in known.items():
        if f in sizes:
            by_unit.setdefault(number, []).append(f)
    new = [f for f, _ in files if f not in known]
    group = config.docs_per_part if fmt == "text" else 1
    start = max((n for n, _ in known.values()), default=-1) + 1
    for i in range(0, len(new), group):
        by_unit[start + i // group] = new[i : i + group]
    total = sum(sizes.values()) or 1
    units = [
        {
            "number": n,
            "files": sorted(group_files),
            "sizes": [sizes[f] for f in sorted(group_files)],
            "weight": sum(sizes[f] for f in group_files) / total,
        }
        for n, group_files in sorted(by_unit.items())
    ]
    return fmt, units


def _planned_inputs(units: list[dict]) -> dict[str, list[int]]:
    return {f: [u["number"], size] for u in units for f, size in zip(u["files"], u["sizes"], strict=True)}


def run(config: LinkCorpusConfig) -> dict[str, Any]:
    """Link the collection; parts written by an earlier run of the same job are kept. Returns a summary.

    Raises:
        ConfigError: bad settings, no input or no index, or `output` holds another job's output.
    """
    config.validate()
    started = time.perf_counter()
    index_url, catalogue_url = config.index_url(), config.catalogue_url()
    fmt = input_format(config)
    job = {
        "stage": "link-corpus",
        "model": model_fingerprint(config.model),
        "catalogue": EntityCatalogue.load(catalogue_url).fingerprint,
        "index": fs.fingerprint(fs.read_bytes(fs.join(index_url, "index.json"))),
        "input": config.input,
        "format": fmt,
        "fields": [config.id_field, config.text_field],
        "docs_per_part": config.docs_per_part,
        "overrides": config.inference.config_values(),
    }
    resumed = prepare_output(config.output, job, config.overwrite)
    inputs_url = fs.join(config.output, INPUTS_FILE)
    known = fs.read_json(inputs_url) if resumed and fs.exists(inputs_url) else None
    _, units = plan_units(config, known, fmt)
    fs.write_json_atomic(inputs_url, _planned_inputs(units))
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
    this_run = {"parts_skipped": 0, "docs": 0}
    first_part: tuple[float, int] | None = None  # when the first linked part came back, and its docs
    for row in track(
        linked.iter_rows(), "link corpus", total=1.0, weight="weight", count="docs", skipped="skipped"
    ):
        this_run["parts_skipped"] += int(row["skipped"])
        this_run["docs"] += 0 if row["skipped"] else int(row["docs"])
        if first_part is None and not row["skipped"]:
            first_part = (time.perf_counter() - started, int(row["docs"]))
    seconds = time.perf_counter() - started
    records = store.records()  # every part was verified at the start or written by this run
    summary = {
        "output": config.output,
        "format": fmt,
        "retrieval": config.retrieval,
        "actors": plan.num_actors,
        # the whole output (every part, whichever run wrote it)
        "parts": len(records),
        **{k: 0 for k in ("docs", "links", "linked", "no_links", "failed")},
        **PartStore.totals(records),
        # this run
        "parts_skipped": this_run["parts_skipped"],
        "docs_this_run": this_run["docs"],
        "seconds": round(seconds, 3),
        "docs_per_second": round(this_run["docs"] / max(seconds, 1e-9), 2),
        # start-up (Ray, actors loading the model, catalogue and index) ends with the first part
        "seconds_to_first_part": round(first_part[0], 3) if first_part else None,
        "docs_per_second_after_first_part": (
            round((this_run["docs"] - first_part[1]) / max(seconds - first_part[0], 1e-9), 2)
            if first_part and this_run["docs"] > first_part[1]
            else None
        ),
    }
    fs.write_json_atomic(fs.join(config.output, "summary.json"), summary)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command_line(LinkCorpusConfig, run, "link-corpus", argv)


if __name__ == "__main__":
    main()
