"""A folder of parts written one at a time, each checked before a re-run trusts it.

A part is a set of files, by default Parquet tables (e.g. `links/part-00003.parquet` and
`status/part-00003.parquet`; other names and raw bytes such as FAISS shards with `names`), plus a
record `parts/part-00003.json` written last: each file's row count, byte size and sha256, and the
part's counts (what the job reports). A part counts as done only when its record exists and
every table still matches it, so a truncated or corrupt file is found and the part written again,
never skipped as done nor read as data. Writes are atomic (temp + rename through fsspec).

    >>> store = PartStore("s3://bucket/out", tables=("links", "status"))
    >>> store.write("part-00003", {"links": links, "status": status}, counts={"docs": 100})
    >>> store.done()            # {"part-00003": {...record...}}: verified parts a re-run skips
    >>> store.read("links")     # every verified part's links, in part order
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import fs

log = logging.getLogger(__name__)

RECORDS = "parts"
NO_RECORD = "no record"


class PartStore:
    """Parts under `url`, each made of the named `tables`.

    Args:
        tables: the files of every part; None: each part's files are those its record lists, named by
            their path under `url` (parts whose files another library writes, see `seal`).
        names: per table, its file name pattern relative to `url` with `{part}` in it (default:
            `{table}/{part}.parquet`, see `relative`); a table written as bytes is stored as given.
    """

    def __init__(
        self, url: str, tables: Sequence[str] | None, names: Mapping[str, str] | None = None
    ) -> None:
        self.url, self.names = url, dict(names or {})
        self.tables = tuple(tables) if tables is not None else None

    @staticmethod
    def relative(table: str, part: str) -> str:
        """Where one Parquet table of a part lives by default, relative to the store's folder."""
        return f"{table}/{part}.parquet"

    def _file(self, table: str, part: str) -> str:
        if self.tables is None:
            return fs.join(self.url, table)
        pattern = self.names.get(table)
        return fs.join(self.url, pattern.format(part=part) if pattern else self.relative(table, part))

    def _record(self, part: str) -> str:
        return fs.join(self.url, RECORDS, f"{part}.json")

    def write(
        self, part: str, tables: Mapping[str, pa.Table | bytes], counts: Mapping[str, int]
    ) -> dict[str, Any]:
        """Write the part's tables (Parquet, or bytes as they are), then its record (which makes it
        done); returns the record."""
        files = {}
        for name in self.tables or tables:
            value = tables[name]
            if isinstance(value, pa.Table):
                buffer = io.BytesIO()
                pq.write_table(value, buffer)
                data, rows = buffer.getvalue(), value.num_rows
            else:
                data, rows = bytes(value), None
            fs.write_bytes_atomic(self._file(name, part), data)
            files[name] = {"rows": rows, "bytes": len(data), "sha256": _sha256(data)}
        return self._write_record(part, files, counts)

    def seal(self, part: str, files: Sequence[str], counts: Mapping[str, int]) -> dict[str, Any]:
        """Record `files`, already written in place (e.g. by a library that writes its own), as the
        part's files (hashed as streams); this makes the part done. Returns the record."""
        listed = {}
        for name in files:
            url = self._file(name, part)
            filesystem, path = fs.filesystem(url)
            listed[name] = {"rows": None, "bytes": filesystem.size(path), "sha256": _stream_sha256(url)}
        return self._write_record(part, listed, counts)

    def _write_record(self, part: str, files: dict[str, dict], counts: Mapping[str, int]) -> dict[str, Any]:
        record = {"part": part, "files": files, "counts": dict(counts)}
        fs.write_json_atomic(self._record(part), record)
        return record

    def records(self) -> dict[str, dict[str, Any]]:
        """Every part's record as written, by part name (files not checked: see `done`)."""
        filesystem, path = fs.filesystem(fs.join(self.url, RECORDS))
        if not filesystem.exists(path):
            return {}
        names = (entry.rstrip("/").rsplit("/", 1)[-1] for entry in filesystem.ls(path, detail=False))
        parts = sorted(name[: -len(".json")] for name in names if name.endswith(".json"))
        return {part: fs.read_json(self._record(part)) for part in parts}

    def done(self) -> dict[str, dict[str, Any]]:
        """Records of the parts whose files all match them; a mismatching part is logged and left out
        (its files are rewritten when the part runs again)."""
        return {
            part: record
            for part, record in self.records().items()
            if self._verified(part, record, keep=False) is not None
        }

    def problem(self, part: str, checksums: bool = True) -> str | None:
        """What is wrong with a part's files, or None: `NO_RECORD`, an unreadable record, or what `check`
        finds."""
        url = self._record(part)
        try:
            record = fs.read_json(url)
        except FileNotFoundError:
            return NO_RECORD
        except (OSError, ValueError) as error:
            return f"its record {url} cannot be read ({error})"
        return self.check(part, record, checksums)

    def check(self, part: str, record: dict[str, Any], checksums: bool = True) -> str | None:
        """What is wrong with a part's files against `record` (a file missing, cut short or, with
        `checksums`, changed; without, only names and sizes are checked), or None."""
        return self._check(part, record, keep=False, checksums=checksums)[0]

    def _verified(self, part: str, record: dict[str, Any], keep: bool = True) -> dict[str, bytes] | None:
        """The part's file contents (`keep`; else empty: files are hashed as streams, so checking a
        multi-GB shard holds none of it) when every file matches its record; None (logged) otherwise."""
        problem, contents = self._check(part, record, keep)
        if problem is None:
            return contents
        log.warning("%s: %s; it will be written again", fs.join(self.url, part), problem)
        return None

    def _check(
        self, part: str, record: dict[str, Any], keep: bool, checksums: bool = True
    ) -> tuple[str | None, dict[str, bytes]]:
        contents = {}
        for name in self.tables if self.tables is not None else list(record["files"]):
            want = record["files"].get(name)
            url = self._file(name, part)
            filesystem, path = fs.filesystem(url)
            data = b""
            if want is None or not filesystem.exists(path):
                problem = f"{name} file missing"
            elif (size := filesystem.size(path)) != want["bytes"]:  # before reading it
                problem = f"{name} file is {size} bytes, its record says {want['bytes']}"
            elif not checksums:
                continue
            elif (_sha256(data := fs.read_bytes(url)) if keep else _stream_sha256(url)) != want["sha256"]:
                problem = f"{name} file's checksum differs from its record"
            else:
                if keep:
                    contents[name] = data
                continue
            return problem, {}
        return None, contents

    def read(self, table: str, parts: Sequence[str] | None = None) -> pa.Table | None:
        """One table of the verified parts (or of `parts`, unchecked), in part order; None if none."""
        if parts is None:
            checked = (self._verified(p, record) for p, record in self.records().items())
            contents = [files[table] for files in checked if files]
        else:
            contents = [fs.read_bytes(self._file(table, p)) for p in parts]
        tables = [pq.read_table(io.BytesIO(data)) for data in contents]
        return pa.concat_tables(tables) if tables else None

    @staticmethod
    def totals(records: Mapping[str, dict[str, Any]]) -> dict[str, int]:
        """Every count summed over `records`."""
        out: dict[str, int] = {}
        for record in records.values():
            for key, value in record["counts"].items():
                out[key] = out.get(key, 0) + int(value)
        return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stream_sha256(url: str, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    filesystem, path = fs.filesystem(url)
    with filesystem.open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
