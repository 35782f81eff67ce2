"""`elq kb build` on Ray Data: a multistream dump's byte ranges parsed in parallel, then pass 2.

    ranges (from the multistream index) -> map_batches(RangeParser) -> part files -> finish (pass 2)

Without a multistream index (or with `parallel=False`) `run` is `elcore.wikipedia.build_kb`, one
streaming pass; both write byte-identical outputs.

    python -m pipelines.wikipedia --dump enwiki-20190801-pages-articles-multistream.xml.bz2 \\
        --index enwiki-20190801-pages-articles-multistream-index.txt.bz2 --output out/kb
"""

from __future__ import annotations

import json
import time
from typing import Any

from elcore import fs, settings
from elcore.errors import ConfigError
from elcore.wikipedia.build import build_kb, finish, fresh_work_dir, parse_range, parse_settings
from elcore.wikipedia.config import KbBuildConfig, KbBuildStats
from elcore.wikipedia.dump import ByteRange, plan_ranges, read_multistream_index, read_siteinfo
from elcore.wikipedia.extract import PageParser, ParseSettings, PartResult

from .options import run_command_line


class RangeParser:
    """Ray Data adapter: one `PageParser` (tokenizer loaded once) per actor; a row is a byte range,
    the output row its `PartResult` as JSON."""

    def __init__(self, dump: str, parse: ParseSettings, work_dir: str) -> None:
        self.dump, self.work_dir = dump, work_dir
        self.parser = PageParser(parse)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        results = []
        for index, start, end in zip(batch["index"], batch["start"], batch["end"], strict=True):
            byte_range = ByteRange(int(index), int(start), int(end))
            results.append(
                json.dumps(parse_range(self.dump, byte_range, self.parser, self.work_dir).to_dict())
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
    if not (config.parallel and config.index):
        return build_kb(config)
    import ray
    from ray.data import ActorPoolStrategy, DataContext
    from tqdm.auto import tqdm

    settings.hf_offline()
    started = time.perf_counter()
    fsys, path = fs.filesystem(config.dump)
    with fsys.open(path, "rb") as f:
        if not f.read(3).startswith(b"BZh"):
            raise ConfigError(f"--index is given but {config.dump} is not a bz2 multistream dump; drop it")
    offsets = read_multistream_index(config.index)
    if not offsets:
        raise ConfigError(f"{config.index}: the multistream index lists no streams")
    siteinfo = read_siteinfo(config.dump, end=offsets[0])
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
            "dump": config.dump,
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


def build(config: KbBuildConfig) -> dict[str, Any]:
    """`run`, and its statistics as a summary (the bad pages stay in `stats.json`)."""
    return {k: v for k, v in run(config).to_dict().items() if k != "errors"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command_line(KbBuildConfig, build, "kb build", argv)


if __name__ == "__main__":
    main()
