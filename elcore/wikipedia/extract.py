"""Pass 1: pages -> intermediate files (no global knowledge needed, so byte ranges run in parallel).

Per part (the whole dump, or one byte range) this writes:

- `index-<part>.jsonl`: one small line per namespace-0 page, `[page_id, kind, title, redirect_target]`
  with kind `article`, `redirect` or `disambiguation`; pass 2 builds the title and redirect maps
  from these.
- `run-<part>-<k>.jsonl`: articles (page id, title, description, passages with unresolved link
  targets), at most `run_pages` per file, each file sorted by page id; pass 2 merges them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from elcore import fs
from elcore.wikipedia.config import KbBuildStats, resolve_tokenizer
from elcore.wikipedia.dump import PageError, RawPage
from elcore.wikipedia.passages import Windower
from elcore.wikipedia.wikitext import (
    LinkClassifier,
    cut_description,
    normalize_title,
    parse_article,
    redirect_target,
)

log = logging.getLogger(__name__)


@dataclass
class ParseSettings:
    """What a pass-1 worker needs: small and picklable (sent to every Ray actor)."""

    tokenizer: str | None  # as configured; each worker resolves it (`resolve_tokenizer`)
    passage_max_wordpieces: int
    description_max_chars: int
    namespaces: dict[int, str]
    run_pages: int
    max_errors_reported: int


@dataclass
class RunInfo:
    """One sorted run file and the page ids it spans."""

    path: str
    first_id: int
    last_id: int
    count: int


@dataclass
class PartResult:
    """The files one part wrote, and its pass-1 counts."""

    part: str
    index_path: str
    runs: list[RunInfo] = field(default_factory=list)
    stats: KbBuildStats = field(default_factory=KbBuildStats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "index_path": self.index_path,
            "runs": [asdict(r) for r in self.runs],
            "stats": self.stats.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PartResult:
        return cls(
            d["part"], d["index_path"], [RunInfo(**r) for r in d["runs"]], KbBuildStats.from_dict(d["stats"])
        )


class PageParser:
    """Turn one `RawPage` into an index entry and, for an article, its catalogue text and passages."""

    def __init__(self, settings: ParseSettings) -> None:
        self.settings = settings
        self.classifier = LinkClassifier(settings.namespaces)
        self.windower = Windower(resolve_tokenizer(settings.tokenizer), settings.passage_max_wordpieces)

    def parse(self, page: RawPage) -> tuple[str, dict[str, Any] | None]:
        """`(kind, record)`: kind `article` (record set), `redirect`, `disambiguation`,
        `other_namespace` or `no_text`.

        Raises:
            Exception: the wikitext could not be parsed (the caller reports the page).
        """
        if page.ns != 0:
            return "other_namespace", None
        if page.redirect is not None:
            return "redirect", None
        if page.text is None:
            return "no_text", None
        if redirect_target(page.text) is not None:
            return "redirect", None
        article = parse_article(page.text, self.classifier)
        if article.is_disambiguation or page.title.endswith("(disambiguation)"):
            return "disambiguation", None
        lead = article.lead()
        description = cut_description(lead.text, self.settings.description_max_chars) if lead else ""
        windows, lost = self.windower.windows(article.paragraphs)
        record = {
            "id": page.page_id,
            "title": page.title,
            "text": description,
            "windows": [[w.text, [[k.start, k.end, k.target] for k in w.links]] for w in windows],
            "links_cut": lost,
        }
        return "article", record


class WorkWriter:
    """Write one part's index file and sorted run files under `work_dir`."""

    def __init__(self, work_dir: str, part: str, run_pages: int) -> None:
        self.work_dir, self.part, self.run_pages = work_dir, part, run_pages
        self.result = PartResult(part, fs.join(work_dir, f"index-{part}.jsonl"))
        fsys, path = fs.filesystem(self.result.index_path)
        fsys.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self._index = fsys.open(path, "w", encoding="utf-8")
        self._buffer: list[dict[str, Any]] = []

    def index(self, page_id: int, kind: str, title: str, target: str | None = None) -> None:
        self._index.write(json.dumps([page_id, kind, title, target], ensure_ascii=False) + "\n")

    def article(self, record: dict[str, Any]) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.run_pages:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort(key=lambda r: r["id"])
        path = fs.join(self.work_dir, f"run-{self.part}-{len(self.result.runs):05d}.jsonl")
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._buffer)
        fs.write_bytes_atomic(path, lines.encode("utf-8"))
        self.result.runs.append(
            RunInfo(path, self._buffer[0]["id"], self._buffer[-1]["id"], len(self._buffer))
        )
        self._buffer = []

    def close(self) -> PartResult:
        self._flush()
        self._index.close()
        return self.result


def parse_into(
    items: Iterable[RawPage | PageError],
    parser: PageParser,
    writer: WorkWriter,
    stats: KbBuildStats,
    on_page: Callable[[], None] | None = None,
) -> None:
    """Parse every page of `items` into `writer`, counting into `stats`; bad pages are reported
    (page id, title, reason) and skipped."""
    limit = parser.settings.max_errors_reported
    for item in items:
        if on_page is not None:
            on_page()
        if not isinstance(item, PageError) or item.is_page:
            stats.pages_seen += 1
        if isinstance(item, PageError):
            _report(stats, item.page_id, item.title, item.kind, item.reason, limit)
            continue
        try:
            kind, record = parser.parse(item)
        except Exception as error:  # noqa: BLE001 - any parser failure skips just this page
            reason = f"wikitext: {type(error).__name__}: {error}"
            _report(stats, item.page_id, item.title, "parse_error", reason, limit)
            continue
        if kind == "article":
            assert record is not None
            writer.index(item.page_id, "article", item.title)
            writer.article(record)
            stats.article_pages += 1
            stats.links_cut += record["links_cut"]
        elif kind == "redirect":
            target = (
                normalize_title(item.redirect)
                if item.redirect is not None
                else redirect_target(item.text or "")
            )
            writer.index(item.page_id, "redirect", item.title, target)
            stats.redirects += 1
        elif kind == "disambiguation":
            writer.index(item.page_id, "disambiguation", item.title)
            stats.disambiguations += 1
        else:
            stats.skip(kind)


def _report(
    stats: KbBuildStats, page_id: int | None, title: str | None, kind: str, reason: str, limit: int
) -> None:
    if len(stats.errors) < limit:
        log.warning("skipped page %s (%r): %s: %s", page_id, title, kind, reason)
    stats.error(page_id, title, kind, reason, limit)
