"""The single-process build (`build_kb`) and the steps the Ray pipeline shares with it.

    >>> stats = build_kb(KbBuildConfig("enwiki-20190801-pages-articles.xml.bz2", "out/kb"))
    >>> sorted(stats.to_dict())[:3]       # also out/kb/stats.json
    ['aliases', 'article_pages', 'bytes_read']

Both paths run pass 1 (`parse_range` / one streaming pass: pages -> intermediate files) and then
`finish` (pass 2, statistics, clean-up), so they write byte-identical outputs.
"""

from __future__ import annotations

import itertools
import time

from elcore import fs, settings
from elcore.errors import ConfigError
from elcore.wikipedia.config import KbBuildConfig, KbBuildStats, resolve_tokenizer
from elcore.wikipedia.dump import ByteRange, DumpReader
from elcore.wikipedia.extract import PageParser, ParseSettings, PartResult, WorkWriter, parse_into
from elcore.wikipedia.kb import STATS_FILE, finalize


def parse_settings(config: KbBuildConfig, namespaces: dict[int, str]) -> ParseSettings:
    resolve_tokenizer(config.tokenizer)  # fail fast on the driver; workers resolve it themselves
    return ParseSettings(
        tokenizer=config.tokenizer,
        passage_max_wordpieces=config.passage_max_wordpieces,
        description_max_chars=config.description_max_chars,
        namespaces=namespaces,
        run_pages=config.run_pages,
        max_errors_reported=config.max_errors_reported,
    )


_WORK_PATTERNS = ("index-*.jsonl", "run-*.jsonl", "*.tmp-*")


def _remove_work_files(work: str) -> None:
    """Remove the intermediate files a build writes (and nothing else) from `work`."""
    fsys, path = fs.filesystem(work)
    if not fsys.exists(path):
        return
    for pattern in _WORK_PATTERNS:
        for name in fsys.glob(f"{path.rstrip('/')}/{pattern}"):
            fsys.rm(name)


def _clean_work_dir(config: KbBuildConfig) -> None:
    """Remove the intermediate files, and the work dir itself when nothing else is in it."""
    _remove_work_files(config.resolved_work_dir())
    fsys, path = fs.filesystem(config.resolved_work_dir())
    if fsys.exists(path) and not fsys.ls(path):
        fsys.rmdir(path)


def fresh_work_dir(config: KbBuildConfig) -> str:
    """The work dir, cleared of a previous run's intermediate files (so no stale run is merged)."""
    work = config.resolved_work_dir()
    _remove_work_files(work)
    fs.makedirs(work)
    return work


def parse_range(dump_url: str, byte_range: ByteRange, parser: PageParser, work_dir: str) -> PartResult:
    """Pass 1 over the bz2 streams in `byte_range` of a multistream dump."""
    reader = DumpReader(dump_url, byte_range.start, byte_range.end)
    writer = WorkWriter(work_dir, f"{byte_range.index:05d}", parser.settings.run_pages)
    stats = KbBuildStats(mode="parallel")
    cpu = time.process_time()
    parse_into(reader, parser, writer, stats)
    result = writer.close()
    stats.seconds["parse_cpu"] = round(time.process_time() - cpu, 3)
    stats.bytes_read = reader.bytes_read
    result.stats = stats
    return result


def finish(
    config: KbBuildConfig, parts: list[PartResult], stats: KbBuildStats, started: float
) -> KbBuildStats:
    """Pass 2, timings, `stats.json`, and removal of the work dir.

    Raises:
        ConfigError: pass 1 found no page at all (the input is not a MediaWiki XML dump).
    """
    if stats.pages_seen == 0:
        _clean_work_dir(config)
        raise ConfigError(
            f"{config.dump}: no <page> found, so this is not a MediaWiki XML dump; give a "
            "pages-articles dump (.xml, .xml.bz2 or the multistream .xml.bz2 with its index)"
        )
    parsed = time.perf_counter()
    stats.seconds["parse"] = round(parsed - started, 3)
    stats.pages_per_second = round(stats.pages_seen / max(parsed - started, 1e-9), 1)
    finalize(config, parts, stats)
    done = time.perf_counter()
    stats.seconds["finalize"] = round(done - parsed, 3)
    stats.seconds["total"] = round(done - started, 3)
    fs.write_json_atomic(fs.join(config.output, STATS_FILE), stats.to_dict())
    if not config.keep_work_dir:
        _clean_work_dir(config)
    if config.progress:
        d = stats.to_dict()
        print(
            f"kb build ({stats.mode}): {d['pages_seen']} pages, {d['catalogue_rows']} catalogue rows, "
            f"{d['redirects']} redirects, {d['disambiguations']} disambiguations, skipped {d['skipped']}; "
            f"links {d['links_resolved']}/{d['links_found']} resolved; {d['passages_written']} passages; "
            f"{d['pages_per_second']} pages/s parse, {d['seconds']['total']} s total"
        )
    return stats


def build_kb(config: KbBuildConfig) -> KbBuildStats:
    """Build the catalogue and the hyperlink passages in one streaming pass over the dump (no Ray).

    Writes `catalogue.parquet`, `passages.jsonl` and `stats.json` into `config.output`.

    Raises:
        ConfigError: a configuration value is out of range.
        ModelNotFoundError: the tokenizer cannot be found.
    """
    from tqdm.auto import tqdm

    config.validate()
    settings.hf_offline()
    started, cpu = time.perf_counter(), time.process_time()
    work = fresh_work_dir(config)
    stats = KbBuildStats(mode="single", num_blocks=1)
    reader = DumpReader(config.dump)
    pages = iter(reader)
    first = next(pages, None)  # reads the header, so the siteinfo namespaces are known
    parser = PageParser(parse_settings(config, reader.siteinfo.namespaces))
    writer = WorkWriter(work, "single", config.run_pages)
    fsys, path = fs.filesystem(config.dump)
    bar = tqdm(total=fsys.size(path), desc="parse", unit="B", unit_scale=True, disable=not config.progress)
    ticks = itertools.count(1)

    def on_page() -> None:
        if next(ticks) % 256 == 0:
            bar.update(reader.bytes_read - bar.n)
            bar.set_postfix(pages=stats.pages_seen, refresh=False)

    parse_into(itertools.chain([first] if first is not None else [], pages), parser, writer, stats, on_page)
    stats.seconds["parse_cpu"] = round(time.process_time() - cpu, 3)
    bar.update(reader.bytes_read - bar.n)
    bar.close()
    stats.bytes_read = reader.bytes_read
    return finish(config, [writer.close()], stats, started)
