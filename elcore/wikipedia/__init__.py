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

import importlib
from typing import Any

# Loaded on first use, so `elq` can build `kb build`'s options from `KbBuildConfig` without
# importing the parsers (mwparserfromhell, transformers' tokenizer) for every command.
_HOMES = {
    "build_kb": "build",
    "KbBuildConfig": "config",
    "KbBuildStats": "config",
    "DumpReader": "dump",
    "PageError": "dump",
    "RawPage": "dump",
    "write_dump": "dump",
    "ANCHORS_FILE": "kb",
    "CATALOGUE_FILE": "kb",
    "CATALOGUE_SCHEMA": "kb",
    "PASSAGES_FILE": "kb",
    "STATS_FILE": "kb",
    "WikidataMap": "wikidata",
    "load_wikidata_map": "wikidata",
    "parse_article": "wikitext",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


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
