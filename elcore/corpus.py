"""Linking collections of documents where every input row is accounted for.

Each input row gets exactly one status row: `linked`, `no_links`, or `failed` with a reason that
names the record and field. `link_jsonl` is the single-machine file path (`elq link --input`);
`pipelines.link_corpus` applies `link_documents` to Ray Data batches.

    >>> link_documents(linker, [{"id": "d1", "text": "who is betty white?"}, {"id": "d2"}])
    [DocumentResult(id='d1', status='linked', ...), DocumentResult(id='d2', status='failed', error="...'text'...")]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import fs
from .errors import ConfigError, InputRecordError
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
    numbers: Sequence[int] | None = None,
) -> list[DocumentResult]:
    """One result per record, in order; bad records fail alone, the rest are linked in one call.

    `numbers` are the records' line numbers in `source` (default 1, 2, ...): the id of a record
    without one, and the `line` of its result.
    """
    numbers = list(numbers) if numbers is not None else list(range(1, len(records) + 1))
    parsed: list[tuple[int, str, str]] = []
    results: list[DocumentResult | None] = [None] * len(records)
    for i, record in enumerate(records):
        number = numbers[i]
        try:
            doc_id, text = document_text(record, number, source, id_field, text_field)
            parsed.append((i, doc_id, text))
        except InputRecordError as exc:
            fallback = record.get(id_field, number) if isinstance(record, dict) else number
            results[i] = DocumentResult(str(fallback), Status.FAILED, error=str(exc), line=number)
    links = linker.link([text for _, _, text in parsed]) if parsed else []
    for (i, doc_id, _), doc_links in zip(parsed, links, strict=True):
        status = Status.LINKED if doc_links else Status.NO_LINKS
        results[i] = DocumentResult(doc_id, status, doc_links, line=numbers[i])
    return [r for r in results if r is not None]


def read_jsonl_records(url: str) -> Iterator[tuple[int, Any]]:
    """`(line number, parsed record)` per non-blank line; a line that is not UTF-8 or not JSON yields an
    `InputRecordError` (naming the line and the byte offset) in the record's place."""
    from .data import decode_line, jsonl_lines

    for number, raw in jsonl_lines(url):
        if not raw.strip():
            continue
        try:
            yield number, decode_line(raw, url, number)
        except InputRecordError as error:
            yield number, error


def check_output(url: str) -> None:
    """Fail before any work when `url` cannot be written: its parent is a file, or not writable.

    Raises:
        ConfigError: naming the path and what to do.
    """
    filesystem, path = fs.filesystem(url)
    if filesystem.isdir(path):
        raise ConfigError(
            f"--output {url} is a directory: give a file name, e.g. {url.rstrip('/')}/links.jsonl"
        )
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    probe = parent
    while probe and not filesystem.exists(probe):
        probe = probe.rsplit("/", 1)[0] if "/" in probe else ""
    if probe and not filesystem.isdir(probe):
        raise ConfigError(f"--output {url}: {probe} is a file, so nothing can be written under it")
    if fs.is_local(url) and probe and not os.access(probe, os.W_OK):
        raise ConfigError(f"--output {url}: {probe} is not writable; choose another location")


def link_jsonl(
    linker: Linker,
    input_url: str,
    output_url: str,
    id_field: str = "id",
    text_field: str = "text",
    chunk_size: int = 256,
    progress: bool = False,
) -> dict[str, int]:
    """Link a jsonl file into a jsonl file: one output line per input line, same order, streamed.

    A record without `id_field` gets its line number as id. Returns counts per status. The output
    is checked before any linking, written under a temporary name and moved into place at the end.
    """
    check_output(output_url)
    counts = {s.value: 0 for s in Status}
    started, done = time.perf_counter(), 0
    total = _count_lines(input_url) if progress else 0
    with fs.atomic_writer(output_url) as out:
        for chunk in _chunked(read_jsonl_records(input_url), chunk_size):
            good = [(n, r) for n, r in chunk if not isinstance(r, InputRecordError)]
            linked = link_documents(
                linker, [r for _, r in good], id_field, text_field, input_url, numbers=[n for n, _ in good]
            )
            by_line = dict(zip([n for n, _ in good], linked, strict=True))
            for number, record in chunk:
                if isinstance(record, InputRecordError):
                    result = DocumentResult(str(number), Status.FAILED, error=str(record), line=number)
                else:
                    result = by_line[number]
                counts[result.status.value] += 1
                out.write((json.dumps(result.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
            done += len(chunk)
            if progress:
                rate = done / max(time.perf_counter() - started, 1e-9)
                eta = max(total - done, 0) / rate if rate else 0.0
                print(
                    f"linked {done}/{total} records, {rate:.1f}/s, ETA {eta:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return counts


def _count_lines(url: str) -> int:
    from .data import jsonl_lines

    return sum(1 for _, raw in jsonl_lines(url) if raw.strip())


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
