"""`EntityCatalogue`: the entities a linker can return, held as one Arrow table.

Row number = embedding row = index id: row `i` of the catalogue is row `i` of the entity embeddings and id `i`
in every entity index built from them. Nothing else maps entities to vectors.

Example:
    >>> cat = EntityCatalogue.from_records([{"id": "Q90", "title": "Paris", "aliases": ["City of Light"]}])
    >>> cat.lookup(["Q90", "Q64"]), cat.entity_inputs([0])
    (array([ 0, -1]), [('Paris', '')])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.json as pajson
import pyarrow.parquet as pq

from . import fs
from .errors import CatalogueNotFoundError, ConfigError, InputRecordError

CATALOGUE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("qid", pa.string()),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),
        pa.field("aliases", pa.list_(pa.string())),
    ]
)
# What the readers parse into before validation: the same columns, every one nullable.
_PARSE_SCHEMA = pa.schema([field.with_nullable(True) for field in CATALOGUE_SCHEMA])
_JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
_REQUIRED = ("id", "title")


class EntityCatalogue:
    """Entities (id, qid, title, text, aliases) on a pyarrow Table in `CATALOGUE_SCHEMA`.

    Build one with `load`, `from_records` or `from_table`; those validate. The constructor takes a table that
    is already valid (as `table` returns).
    """

    def __init__(self, table: pa.Table) -> None:
        if not table.schema.equals(CATALOGUE_SCHEMA):
            raise ConfigError(
                f"EntityCatalogue needs a table in CATALOGUE_SCHEMA, got {table.schema}; "
                "use EntityCatalogue.from_table to convert and validate one"
            )
        self._table = table
        self._fingerprint: str | None = None
        self._key_columns: tuple[pa.Array, pa.Array] | None = None

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def load(cls, url: str) -> EntityCatalogue:
        """Read a catalogue from jsonl (`.jsonl`, `.jsonl.gz`), Parquet (`.parquet` or a directory of them).

        Args:
            url: local path or fsspec URL (`memory://`, `s3://`, ...).

        Raises:
            CatalogueNotFoundError: nothing at `url`.
            InputRecordError: a record is not JSON, lacks a non-empty `id` or `title`, has a field of the
                wrong type, or repeats an id. The error names the line (jsonl) or id (Parquet) and field.
        """
        filesystem, path = fs.filesystem(url)
        if not filesystem.exists(path):
            raise CatalogueNotFoundError(f"entity catalogue not found: {url}")
        if filesystem.isdir(path) or path.endswith(".parquet"):
            table = _read_parquet(url, filesystem, path)
            saved = _saved_record(table)
            if saved is not None:  # written by `save`: already valid, its fingerprint recorded
                catalogue = cls(table.replace_schema_metadata(None))
                catalogue._fingerprint = saved["fingerprint"]
                return catalogue
            return cls._from_parsed(table, url, explain=None)
        if path.endswith(_JSONL_SUFFIXES):
            return cls._from_parsed(_read_jsonl(url), url, explain=lambda: _explain_jsonl(url))
        raise ConfigError(
            f"{url}: unknown catalogue format; expected one of {', '.join(_JSONL_SUFFIXES)}, "
            "'.parquet' or a directory of Parquet files"
        )

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], source: str = "<records>") -> EntityCatalogue:
        """A catalogue from dicts with the jsonl fields; extra keys are dropped. Records count from 1."""
        records = list(records)
        table = None
        # pyarrow would quietly split a string `aliases` into characters: send those to the precise check.
        if all(isinstance(r, dict) and not isinstance(r.get("aliases"), str) for r in records):
            try:
                table = pa.Table.from_pylist(records, schema=_PARSE_SCHEMA)
            except (pa.ArrowException, TypeError, ValueError):
                table = None
        if table is None:
            _explain_records(records, source)
            raise InputRecordError(source, "?", "<record>", "records could not be converted to Arrow")
        return cls._from_parsed(table, source, explain=lambda: _explain_records(records, source))

    @classmethod
    def from_table(cls, table: pa.Table, source: str = "<table>") -> EntityCatalogue:
        """A catalogue from any Arrow table with at least `id` and `title`; other columns are dropped."""
        return cls._from_parsed(table, source, explain=None)

    @classmethod
    def _from_parsed(
        cls, table: pa.Table, source: str, explain: Callable[[], None] | None
    ) -> EntityCatalogue:
        table = _normalise(table, source)
        problem = _first_problem(table)
        if problem is not None:
            if explain is not None:
                explain()  # raises with the precise line number
            row, field, reason = problem
            ident = table.column("id")[row].as_py()
            raise InputRecordError(source, ident if ident and field != "id" else row + 1, field, reason)
        return cls(pa.Table.from_arrays(table.columns, schema=CATALOGUE_SCHEMA))

    # -- persistence -------------------------------------------------------------------------------------

    def save(self, url: str) -> None:
        """Write the catalogue as one Parquet file, atomically (temp name, then rename). The file's
        metadata records its row count and fingerprint, so `load` need not validate and hash it again
        (a file whose rows no longer match the record is validated as any other)."""
        record = json.dumps({"rows": len(self), "fingerprint": self.fingerprint})
        with fs.atomic_writer(url) as f:
            pq.write_table(self._table.replace_schema_metadata({_SAVED_KEY: record}), f)

    # -- access ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"EntityCatalogue({len(self)} entities, fingerprint={self.fingerprint})"

    @property
    def table(self) -> pa.Table:
        return self._table

    @property
    def fingerprint(self) -> str:
        """16 hex chars over id, title, text and aliases content; independent of file format and chunking."""
        if self._fingerprint is None:
            self._fingerprint = _content_fingerprint(self._table)
        return self._fingerprint

    def row(self, i: int) -> dict[str, Any]:
        return self.rows([i])[0]

    def rows(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        return self._table.take(self._check_indices(indices)).to_pylist()

    def titles(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        return self._table.column("title").take(self._check_indices(indices)).to_pylist()

    def entity_inputs(self, indices: Sequence[int] | np.ndarray) -> list[tuple[str, str]]:
        """(title, text) pairs for the entity encoder, in the order of `indices`."""
        taken = self._table.select(["title", "text"]).take(self._check_indices(indices))
        return list(zip(taken.column("title").to_pylist(), taken.column("text").to_pylist(), strict=True))

    def has_text(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        text = self._table.column("text").take(self._check_indices(indices))
        return pc.greater(pc.binary_length(text), 0).to_numpy(zero_copy_only=False).astype(bool)

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """Row numbers of `keys` (int64, -1 where absent). A key matches `id` first, then `qid`.

        Example:
            >>> cat.lookup(["Q90", "enwiki:paris", "nope"])
            array([ 0,  1, -1])
        """
        ids, qids = self._lookup_columns()
        keys_array = pa.array(list(keys), type=pa.string())
        by_id = pc.index_in(keys_array, options=pc.SetLookupOptions(ids, skip_nulls=True))
        rows = pc.fill_null(by_id, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            by_qid = pc.index_in(keys_array.take(missing), options=pc.SetLookupOptions(qids, skip_nulls=True))
            rows[missing] = pc.fill_null(by_qid, -1).to_numpy(zero_copy_only=False)
        return rows

    def _lookup_columns(self) -> tuple[pa.Array, pa.Array]:
        if self._key_columns is None:
            self._key_columns = (
                self._table.column("id").combine_chunks(),
                self._table.column("qid").combine_chunks(),
            )
        return self._key_columns

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> pa.Array:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = np.flatnonzero((idx < 0) | (idx >= len(self)))
        if len(bad):
            raise IndexError(
                f"catalogue row {int(idx[bad[0]])} out of range: the catalogue has {len(self)} rows"
            )
        return pa.array(idx, type=pa.int64())


# -- readers ---------------------------------------------------------------------------------------------


def _read_jsonl(url: str) -> pa.Table:
    filesystem, path = fs.filesystem(url)
    options = pajson.ParseOptions(explicit_schema=_PARSE_SCHEMA, unexpected_field_behavior="ignore")
    try:
        with filesystem.open(path, "rb", compression="infer") as f:
            return pajson.read_json(f, parse_options=options)
    except pa.ArrowInvalid as error:
        if "Empty JSON file" in str(error):
            return _PARSE_SCHEMA.empty_table()
        # pyarrow's message has a block-relative row at best: re-read line by line for the exact record.
        _explain_jsonl(url)
        raise InputRecordError(url, "?", "<file>", f"pyarrow could not parse the file: {error}") from error


_SAVED_KEY = "elq.catalogue"


def _saved_record(table: pa.Table) -> dict[str, Any] | None:
    """What `save` recorded in the file, when the table is still exactly that file's."""
    metadata = table.schema.metadata or {}
    raw = metadata.get(_SAVED_KEY.encode())
    if raw is None or not table.schema.remove_metadata().equals(CATALOGUE_SCHEMA):
        return None
    record = json.loads(raw)
    return record if record.get("rows") == table.num_rows and record.get("fingerprint") else None


def _read_parquet(url: str, filesystem: Any, path: str) -> pa.Table:
    if filesystem.isdir(path):
        files = sorted(p for p in filesystem.find(path) if p.endswith(".parquet"))
        if not files:
            raise CatalogueNotFoundError(f"entity catalogue not found: no .parquet files in {url}")
    else:
        files = [path]
    arrow_fs, _ = fs.arrow_filesystem(url)
    dataset = pads.dataset(files, filesystem=arrow_fs, format="parquet")
    columns = [name for name in _PARSE_SCHEMA.names if name in dataset.schema.names]
    return dataset.to_table(columns=columns)


def _normalise(table: pa.Table, source: str) -> pa.Table:
    """Select the catalogue columns, check their types, fill defaults (qid null, text "", aliases [])."""
    columns = []
    for field in _PARSE_SCHEMA:
        if field.name not in table.column_names:
            if field.name in _REQUIRED:
                raise InputRecordError(
                    source, "(column)", field.name, "missing column; id and title are required"
                )
            column = pa.chunked_array([pa.nulls(table.num_rows, field.type)], type=field.type)
        else:
            column = table.column(field.name)
            if not _castable(column.type, field.type):
                raise InputRecordError(
                    source, "(column)", field.name, f"has type {column.type}, expected {field.type}"
                )
            column = column.cast(field.type)
        if field.name == "text":
            column = pc.fill_null(column, "")
        elif field.name == "aliases":
            column = pc.fill_null(column, pa.scalar([], type=field.type))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=_PARSE_SCHEMA)


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    def stringish(t: pa.DataType) -> bool:
        return pa.types.is_null(t) or pa.types.is_string(t) or pa.types.is_large_string(t)

    if pa.types.is_null(actual):
        return True
    if pa.types.is_list(expected):
        return (pa.types.is_list(actual) or pa.types.is_large_list(actual)) and stringish(actual.value_type)
    return stringish(actual)


def _first_problem(table: pa.Table) -> tuple[int, str, str] | None:
    """(row, field, reason) of the first invalid row, found with vectorised checks; None if all are valid."""
    problems: list[tuple[int, str, str]] = []
    for name in _REQUIRED:
        column = table.column(name)
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), True)
        row = pc.index(blank, True).as_py()
        if row >= 0:
            reason = "missing" if column[row].as_py() is None else "empty"
            problems.append((row, name, f"{reason}; every entity needs a non-empty string {name}"))
    aliases = table.column("aliases")
    null_items = pc.is_null(pc.list_flatten(aliases))
    item = pc.index(null_items, True).as_py()
    if item >= 0:
        row = pc.list_parent_indices(aliases)[item].as_py()
        problems.append((row, "aliases", "contains null; aliases must be a list of strings"))
    ids = table.column("id").combine_chunks()
    first = pc.index_in(ids, value_set=ids).to_numpy(zero_copy_only=False)
    duplicates = np.flatnonzero(first != np.arange(len(ids)))
    if len(duplicates):
        row = int(duplicates[0])
        problems.append(
            (row, "id", f"duplicate id {ids[row].as_py()!r} (first at row {int(first[row]) + 1})")
        )
    return min(problems) if problems else None


# -- precise errors: the slow path, run only when the fast path found a problem ----------------------------


def _explain_jsonl(url: str) -> None:
    """Re-read `url` line by line and raise `InputRecordError` for the first bad record (1-based line)."""
    filesystem, path = fs.filesystem(url)
    seen: dict[str, int] = {}
    with filesystem.open(path, "rb", compression="infer") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputRecordError(url, number, "<line>", f"not UTF-8: {error}") from error
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputRecordError(url, number, "<line>", f"not valid JSON: {error}") from error
            _check_record(record, url, number, seen)


def _explain_records(records: Sequence[Any], source: str) -> None:
    seen: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        _check_record(record, source, number, seen)


def _check_record(record: Any, source: str, number: int, seen: dict[str, int]) -> None:
    if not isinstance(record, dict):
        raise InputRecordError(
            source, number, "<record>", f"expected a JSON object, got {type(record).__name__}"
        )
    for name in _REQUIRED:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            reason = "missing" if value is None else "empty"
            raise InputRecordError(
                source, number, name, f"{reason}; every entity needs a non-empty string {name}"
            )
        if not isinstance(value, str):
            raise InputRecordError(source, number, name, f"expected a string, got {type(value).__name__}")
    for name in ("qid", "text"):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise InputRecordError(
                source, number, name, f"expected a string or null, got {type(value).__name__}"
            )
    aliases = record.get("aliases")
    if aliases is not None and (
        not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases)
    ):
        raise InputRecordError(source, number, "aliases", "expected a list of strings or null")
    first = seen.setdefault(record["id"], number)
    if first != number:
        raise InputRecordError(
            source, number, "id", f"duplicate id {record['id']!r} (first at record {first})"
        )


# -- fingerprint -----------------------------------------------------------------------------------------


def _content_fingerprint(table: pa.Table) -> str:
    """Hash each column as (lengths stream, bytes stream) so chunking and buffer offsets do not matter."""
    final = hashlib.sha256()
    for name in ("id", "title", "text", "aliases"):
        list_lengths, lengths, data = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
        for chunk in table.column(name).chunks:
            if name == "aliases":
                list_lengths.update(pc.list_value_length(chunk).cast(pa.int64()).to_numpy().tobytes())
                chunk = chunk.flatten()
            _hash_strings(chunk, lengths, data)
        final.update(name.encode() + b"\0" + list_lengths.digest() + lengths.digest() + data.digest())
    return final.hexdigest()[:16]


def _hash_strings(chunk: pa.Array, lengths: Any, data: Any) -> None:
    if len(chunk) == 0:
        return
    offsets_buffer, data_buffer = chunk.buffers()[1:3]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
    lengths.update(np.diff(offsets).astype(np.int64).tobytes())
    if data_buffer is not None:
        data.update(memoryview(data_buffer)[int(offsets[0]) : int(offsets[-1])])
