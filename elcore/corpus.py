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
from typing import TYPE_CHECKING, Any, NamedTuple

from . import fs
from .errors import ConfigError, InputRecordError

if TYPE_CHECKING:
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


# The document formats and the file names that say which one a file holds.
FORMATS = {"jsonl": (".jsonl", ".json", ".jsonl.gz", ".json.gz"), "parquet": (".parquet",), "text": (".txt",)}


class Document(NamedTuple):
    """One input record as read: where it came from, its id and text, or why it cannot be linked."""

    source: str
    line: int  # line (jsonl) or row (Parquet) number from 1; 1 for a .txt file
    id: str
    text: str | None
    error: str | None = None


def read_documents(
    url: str, fmt: str = "auto", id_field: str = "id", text_field: str = "text", root: str | None = None
) -> Iterator[Document]:
    """Every record of one jsonl, Parquet or .txt file as a `Document`, streamed, in order.

    A bad record (not UTF-8, not JSON, no text, a text of the wrong type) is a `Document` with its
    reason in `error`, numbered like the rest; a record without an id gets its line number. A .txt
    file is one document whose id is its path under `root` without `.txt`.
    """
    fmt = fmt if fmt != "auto" else format_of(url)
    if fmt == "text":
        yield _text_file(url, root)
        return
    if fmt == "jsonl":
        records: Iterable[tuple[int, Any]] = read_jsonl_records(url)
    else:
        records = enumerate(_parquet_rows(url, id_field, text_field), start=1)
    for number, record in records:
        yield document_of(record, number, url, id_field, text_field)


def format_of(url: str) -> str:
    """The format a file's name says (`FORMATS`)."""
    found = next((f for f, suffixes in FORMATS.items() if url.rstrip("/").endswith(suffixes)), None)
    if found is None:
        raise ConfigError(f"{url}: cannot tell its format from its name; expected one of {FORMATS}")
    return found


def document_of(record: Any, number: int, source: str, id_field: str, text_field: str) -> Document:
    """A parsed record (or the `InputRecordError` that replaced it) as a `Document`."""
    try:
        if isinstance(record, InputRecordError):
            raise record
        doc_id, text = document_text(record, number, source, id_field, text_field)
        return Document(source, number, doc_id, text)
    except InputRecordError as error:
        fallback = record.get(id_field, number) if isinstance(record, dict) else number
        return Document(source, number, str(fallback), None, str(error))


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


def link_read(linker: Linker, documents: Sequence[Document]) -> list[DocumentResult]:
    """One result per document, in order: a document read with an error fails with it; the rest are
    linked in one call, or one at a time if that call fails, so a document the linker cannot take
    fails alone."""
    good = [d for d in documents if d.error is None]
    try:
        outcomes = linker.link([d.text for d in good]) if good else []
    except Exception:  # noqa: BLE001 - find the document that broke the batch
        outcomes = [_link_alone(linker, d.text) for d in good]
    found = iter(outcomes)
    results = []
    for d in documents:
        outcome = d.error if d.error is not None else next(found)
        if isinstance(outcome, str):
            results.append(DocumentResult(d.id, Status.FAILED, error=outcome, line=d.line))
        else:
            status = Status.LINKED if outcome else Status.NO_LINKS
            results.append(DocumentResult(d.id, status, outcome, line=d.line))
    return results


def _link_alone(linker: Linker, text: str) -> list[Link] | str:
    """The text's links, or the linker's error as a failure reason."""
    try:
        return linker.link([text])[0]
    except Exception as error:  # noqa: BLE001
        return f"linker error: {type(error).__name__}: {error}"


def link_documents(
    linker: Linker,
    records: Sequence[Any],
    id_field: str = "id",
    text_field: str = "text",
    source: str = "<records>",
    numbers: Sequence[int] | None = None,
) -> list[DocumentResult]:
    """One result per record (dicts with `id_field` and `text_field`), in order; bad records fail alone.

    `numbers` are the records' line numbers in `source` (default 1, 2, ...): the id of a record
    without one, and the `line` of its result.
    """
    numbers = list(numbers) if numbers is not None else list(range(1, len(records) + 1))
    return link_read(
        linker,
        [document_of(r, n, source, id_field, text_field) for r, n in zip(records, numbers, strict=True)],
    )


def _parquet_rows(url: str, id_field: str, text_field: str) -> Iterator[dict]:
    import pyarrow.parquet as pq

    filesystem, path = fs.filesystem(url)
    with filesystem.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        columns = [c for c in (id_field, text_field) if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(columns=columns or None, batch_size=4096):
            yield from batch.to_pylist() if columns else [{}] * batch.num_rows


def _text_file(url: str, root: str | None) -> Document:
    path = fs.filesystem(url)[1]
    prefix = fs.filesystem(root)[1].rstrip("/") + "/" if root else None
    name = path[len(prefix) :] if prefix and path.startswith(prefix) else path.rsplit("/", 1)[-1]
    doc_id = name[: -len(".txt")] if name.endswith(".txt") else name
    try:
        return Document(url, 1, doc_id, fs.read_bytes(url).decode("utf-8"))
    except UnicodeDecodeError as error:
        return Document(url, 1, doc_id, None, str(InputRecordError(url, 1, "<file>", f"not UTF-8: {error}")))


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
        for chunk in _chunked(read_documents(input_url, "jsonl", id_field, text_field), chunk_size):
            for result in link_read(linker, chunk):
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
