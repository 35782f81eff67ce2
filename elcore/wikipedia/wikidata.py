"""Page id / title -> Wikidata QID, from a `page_props` SQL dump or a TSV/CSV file.

>>> m = load_wikidata_map("enwiki-20190801-page_props.sql.gz")
>>> m.qid(12, "Anarchism")
'Q6199'
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from elcore import fs
from elcore.errors import InputRecordError
from elcore.wikipedia.wikitext import normalize_title

_QID = re.compile(r"Q[1-9]\d*")
_SQL_ROW = re.compile(r"\((\d+),'((?:[^'\\]|\\.)*)','((?:[^'\\]|\\.)*)'(?:,(?:NULL|[-+.\deE]+))?\)")


@dataclass
class WikidataMap:
    """QIDs by page id and by normalised title; `disambiguation_ids` from `page_props` rows."""

    by_page_id: dict[int, str] = field(default_factory=dict)
    by_title: dict[str, str] = field(default_factory=dict)
    disambiguation_ids: set[int] = field(default_factory=set)

    def qid(self, page_id: int, title: str) -> str | None:
        return self.by_page_id.get(page_id) or self.by_title.get(title)

    def __len__(self) -> int:
        return len(self.by_page_id) + len(self.by_title)


def load_wikidata_map(url: str) -> WikidataMap:
    """Read a QID map: the `page_props` SQL dump (plain or compressed), or TSV/CSV `key,qid` rows.

    In TSV/CSV files the key is a page id (all digits) or a title; a first row whose second field is
    not a QID is taken as a header. Compression is inferred from the file name (`.gz`, `.bz2`).

    Raises:
        InputRecordError: a TSV/CSV row (after the header) has no valid QID.
    """
    fsys, path = fs.filesystem(url)
    with fsys.open(path, "rb", compression="infer") as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        first = stream.readline()
        if first.startswith(("--", "/*", "INSERT INTO", "CREATE TABLE", "DROP TABLE", "SET ")):
            return _read_sql(first, stream)
        return _read_delimited(url, first, stream)


def _read_sql(first: str, stream: io.TextIOWrapper) -> WikidataMap:
    result = WikidataMap()
    for line in _chain_lines(first, stream):
        if not line.startswith("INSERT INTO"):
            continue
        for page_id, prop, value in _SQL_ROW.findall(line):
            if prop == "wikibase_item" and _QID.fullmatch(value):
                result.by_page_id[int(page_id)] = value
            elif prop == "disambiguation":
                result.disambiguation_ids.add(int(page_id))
    return result


def _read_delimited(url: str, first: str, stream: io.TextIOWrapper) -> WikidataMap:
    delimiter = "\t" if url.endswith((".tsv", ".tab", ".tsv.gz", ".tsv.bz2")) or "\t" in first else ","
    result = WikidataMap()
    for number, row in enumerate(csv.reader(_chain_lines(first, stream), delimiter=delimiter), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        key = row[0].strip()
        qid = row[1].strip() if len(row) > 1 else ""
        if not _QID.fullmatch(qid):
            if number == 1:
                continue  # header
            raise InputRecordError(
                url, number, "qid", f"expected a QID like Q42 in the second column, got {qid!r}"
            )
        if key.isdigit():
            result.by_page_id[int(key)] = qid
        elif key:
            result.by_title[normalize_title(key)] = qid
    return result


def _chain_lines(first: str, stream: io.TextIOWrapper):
    yield first
    yield from stream
