"""The output of link-corpus: per part, a links table and a status table in an `elcore.parts.PartStore`.

`links/part-F-C.parquet` holds the links of part C of input file F, `status/part-F-C.parquet` one
row per input record (`linked`, `no_links`, `failed` with the reason), `parts/part-F-C.json` the
record (rows, bytes, sha256, counts) written last. Between the link actors and the write tasks the
tables travel as Arrow IPC bytes.

    >>> read_output("s3://b/links", "status")     # every verified part, in part order
"""

from __future__ import annotations

import io
import time
from typing import Any

import pyarrow as pa

from elcore.corpus import Document, link_read
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


class RunTally:
    """What this run linked, counted as the written parts come back; the first linked part ends start-up
    (Ray, actors loading the model, catalogue and index)."""

    def __init__(self, started: float) -> None:
        self.started, self.parts_skipped, self.docs = started, 0, 0
        self.first_part: tuple[float, int] | None = None  # seconds until it came back, its documents

    def add(self, row: dict[str, Any]) -> None:
        self.parts_skipped += int(row["skipped"])
        self.docs += 0 if row["skipped"] else int(row["docs"])
        if self.first_part is None and not row["skipped"]:
            self.first_part = (time.perf_counter() - self.started, int(row["docs"]))

    def summary(self, records: dict[str, dict]) -> dict[str, Any]:
        """The whole output's counts (every part, whichever run wrote it), then this run's."""
        seconds = time.perf_counter() - self.started
        first = self.first_part
        return {
            "parts": len(records),
            **{k: 0 for k in ("docs", "links", "linked", "no_links", "failed")},
            **PartStore.totals(records),
            "parts_skipped": self.parts_skipped,
            "docs_this_run": self.docs,
            "seconds": round(seconds, 3),
            "docs_per_second": round(self.docs / max(seconds, 1e-9), 2),
            "seconds_to_first_part": round(first[0], 3) if first else None,
            "docs_per_second_after_first_part": (
                round((self.docs - first[1]) / max(seconds - first[0], 1e-9), 2)
                if first and self.docs > first[1]
                else None
            ),
        }


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
