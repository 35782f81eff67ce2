"""Examples for training and evaluation: the kit's jsonl format (ELQ's EL4QA format plus `span_source`).

One line is one example with aligned per-mention lists:

    {"id": "WebQTrn-2987", "text": "who are betty white's husbands?", "mentions": [[8, 19], null],
     "wikidata_id": ["Q373895", "Q8445"], "entity": ["Betty White", "Marriage"], "span_source": ["gold", null]}

`mentions[i]` is a `[start, end)` character span or `null` (entity-level gold only). The gold id is read from
`entity_id` (catalogue ids, e.g. `"enwiki:..."`) when present, else from `wikidata_id`. ELQ's tokenized fields
(`tokenized_text_ids`, `tokenized_mention_idxs`, `label_id`, `label`, ...) are ignored. Every record is
validated; a bad one raises `InputRecordError` naming the file, the line, the field and what is wrong (corpus
jobs, which must go on past a bad record, read documents with `elcore.corpus.read_documents`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from elcore.errors import InputRecordError
from elcore.fs import filesystem, write_bytes_atomic

# The optional per-mention lists; the id list is `entity_id` or `wikidata_id` (see `_ID_FIELDS`).
_ID_FIELDS = ("entity_id", "wikidata_id")
_OPTIONAL_FIELDS = ("entity", "span_source")


@dataclass(frozen=True)
class GoldMention:
    """One gold entity of an example.

    Args:
        start: character offset where the mention starts, or None when only the entity is known.
        end: character offset one past the mention's end, or None.
        entity: the gold id: a Wikidata QID (`"Q90"`) or a catalogue id (`"enwiki:..."`).
        title: the catalogue title of the entity, if known.
        span_source: `"gold"` (annotated), `"string_match"` (silver) or None (no span).
    """

    start: int | None
    end: int | None
    entity: str
    title: str | None = None
    span_source: str | None = None

    @property
    def has_span(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(frozen=True)
class Example:
    """A text with its gold mentions (spanned ones sorted by start, null-span ones last, as in the kit)."""

    id: str
    text: str
    mentions: tuple[GoldMention, ...] = ()

    @classmethod
    def from_dict(cls, record: Any, source: str = "<dict>", line: int | None = None) -> Example:
        """Validate one decoded jsonl record and build the example.

        Args:
            record: the decoded JSON value of one line.
            source: where it came from, for error messages.
            line: its 1-based line number, for error messages (the record id is used when None).

        Returns:
            The example.

        Raises:
            InputRecordError: the record is not an object, `id`/`text`/`mentions`/ids are missing or of the
                wrong type, the lists have different lengths, or a span is outside the text or empty.

        Example:
            >>> Example.from_dict({"id": "q1", "text": "paris?", "mentions": [[0, 5]], "wikidata_id": ["Q90"]})
            Example(id='q1', text='paris?', mentions=(GoldMention(start=0, end=5, entity='Q90', title=None, span_source=None),))
        """
        return _parse(record, source, line)

    def to_dict(self) -> dict[str, Any]:
        """The kit-format record (`wikidata_id` holds the gold ids, QIDs or catalogue ids)."""
        return {
            "id": self.id,
            "text": self.text,
            "mentions": [[m.start, m.end] if m.has_span else None for m in self.mentions],
            "wikidata_id": [m.entity for m in self.mentions],
            "entity": [m.title for m in self.mentions],
            "span_source": [m.span_source for m in self.mentions],
        }


def iter_examples(url: str, *, limit: int | None = None) -> Iterator[Example]:
    """Stream the examples of a jsonl file (local or any fsspec URL; `.gz` is decompressed).

    Args:
        url: the file.
        limit: stop after this many examples; None reads everything.

    Raises:
        InputRecordError: at the first bad record (its `record` is the 1-based line number).
    """
    if limit is not None and limit <= 0:
        return
    produced = 0
    for line_no, raw in jsonl_lines(url):
        if not raw.strip():
            continue
        yield _parse(decode_line(raw, url, line_no), url, line_no)
        produced += 1
        if limit is not None and produced >= limit:
            return


def read_examples(url: str, limit: int | None = None) -> list[Example]:
    """Read a jsonl file of examples; the first bad record raises `InputRecordError`.

    Example:
        >>> examples = read_examples("../shared/kit/data/webqsp/dev.jsonl")
        >>> len(examples), examples[0].mentions[0].entity
        (619, 'Q866345')
    """
    return list(iter_examples(url, limit=limit))


def write_examples(url: str, examples: Iterable[Example]) -> int:
    """Write examples as kit-format jsonl (gzip when `url` ends in `.gz`), atomically; returns the count."""
    lines = [json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples]
    data = "".join(lines).encode("utf-8")
    if url.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    write_bytes_atomic(url, data)
    return len(lines)


def require_jsonl_file(url: str, hint: str = "") -> None:
    """Raise `FileNotFoundError` / `IsADirectoryError` naming `url` unless it is a file (`hint` is
    appended to the directory message)."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        raise FileNotFoundError(f"{url}: no such file")
    if fs.isdir(path):
        raise IsADirectoryError(f"{url} is a directory: give a .jsonl file{hint}")


def jsonl_lines(url: str) -> Iterator[tuple[int, bytes]]:
    """`(1-based line number, raw bytes)` of a jsonl file (local or fsspec; `.gz` decompressed).

    Raises:
        FileNotFoundError / IsADirectoryError: naming the path (`require_jsonl_file`).
    """
    require_jsonl_file(url)
    fs, path = filesystem(url)
    with fs.open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        yield from enumerate(stream, start=1)


def decode_line(raw: bytes, source: str, line: int) -> Any:
    """The JSON value of one raw line; `InputRecordError` (with the bad byte's offset) otherwise."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputRecordError(
            source, line, "<line>", f"not valid UTF-8 ({err.reason} at byte {err.start})"
        ) from None
    except json.JSONDecodeError as err:
        raise InputRecordError(
            source, line, "<line>", f"invalid JSON: {err.msg} at column {err.colno}"
        ) from None


def _parse(record: Any, source: str, line: int | None) -> Example:
    where: str | int = line if line is not None else "?"

    def fail(field: str, reason: str) -> InputRecordError:
        return InputRecordError(source, where, field, reason)

    if not isinstance(record, Mapping):
        raise fail("<record>", f"expected a JSON object, got {type(record).__name__}")
    rid = record.get("id")
    if not isinstance(rid, str) or not rid:
        raise fail("id", _missing_or_type(record, "id", "a non-empty string"))
    if line is None:
        where = rid
    # From here on the id is known: name it too, so a user can find the record without counting lines.
    suffix = f" (id {rid!r})" if line is not None else ""

    def bad(field: str, reason: str) -> InputRecordError:
        return fail(field, reason + suffix)

    text = record.get("text")
    if not isinstance(text, str):
        raise bad("text", _missing_or_type(record, "text", "a string"))

    mentions = record.get("mentions")
    if not isinstance(mentions, list):
        raise bad("mentions", _missing_or_type(record, "mentions", "a list of [start, end] or null"))
    id_field = next((f for f in _ID_FIELDS if record.get(f) is not None), None)
    if id_field is None:
        raise bad("wikidata_id", "missing: need a list of gold ids in 'entity_id' or 'wikidata_id'")
    lists: dict[str, list[Any]] = {}
    for field in (id_field, *_OPTIONAL_FIELDS):
        value = record.get(field)
        if value is None and field != id_field:
            continue
        if not isinstance(value, list):
            raise bad(field, f"expected a list, got {type(value).__name__}")
        if len(value) != len(mentions):
            raise bad(field, f"has {len(value)} entries but 'mentions' has {len(mentions)}; lists must align")
        lists[field] = value

    golds = []
    for i, span in enumerate(mentions):
        start, end = _span(span, len(text), i, bad)
        entity = lists[id_field][i]
        if not isinstance(entity, str) or not entity:
            raise bad(id_field, f"entry {i}: expected a non-empty id string, got {entity!r}")
        title, span_source = (_optional_str(lists, f, i, bad) for f in _OPTIONAL_FIELDS)
        golds.append(GoldMention(start, end, entity, title, span_source))
    return Example(rid, text, tuple(golds))


def _span(span: Any, text_len: int, i: int, bad: Any) -> tuple[int | None, int | None]:
    if span is None:
        return None, None
    if not (isinstance(span, list) and len(span) == 2 and all(_is_int(x) for x in span)):
        raise bad("mentions", f"entry {i}: expected [start, end] integers or null, got {span!r}")
    start, end = span
    if not 0 <= start < end <= text_len:
        raise bad(
            "mentions",
            f"entry {i}: span {span} must satisfy 0 <= start < end <= len(text) = {text_len}",
        )
    return start, end


def _optional_str(lists: dict[str, list[Any]], field: str, i: int, bad: Any) -> str | None:
    value = lists[field][i] if field in lists else None
    if value is not None and not isinstance(value, str):
        raise bad(field, f"entry {i}: expected a string or null, got {value!r}")
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _missing_or_type(record: Mapping[str, Any], field: str, expected: str) -> str:
    if field not in record:
        return f"missing; expected {expected}"
    return f"expected {expected}, got {record[field]!r}"
