"""The output of link-corpus: per part, a links table and a status table in an `elcore.parts.PartStore`.

`links/part-F-C.parquet` holds the links of part C of input file F, `status/part-F-C.parquet` one
row per input record (`linked`, `no_links`, `failed` with the reason), `parts/part-F-C.json` the
record (rows, bytes, sha256, counts) written last. Between the link actors and the write tasks the
tables travel as Arrow IPC bytes.

    >>> read_output("s3://b/links", "status")     # every verified part, in part order
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa

from elcore.parts import PartStore

LINKS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("line", pa.int64()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("mention", pa.string()),
        ("entity_row", pa.int64()),
        ("entity_id", pa.string()),
        ("qid", pa.string()),
        ("title", pa.string()),
        ("score", pa.float64()),
        ("mention_score", pa.float64()),
        ("entity_score", pa.float64()),
        ("window", pa.int32()),
    ]
)
STATUS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("line", pa.int64()),
        ("status", pa.string()),
        ("num_links", pa.int32()),
        ("error", pa.string()),
    ]
)


def write_part(row: dict[str, Any], output: str) -> dict[str, Any]:
    """Write a part's links and status, then its record (which marks the part done); return its counts."""
    summary = {
        "part": row["part"],
        "weight": row["weight"],
        "skipped": bool(row["skip"]),
        "docs": int(row["docs"]),
    }
    if row["skip"]:
        return {**summary, "links": 0, "linked": 0, "no_links": 0, "failed": 0}
    links, status = from_ipc(row["links"]), from_ipc(row["status"])
    counts = {"docs": status.num_rows, "links": links.num_rows, "linked": 0, "no_links": 0, "failed": 0}
    for value in status.column("status").to_pylist():
        counts[value] += 1
    output_store(output).write(row["part"], {"links": links, "status": status}, counts)
    return {**summary, **counts}


def output_store(output: str) -> PartStore:
    """The parts of a link-corpus output: `links/` and `status/` tables per part, `parts/` records."""
    return PartStore(output, ("links", "status"))


def part_tables(output: str, part: str) -> tuple[pa.Table, pa.Table]:
    """The links and status tables of one written part."""
    store = output_store(output)
    return store.read("links", [part]), store.read("status", [part])


def read_output(output: str, table: str = "links") -> pa.Table:
    """All verified parts of `links` or `status` under a link-corpus output, in part order."""
    found = output_store(output).read(table)
    return found if found is not None else (LINKS_SCHEMA if table == "links" else STATUS_SCHEMA).empty_table()


def rows_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def to_ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()
