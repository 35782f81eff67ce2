"""Knowledge base and hyperlink training data from a Wikipedia pages-articles dump (no Ray here).

Module map:
- `config`: `KbBuildConfig` (the job), `KbBuildStats` (its counts, `to_dict()`).
- `dump`: stream `<page>`s out of plain / bz2 / multistream dumps with bounded memory; bad streams
  and pages become `PageError`s; multistream index and byte ranges; `write_dump` for samples.
- `wikitext`: wikitext -> clean paragraphs with link spans (mwparserfromhell); titles; descriptions.
- `passages`: paragraphs -> passages of at most N wordpieces without cutting links; seeded sample.
- `wikidata`: page id / title -> QID from `page_props` SQL or TSV/CSV.
- `extract`: pass 1, pages -> intermediate index and sorted run files (one part per byte range).
- `kb`: pass 2, resolve links through redirects, write `catalogue.parquet` and `passages.jsonl`.
- `build`: `build_kb(config)`, the single streaming pass; `pipelines.wikipedia.run` is the Ray one.

Tests: `tests/test_wikipedia.py`; benchmark: `benchmarks/bench_wikipedia.py`.

    >>> from elcore.wikipedia import KbBuildConfig, build_kb
    >>> build_kb(KbBuildConfig("dump.xml.bz2", "out/kb")).catalogue_rows
    3
"""

from elcore.wikipedia.build import build_kb
from elcore.wikipedia.config import KbBuildConfig, KbBuildStats
from elcore.wikipedia.dump import DumpReader, PageError, RawPage, write_dump
from elcore.wikipedia.kb import ANCHORS_FILE, CATALOGUE_FILE, CATALOGUE_SCHEMA, PASSAGES_FILE, STATS_FILE
from elcore.wikipedia.wikidata import WikidataMap, load_wikidata_map
from elcore.wikipedia.wikitext import parse_article

__all__ = [
    "ANCHORS_FILE",
    "CATALOGUE_FILE",
    "CATALOGUE_SCHEMA",
    "PASSAGES_FILE",
    "STATS_FILE",
    "DumpReader",
    "KbBuildConfig",
    "KbBuildStats",
    "PageError",
    "RawPage",
    "WikidataMap",
    "build_kb",
    "load_wikidata_map",
    "parse_article",
    "write_dump",
]
