"""Linking collections of documents where every input row is accounted for.

Each input row gets exactly one status row: `linked`, `no_links`, or `failed` with a reason that
names the record and field. `link_jsonl` is the single-machine file path (`elq link --input`);
`pipelines.link_corpus` applies `link_documents` to Ray Data batches.

    >>> link_documents(linker, [{"id": "d1", "text": "who is betty white?"}, {"id": "d2"}])
    [DocumentResult(id='d1', status='linked', ...), DocumentResult(id='d2', status='failed', error="...'text'...")]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import fs
from .errors import InputRecordError
from .linker import Link, Linker


class Status(str, Enum):
    LINKED = "linked"
    NO_LINKS = "no_links"
    FAILED = "failed"


@dataclass(frozen=True)
class DocumentResult:
    id: str
    status: Status
    links: list[Link] = field(default_factory=list)
    error: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "status": self.status.value,
            "links": [link.to_dict() for link in self.links],
            "error": self.error,
        }
        if self.line is not None:
            out["line"] = self.line
        return out


def document_text(record: Any, number: int, source: str, id_field: str, text_field: str) -> tuple[str, str]:
    """`(id, text)` of one input record; `InputRecordError` naming the record and field otherwise."""
    if not isinstance(record, dict):
        raise InputRecordError(
            source, number, "<record>", f"expected a JSON object, got {type(record).__name__}"
        )
    doc_id = record.get(id_field, number)
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        raise InputRecordError(source, number, id_field, f"must be a string or integer, got {doc_id!r}")
    if text_field not in record:
        raise InputRecordError(source, doc_id, text_field, "missing")
    text = record[text_field]
    if not isinstance(text, str):
        raise InputRecordError(source, doc_id, text_field, f"must be a string, got {type(text).__name__}")
    return str(doc_id), text


def link_documents(
    linker: Linker,
    records: Sequence[Any],
    id_field: str = "id",
    text_field: str = "text",
    source: str = "<records>",
    first_number: int = 1,
) -> list[DocumentResult]:
    """One result per record, in order; bad records fail alone, the rest are linked in one call."""
    parsed: list[tuple[int, str, str]] = []
    results: list[DocumentResult | None] = [None] * len(records)
    for i, record in enumerate(records):
        number = first_number + i
        try:
            doc_id, text = document_text(record, number, source, id_field, text_field)
            parsed.append((i, doc_id, text))
        except InputRecordError as exc:
            fallback = record.get(id_field, number) if isinstance(record, dict) else number
            results[i] = DocumentResult(str(fallback), Status.FAILED, error=str(exc), line=number)
    links = linker.link([text for _, _, text in parsed]) if parsed else []
    for (i, doc_id, _), doc_links in zip(parsed, links, strict=True):
        status = Status.LINKED if doc_links else Status.NO_LINKS
        results[i] = DocumentResult(doc_id, status, doc_links, line=first_number + i)
    return [r for r in results if r is not None]


def read_jsonl_records(url: str) -> Iterator[tuple[int, Any]]:
    """`(line number, parsed record)`; an unparsable line yields an `InputRecordError` as the record."""
    filesystem, path = fs.filesystem(url)
    with filesystem.open(path, "rt", encoding="utf-8", compression="infer") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, InputRecordError(url, number, "<line>", f"invalid JSON: {exc.msg}")


def link_jsonl(
    linker: Linker,
    input_url: str,
    output_url: str,
    id_field: str = "id",
    text_field: str = "text",
    chunk_size: int = 256,
) -> dict[str, int]:
    """Link a jsonl file into a jsonl file: one output line per input line, same order.

    Returns counts per status. The output is written to a temporary name and moved into place.
    """
    counts = {s.value: 0 for s in Status}
    lines: list[str] = []
    for chunk in _chunked(read_jsonl_records(input_url), chunk_size):
        good = [(n, r) for n, r in chunk if not isinstance(r, InputRecordError)]
        linked = iter(link_documents(linker, [r for _, r in good], id_field, text_field, input_url))
        by_line = {n: next(linked) for n, _ in good}
        for number, record in chunk:
            if isinstance(record, InputRecordError):
                result = DocumentResult(str(number), Status.FAILED, error=str(record), line=number)
            else:
                result = by_line[number]
                result = DocumentResult(result.id, result.status, result.links, result.error, number)
            counts[result.status.value] += 1
            lines.append(json.dumps(result.to_dict(), ensure_ascii=False))
    fs.write_bytes_atomic(output_url, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"))
    return counts


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
