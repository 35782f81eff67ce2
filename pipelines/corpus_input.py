"""What link-corpus reads: the input's format, its read units (one per file, or a group of .txt
files) and the parts of documents each unit becomes.

`INPUTS_FILE` in the output records every input file's unit and size, so a re-run keeps the units
(and skips their written parts) and gives files added since new units after them.

    >>> units = plan_units("s3://b/docs/", input_format("s3://b/docs/"), docs_per_part=256)
    >>> read_parts(units[0], "jsonl", "s3://b/docs/", "id", "text", 256, done=frozenset())
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from elcore.corpus import FORMATS, format_of, read_documents
from elcore.errors import ConfigError

from .common import list_files, part_name

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


def input_format(url: str, fmt: str = "auto") -> str:
    """`fmt`, or for `auto` the one the input's name (or a folder's files) says."""
    if fmt != "auto":
        return fmt
    try:
        return format_of(url)
    except ConfigError:
        pass
    for candidate, suffixes in FORMATS.items():  # a folder: the first format it holds files of
        try:
            list_files(url, suffixes)
            return candidate
        except ConfigError:
            continue
    raise ConfigError(f"{url}: no .jsonl, .parquet or .txt input found; set --format")


def plan_units(
    url: str, fmt: str, docs_per_part: int, known: dict[str, list[int]] | None = None
) -> list[dict]:
    """The read units of input `url` in format `fmt`: one per jsonl/Parquet file, or `docs_per_part`
    .txt files each.

    `known` (file -> [unit number, size]) is what an earlier run of the job planned: those files keep their
    units, so a re-run skips their parts; files added since get new units after them.

    Raises:
        ConfigError: a file the earlier run read has changed size since.
    """
    files = list_files(url, FORMATS[fmt])
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
    group = docs_per_part if fmt == "text" else 1
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
    return units


def planned_inputs(units: list[dict]) -> dict[str, list[int]]:
    return {f: [u["number"], size] for u in units for f, size in zip(u["files"], u["sizes"], strict=True)}


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
