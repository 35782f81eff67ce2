"""`elq kb build` on Ray Data: a multistream dump's byte ranges parsed in parallel, then pass 2.

    ranges (from the multistream index) -> map_batches(RangeParser) -> part files -> finish (pass 2)

Without a multistream index (or with `parallel=False`) `run` is `elcore.wikipedia.build_kb`, one
streaming pass; both write byte-identical outputs.

    python -m pipelines.wikipedia --dump enwiki-20190801-pages-articles-multistream.xml.bz2 \\
        --index enwiki-20190801-pages-articles-multistream-index.txt.bz2 --output-dir out/kb
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from elcore import fs, settings
from elcore.errors import ConfigError
from elcore.wikipedia.build import build_kb, finish, fresh_work_dir, parse_range, parse_settings
from elcore.wikipedia.config import KbBuildConfig, KbBuildStats
from elcore.wikipedia.dump import ByteRange, plan_ranges, read_multistream_index, read_siteinfo
from elcore.wikipedia.extract import PageParser, ParseSettings, PartResult


class RangeParser:
    """Ray Data adapter: one `PageParser` (tokenizer loaded once) per actor; a row is a byte range,
    the output row its `PartResult` as JSON."""

    def __init__(self, dump_url: str, parse: ParseSettings, work_dir: str) -> None:
        self.dump_url, self.work_dir = dump_url, work_dir
        self.parser = PageParser(parse)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        results = []
        for index, start, end in zip(batch["index"], batch["start"], batch["end"], strict=True):
            byte_range = ByteRange(int(index), int(start), int(end))
            results.append(
                json.dumps(parse_range(self.dump_url, byte_range, self.parser, self.work_dir).to_dict())
            )
        return {"index": [int(i) for i in batch["index"]], "result": results}


def run(config: KbBuildConfig) -> KbBuildStats:
    """Build the catalogue and hyperlink passages; Ray Data over byte ranges when a multistream
    index is given and `config.parallel`, else one streaming pass.

    Raises:
        ConfigError: a configuration value is out of range, or an index is given for a dump that
            is not bz2.
        InputRecordError: the index has a malformed line.
    """
    config.validate()
    if not (config.parallel and config.index_url):
        return build_kb(config)
    import ray
    from ray.data import ActorPoolStrategy, DataContext
    from tqdm.auto import tqdm

    settings.hf_offline()
    started = time.perf_counter()
    fsys, path = fs.filesystem(config.dump_url)
    with fsys.open(path, "rb") as f:
        if not f.read(3).startswith(b"BZh"):
            raise ConfigError(
                f"index_url is given but {config.dump_url} is not a bz2 multistream dump; drop it"
            )
    offsets = read_multistream_index(config.index_url)
    if not offsets:
        raise ConfigError(f"{config.index_url}: the multistream index lists no streams")
    siteinfo = read_siteinfo(config.dump_url, end=offsets[0])
    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    workers = config.num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    ranges = plan_ranges(offsets, fsys.size(path), config.num_blocks or 4 * workers)
    work = fresh_work_dir(config)
    DataContext.get_current().enable_progress_bars = config.progress
    rows = [{"index": r.index, "start": r.start, "end": r.end} for r in ranges]
    parsed = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        RangeParser,
        fn_constructor_kwargs={
            "dump_url": config.dump_url,
            "parse": parse_settings(config, siteinfo.namespaces),
            "work_dir": work,
        },
        batch_size=1,
        compute=ActorPoolStrategy(size=min(workers, len(ranges))),
        num_cpus=config.cpus_per_worker,
    )
    parts: list[PartResult] = []
    bar = tqdm(total=len(ranges), desc="parse ranges", unit="range", disable=not config.progress)
    for row in parsed.iter_rows():
        parts.append(PartResult.from_dict(json.loads(row["result"])))
        bar.update()
    bar.close()
    parts.sort(key=lambda p: p.part)  # dump order, whatever order the ranges finished in
    stats = KbBuildStats(mode="parallel", num_blocks=len(ranges), bytes_read=offsets[0])
    for part in parts:
        stats.merge(part.stats, config.max_errors_reported)
    return finish(config, parts, stats, started)


def _parser() -> argparse.ArgumentParser:
    d = KbBuildConfig("", "")
    p = argparse.ArgumentParser(prog="python -m pipelines.wikipedia", description=__doc__.split("\n")[0])
    p.add_argument(
        "--dump", required=True, help="pages-articles dump (xml, bz2, multistream bz2), fsspec URL"
    )
    p.add_argument("--output-dir", required=True, help="writes catalogue.parquet, passages.jsonl, stats.json")
    p.add_argument("--index", help="multistream index (offset:page_id:title); enables the parallel path")
    p.add_argument("--wikidata-map", help="page_props SQL dump, or TSV/CSV of page id or title -> QID")
    p.add_argument("--description-max-chars", type=int, default=d.description_max_chars)
    p.add_argument("--passage-max-wordpieces", type=int, default=d.passage_max_wordpieces)
    p.add_argument("--tokenizer", help="BERT fast tokenizer folder/tokenizer.json (default: shipped MiniLM)")
    p.add_argument("--keep-partial-passages", action="store_true", help="keep passages with unresolved links")
    p.add_argument("--min-mentions-per-passage", type=int, default=d.min_mentions_per_passage)
    p.add_argument("--max-passages-per-article", type=int)
    p.add_argument("--sample-fraction", type=float, default=d.sample_fraction)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-parallel", dest="parallel", action="store_false", help="one streaming pass, no Ray")
    p.add_argument("--num-blocks", type=int, help="byte ranges (default: 4 per worker)")
    p.add_argument("--num-workers", type=int, help="Ray actors (default: cluster CPUs)")
    p.add_argument("--cpus-per-worker", type=float, default=d.cpus_per_worker)
    p.add_argument("--work-dir", help="intermediate files (default: <output-dir>/_work)")
    p.add_argument("--keep-work-dir", action="store_true")
    p.add_argument("--run-pages", type=int, default=d.run_pages)
    p.add_argument("--max-errors-reported", type=int, default=d.max_errors_reported)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> KbBuildStats:
    args = vars(_parser().parse_args(argv))
    args["dump_url"], args["index_url"] = args.pop("dump"), args.pop("index")
    args["wikidata_map_url"] = args.pop("wikidata_map")
    stats = run(KbBuildConfig(**args))
    summary = {k: v for k, v in stats.to_dict().items() if k != "errors"}
    print(json.dumps(summary, indent=2))
    return stats


if __name__ == "__main__":
    main()
