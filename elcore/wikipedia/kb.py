"""Pass 2: resolve titles and redirects globally, then write the catalogue and the training passages.

Reads the pass-1 index files (small: page id, kind, title, redirect target) into title and redirect
maps, follows redirect chains (up to `MAX_REDIRECT_HOPS`), and streams the sorted run files merged by
page id, writing `catalogue.parquet`, `passages.jsonl` and `anchors.parquet` (anchor text -> entity
counts, for `elcore.priors`) row by row. Memory holds the maps (one entry per title) and
one catalogue batch, never the article text of the whole dump.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from elcore import fs
from elcore.catalogue import CATALOGUE_SCHEMA as ELQ_CATALOGUE_SCHEMA
from elcore.wikipedia.config import KbBuildConfig, KbBuildStats
from elcore.wikipedia.extract import PartResult, RunInfo
from elcore.wikipedia.passages import in_sample
from elcore.wikipedia.wikidata import WikidataMap, load_wikidata_map

#: The elcore catalogue schema (`id`, `qid`, `title`, `text`, `aliases`) plus `page_id`.
CATALOGUE_SCHEMA = pa.schema([*ELQ_CATALOGUE_SCHEMA, pa.field("page_id", pa.int64())])
CATALOGUE_FILE, PASSAGES_FILE, STATS_FILE = "catalogue.parquet", "passages.jsonl", "stats.json"
ANCHORS_FILE = "anchors.parquet"
#: Anchor text -> target counts, summed over a batch of articles per write (the same pair can recur in
#: later batches): `PriorTable.build(anchor_counts=...)` sums them all.
ANCHORS_SCHEMA = pa.schema(
    [pa.field("surface", pa.string()), pa.field("entity", pa.string()), pa.field("count", pa.int32())]
)
MAX_REDIRECT_HOPS = 5
_BATCH_ROWS = 10_000


@dataclass
class TitleMaps:
    """Everything pass 2 knows about titles: catalogue articles, redirects, disambiguation pages."""

    title_by_pid: dict[int, str] = field(default_factory=dict)
    pid_by_title: dict[str, int] = field(default_factory=dict)
    disambiguation: set[str] = field(default_factory=set)
    redirect: dict[str, int | str] = field(default_factory=dict)  # title -> page id, or why not
    aliases: dict[int, list[str]] = field(default_factory=dict)
    qid_by_pid: dict[int, str] = field(default_factory=dict)
    qid_owner: dict[str, int] = field(default_factory=dict)

    def resolve(self, title: str) -> tuple[int | None, str]:
        """`(page_id, how)`: how is `direct` or `redirect`; or `(None, reason)` with reason
        `disambiguation`, `missing`, `broken_redirect` or `redirect_loop`."""
        pid = self.pid_by_title.get(title)
        if pid is not None:
            return pid, "direct"
        if title in self.disambiguation:
            return None, "disambiguation"
        via = self.redirect.get(title)
        if via is None:
            return None, "missing"
        return (via, "redirect") if isinstance(via, int) else (None, via)

    def entity_id(self, pid: int) -> str:
        """The catalogue id: the QID when this page owns it, else `enwiki:<page id>`."""
        qid = self.qid_by_pid.get(pid)
        return qid if qid is not None and self.qid_owner.get(qid) == pid else f"enwiki:{pid}"


def build_maps(parts: list[PartResult], wikidata: WikidataMap | None, stats: KbBuildStats) -> TitleMaps:
    """Read the index files (in dump order) into `TitleMaps`."""
    maps = TitleMaps()
    redirects: dict[str, str | None] = {}
    dab_ids = wikidata.disambiguation_ids if wikidata is not None else set()
    for part in parts:
        fsys, path = fs.filesystem(part.index_path)
        with fsys.open(path, "r", encoding="utf-8") as f:
            for line in f:
                pid, kind, title, target = json.loads(line)
                if kind == "redirect":
                    redirects.setdefault(title, target)
                elif kind == "disambiguation" or pid in dab_ids:
                    maps.disambiguation.add(title)
                    if kind == "article":  # marked only by page_props
                        stats.disambiguations += 1
                elif pid in maps.title_by_pid:
                    stats.skip("duplicate_page_id")
                elif title in maps.pid_by_title:
                    stats.skip("duplicate_title")
                else:
                    maps.title_by_pid[pid] = title
                    maps.pid_by_title[title] = pid
    for title, target in redirects.items():
        result = _follow(title, target, maps, redirects)
        maps.redirect[title] = result
        if isinstance(result, int) and title not in maps.pid_by_title:
            maps.aliases.setdefault(result, []).append(title)
    if wikidata is not None:
        for pid in sorted(maps.title_by_pid):
            qid = wikidata.qid(pid, maps.title_by_pid[pid])
            if qid is None:
                continue
            maps.qid_by_pid[pid] = qid
            if qid in maps.qid_owner:
                stats.duplicate_qids += 1
            else:
                maps.qid_owner[qid] = pid
    return maps


def _follow(title: str, target: str | None, maps: TitleMaps, redirects: dict[str, str | None]) -> int | str:
    seen = {title}
    for _ in range(MAX_REDIRECT_HOPS):
        if not target:
            return "broken_redirect"
        pid = maps.pid_by_title.get(target)
        if pid is not None:
            return pid
        if target in maps.disambiguation:
            return "disambiguation"
        if target not in redirects:
            return "broken_redirect"
        if target in seen:
            return "redirect_loop"
        seen.add(target)
        target = redirects[target]
    return "redirect_loop"


def _read_run(run: RunInfo) -> Iterator[dict[str, Any]]:
    fsys, path = fs.filesystem(run.path)
    with fsys.open(path, "r", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def iter_articles(parts: list[PartResult]) -> Iterator[dict[str, Any]]:
    """Article records of every run, in page-id order. Runs of a page-id-sorted dump do not overlap
    and are read one after another; otherwise they are merged (one open file per run)."""
    runs = sorted((r for part in parts for r in part.runs), key=lambda r: (r.first_id, r.last_id))
    if all(a.last_id < b.first_id for a, b in itertools.pairwise(runs)):
        for run in runs:
            yield from _read_run(run)
    else:
        yield from heapq.merge(*(_read_run(r) for r in runs), key=lambda rec: rec["id"])


class _Outputs:
    """Stream catalogue rows to Parquet and passages to jsonl; both appear only when complete."""

    def __init__(self, output_dir: str) -> None:
        fs.makedirs(output_dir)
        self.catalogue_url = fs.join(output_dir, CATALOGUE_FILE)
        self.passages_url = fs.join(output_dir, PASSAGES_FILE)
        self.anchors_url = fs.join(output_dir, ANCHORS_FILE)
        self._fs, self._cat_tmp = fs.filesystem(self.catalogue_url + ".tmp")
        _, self._pas_tmp = fs.filesystem(self.passages_url + ".tmp")
        _, self._anc_tmp = fs.filesystem(self.anchors_url + ".tmp")
        arrow_fs, arrow_path = fs.arrow_filesystem(self.catalogue_url + ".tmp")
        self._writer = pq.ParquetWriter(arrow_path, CATALOGUE_SCHEMA, filesystem=arrow_fs)
        self._anchor_writer = pq.ParquetWriter(
            fs.arrow_filesystem(self.anchors_url + ".tmp")[1], ANCHORS_SCHEMA, filesystem=arrow_fs
        )
        self._passages = self._fs.open(self._pas_tmp, "wb")
        self._rows: list[dict[str, Any]] = []
        self._anchors: Counter[tuple[str, str]] = Counter()

    def row(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= _BATCH_ROWS:
            self._flush()

    def passages(self, lines: list[str]) -> None:
        if lines:
            self._passages.write("".join(lines).encode("utf-8"))

    def anchors(self, counts: Counter[tuple[str, str]]) -> None:
        self._anchors.update(counts)
        if len(self._anchors) >= _BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=CATALOGUE_SCHEMA))
            self._rows = []
        if self._anchors:
            pairs = list(self._anchors)
            columns = [[s for s, _ in pairs], [e for _, e in pairs], list(self._anchors.values())]
            self._anchor_writer.write_table(pa.table(columns, schema=ANCHORS_SCHEMA))
            self._anchors = Counter()

    def abort(self) -> None:
        """Close and remove the temporary files (after an error)."""
        self._writer.close()
        self._anchor_writer.close()
        self._passages.close()
        for tmp in (self._cat_tmp, self._pas_tmp, self._anc_tmp):
            if self._fs.exists(tmp):
                self._fs.rm(tmp)

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._anchor_writer.close()
        self._passages.close()
        for tmp, url in (
            (self._cat_tmp, self.catalogue_url),
            (self._pas_tmp, self.passages_url),
            (self._anc_tmp, self.anchors_url),
        ):
            self._fs.mv(tmp, fs.filesystem(url)[1])


def _passage_lines(
    record: dict[str, Any],
    maps: TitleMaps,
    config: KbBuildConfig,
    stats: KbBuildStats,
    anchors: Counter[tuple[str, str]],
) -> list[str]:
    """The article's passage lines; every resolved link's anchor text is counted in `anchors` (all of
    them, whether or not their passage is kept)."""
    pid, lines, kept = record["id"], [], 0
    for n, (text, links) in enumerate(record["windows"]):
        stats.passages_made += 1
        mentions: list[tuple[int, int, int]] = []
        unresolved = False
        for start, end, target in links:
            stats.links_found += 1
            target_pid, how = maps.resolve(target)
            if target_pid == pid:
                stats.links_self += 1
            elif target_pid is None:
                stats.links_unresolved[how] = stats.links_unresolved.get(how, 0) + 1
                unresolved = True
            else:
                stats.links_resolved += 1
                stats.links_via_redirect += how == "redirect"
                mentions.append((start, end, target_pid))
                anchors[(text[start:end], maps.entity_id(target_pid))] += 1
        passage_id = f"{pid}-{n}"
        if unresolved and not config.keep_partial_passages:
            reason = "unresolved_link"
        elif len(mentions) < config.min_mentions_per_passage:
            reason = "too_few_mentions"
        elif config.max_passages_per_article is not None and kept >= config.max_passages_per_article:
            reason = "per_article_cap"
        else:
            kept += 1
            reason = "" if in_sample(config.seed, passage_id, config.sample_fraction) else "sample"
        if reason:
            stats.passages_dropped[reason] = stats.passages_dropped.get(reason, 0) + 1
            continue
        stats.passages_written += 1
        stats.mentions_written += len(mentions)
        line = {
            "id": passage_id,
            "text": text,
            "mentions": [[s, e] for s, e, _ in mentions],
            "wikidata_id": [maps.qid_by_pid.get(t) for _, _, t in mentions],
            "entity": [maps.title_by_pid[t] for _, _, t in mentions],
            "entity_id": [maps.entity_id(t) for _, _, t in mentions],
            "span_source": ["anchor"] * len(mentions),
        }
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    return lines


def finalize(config: KbBuildConfig, parts: list[PartResult], stats: KbBuildStats) -> None:
    """Pass 2: write `catalogue.parquet`, `passages.jsonl` and `anchors.parquet` into `config.output`."""
    from tqdm.auto import tqdm

    wikidata = load_wikidata_map(config.wikidata_map) if config.wikidata_map else None
    maps = build_maps(parts, wikidata, stats)
    del wikidata
    outputs = _Outputs(config.output)
    last = None
    bar = tqdm(total=len(maps.title_by_pid), desc="write", unit="page", disable=not config.progress)
    try:
        for record in iter_articles(parts):
            pid = record["id"]
            if pid == last or maps.title_by_pid.get(pid) != record["title"]:
                continue  # a duplicate, or a page that page_props marks as a disambiguation page
            last = pid
            outputs.row(_catalogue_row(record, maps, stats))
            anchors: Counter[tuple[str, str]] = Counter()
            outputs.passages(_passage_lines(record, maps, config, stats, anchors))
            outputs.anchors(anchors)
            bar.update()
    except BaseException:
        outputs.abort()
        raise
    finally:
        bar.close()
    outputs.close()


def _catalogue_row(record: dict[str, Any], maps: TitleMaps, stats: KbBuildStats) -> dict[str, Any]:
    pid = record["id"]
    aliases = sorted({a for a in maps.aliases.get(pid, ()) if a != record["title"]})
    qid = maps.qid_by_pid.get(pid)
    stats.catalogue_rows += 1
    stats.rows_with_qid += qid is not None
    stats.rows_with_text += bool(record["text"])
    stats.aliases += len(aliases)
    return {
        "id": maps.entity_id(pid),
        "qid": qid,
        "title": record["title"],
        "text": record["text"],
        "aliases": aliases,
        "page_id": pid,
    }
