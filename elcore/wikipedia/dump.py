"""Stream `<page>`s out of a MediaWiki XML dump (plain, bz2, multistream bz2), and write such dumps.

Memory stays bounded by the largest page: compressed bytes are read in chunks, each bz2 stream is
decompressed on its own, and the decompressed text is cut at `<page>` / `</page>` (they cannot occur
inside escaped wikitext) before one page at a time is parsed as XML. A multistream dump's index gives
the stream offsets, so byte ranges of the file can be read independently (`plan_ranges`).

Bad input never stops the stream: a truncated or corrupt bz2 stream, or a page that is not valid XML,
comes out as a `PageError` (page id when it can be read, and the reason) and reading goes on (after
a corrupt stream, from the next bz2 stream header).

    >>> pages = list(DumpReader("memory://dump.xml.bz2"))      # RawPage | PageError, in dump order
"""

from __future__ import annotations

import bz2
import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from elcore import fs
from elcore.errors import ConfigError, InputRecordError

CHUNK_BYTES = 1 << 20
_BZ2_MAGIC = re.compile(rb"BZh[1-9]1AY&SY")
_ID_RE = re.compile(rb"<id>\s*(\d+)\s*</id>")
_TITLE_RE = re.compile(rb"<title>([^<]*)</title>")

#: enwiki's namespaces, used when a dump (or a byte range of one) has no `<siteinfo>`.
DEFAULT_NAMESPACES: dict[int, str] = {
    -2: "Media", -1: "Special", 0: "", 1: "Talk", 2: "User", 3: "User talk", 4: "Wikipedia",
    5: "Wikipedia talk", 6: "File", 7: "File talk", 8: "MediaWiki", 9: "MediaWiki talk", 10: "Template",
    11: "Template talk", 12: "Help", 13: "Help talk", 14: "Category", 15: "Category talk", 100: "Portal",
    101: "Portal talk", 108: "Book", 109: "Book talk", 118: "Draft", 119: "Draft talk",
    710: "TimedText", 711: "TimedText talk", 828: "Module", 829: "Module talk",
}  # fmt: skip


@dataclass(frozen=True)
class RawPage:
    """One `<page>` of the dump; `text` is None when the revision text is missing or deleted."""

    page_id: int
    title: str
    ns: int
    text: str | None
    redirect: str | None = None


@dataclass(frozen=True)
class PageError:
    """A page (or a stretch of the dump) that could not be read; `kind` is the stats skip reason."""

    kind: str
    reason: str
    page_id: int | None = None
    title: str | None = None
    is_page: bool = True  # False: a gap between pages (a bad stream), not one page


@dataclass
class SiteInfo:
    """The dump's `<siteinfo>`: database name and namespace names by key."""

    dbname: str = ""
    namespaces: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_NAMESPACES))


@dataclass(frozen=True)
class ByteRange:
    """Bytes `[start, end)` of a multistream dump: whole bz2 streams, read and parsed on their own."""

    index: int
    start: int
    end: int


class _Break:
    """Marks a gap in the decompressed text (a bad or truncated stream)."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind, self.reason = kind, reason


def _read_chunks(url: str, start: int, end: int | None, counter: list[int]) -> Iterator[bytes]:
    fsys, path = fs.filesystem(url)
    with fsys.open(path, "rb") as f:
        f.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            chunk = f.read(CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            counter[0] += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _decompress(chunks: Iterator[bytes]) -> Iterator[bytes | _Break]:
    """Decompressed bytes of plain, gzip or (multi-stream) bz2 input, sniffed from the first bytes."""
    first = next(chunks, b"")
    if first.startswith(b"BZh"):
        yield from _bunzip(first, chunks)
    elif first.startswith(b"\x1f\x8b"):
        yield from _gunzip(first, chunks)
    else:
        yield from _chain(first, chunks)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _gunzip(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes | _Break]:
    """Every gzip member of the input in turn."""
    dec, fed = zlib.decompressobj(wbits=47), False
    for chunk in _chain(first, chunks):
        while chunk:
            out = dec.decompress(chunk)
            fed = True
            if out:
                yield out
            chunk = b""
            if dec.eof:
                chunk, dec, fed = dec.unused_data, zlib.decompressobj(wbits=47), False
    if fed and not dec.eof:
        yield _Break("truncated", "truncated gzip stream")


def _bunzip(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes | _Break]:
    """Every bz2 stream of the input in turn; after a corrupt one, resume at the next stream header."""
    dec, fed, resync = bz2.BZ2Decompressor(), False, b""
    for chunk in _chain(first, chunks):
        data = resync + chunk if resync else chunk
        resync = b""
        while data:
            if dec is None:  # resynchronising: look for the next stream header
                match = _BZ2_MAGIC.search(data)
                if match is None:
                    resync = data[-9:]
                    break
                data, dec, fed = data[match.start() :], bz2.BZ2Decompressor(), False
            try:
                out = dec.decompress(data)
            except OSError as error:
                yield _Break("bz2_error", f"corrupt bz2 stream ({error}); skipped to the next stream")
                dec, data = None, data[1:]
                continue
            fed = True
            if out:
                yield out
            if dec.eof:
                data, dec, fed = dec.unused_data, bz2.BZ2Decompressor(), False
            else:
                data = b""
    if dec is not None and fed and not dec.eof:
        yield _Break("truncated", "truncated bz2 stream: input ended before its end-of-stream marker")


def _page_error(kind: str, reason: str, raw: bytes) -> PageError:
    id_match, title_match = _ID_RE.search(raw), _TITLE_RE.search(raw)
    title = None
    if title_match:
        title = title_match.group(1).decode("utf-8", "replace")
        title = title.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    return PageError(kind, reason, int(id_match.group(1)) if id_match else None, title)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_page_xml(raw: bytes) -> RawPage | PageError:
    """One `<page>...</page>` element -> `RawPage`, or `PageError` when it is not valid XML."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as error:
        return _page_error("invalid_xml", f"invalid XML: {error}", raw)
    title = ns = page_id = text = redirect = None
    for child in root:
        tag = _local(child.tag)
        if tag == "title":
            title = child.text or ""
        elif tag == "ns":
            ns = child.text
        elif tag == "id":
            page_id = child.text
        elif tag == "redirect":
            redirect = child.get("title")
        elif tag == "revision":
            for sub in child:
                if _local(sub.tag) == "text" and sub.get("deleted") is None:
                    text = sub.text or ""
    if title is None or page_id is None or not page_id.strip().isdigit():
        return _page_error("invalid_xml", "page without <title> or numeric <id>", raw)
    try:
        ns_key = int(ns) if ns is not None else 0
    except ValueError:
        return _page_error("invalid_xml", f"non-numeric <ns> {ns!r}", raw)
    return RawPage(int(page_id), title, ns_key, text, redirect)


def parse_siteinfo(header: bytes) -> SiteInfo:
    """The `<siteinfo>` found in the bytes before the first page (defaults when absent)."""
    start, end = header.find(b"<siteinfo>"), header.find(b"</siteinfo>")
    info = SiteInfo()
    if start < 0 or end < 0:
        return info
    try:
        root = ET.fromstring(header[start : end + len(b"</siteinfo>")])
    except ET.ParseError:
        return info
    for child in root:
        if _local(child.tag) == "dbname":
            info.dbname = child.text or ""
        elif _local(child.tag) == "namespaces":
            names = {int(ns.get("key", "0")): ns.text or "" for ns in child}
            if names:
                info.namespaces = names
    return info


class DumpReader:
    """Iterate the pages of a dump, or of the byte range `[start, end)` of a multistream dump.

    Yields `RawPage` and `PageError` in dump order. `siteinfo` is set once the header is read
    (it stays the default for a byte range without the header); `bytes_read` counts input bytes.
    """

    def __init__(self, url: str, start: int = 0, end: int | None = None) -> None:
        self.url, self.start, self.end = url, start, end
        self.siteinfo = SiteInfo()
        self._counter = [0]

    @property
    def bytes_read(self) -> int:
        return self._counter[0]

    def __iter__(self) -> Iterator[RawPage | PageError]:
        for item in self._raw_pages():
            yield item if isinstance(item, PageError) else parse_page_xml(item)

    def _raw_pages(self) -> Iterator[bytes | PageError]:
        """Cut the decompressed text at `<page>` / `</page>`; report pages cut by a stream gap."""
        buf, pos, in_page, header_done = bytearray(), 0, False, False
        for item in _decompress(_read_chunks(self.url, self.start, self.end, self._counter)):
            if isinstance(item, _Break):
                if in_page:
                    yield _page_error(item.kind, item.reason, bytes(buf))
                else:
                    yield PageError(item.kind, item.reason, is_page=False)
                buf, pos, in_page = bytearray(), 0, False
                continue
            buf += item
            while True:
                if not in_page:
                    i = buf.find(b"<page>", pos)
                    if i < 0:
                        keep = len(buf) if not header_done and len(buf) < (1 << 22) else 5
                        del buf[: max(0, len(buf) - keep)]
                        pos = 0
                        break
                    if not header_done:
                        self.siteinfo, header_done = parse_siteinfo(bytes(buf[:i])), True
                    del buf[:i]
                    in_page, pos = True, 6
                else:
                    j = buf.find(b"</page>", pos)
                    if j < 0:
                        pos = max(6, len(buf) - 7)
                        break
                    raw = bytes(buf[: j + 7])
                    del buf[: j + 7]
                    in_page, pos = False, 0
                    restart = raw.rfind(b"<page>")
                    if restart > 0:  # a page start without its end: the earlier page was cut off
                        yield _page_error("truncated", "page cut off before </page>", raw[:restart])
                        raw = raw[restart:]
                    yield raw
        if in_page:
            yield _page_error("truncated", "dump ended inside a page", bytes(buf))
        elif not header_done and self.start == 0:
            self.siteinfo = parse_siteinfo(bytes(buf))


def read_siteinfo(url: str, end: int | None = None) -> SiteInfo:
    """The siteinfo of a dump, reading only its first `end` bytes when given (a multistream header)."""
    reader = DumpReader(url, 0, end)
    for _ in reader:
        break
    return reader.siteinfo


def read_multistream_index(url: str) -> list[int]:
    """Distinct bz2 stream offsets of a multistream dump, from its index (`offset:page_id:title`).

    Raises:
        InputRecordError: a line does not start with `<offset>:<page id>:`.
    """
    offsets: set[int] = set()
    tail = b""
    line_no = 0
    for item in _decompress(_read_chunks(url, 0, None, [0])):
        if isinstance(item, _Break):
            raise InputRecordError(url, line_no + 1, "index", item.reason)
        lines = (tail + item).split(b"\n")
        tail = lines.pop()
        for line in lines:
            line_no += 1
            offsets.add(_index_offset(url, line_no, line))
    if tail.strip():
        offsets.add(_index_offset(url, line_no + 1, tail))
    return sorted(offsets)


def _index_offset(url: str, line_no: int, line: bytes) -> int:
    parts = line.split(b":", 2)
    if len(parts) < 3 or not parts[0].strip().isdigit() or not parts[1].strip().isdigit():
        raise InputRecordError(url, line_no, "offset", f"expected 'offset:page_id:title', got {line[:80]!r}")
    return int(parts[0])


def plan_ranges(offsets: list[int], file_size: int, num_blocks: int) -> list[ByteRange]:
    """Group consecutive streams into about `num_blocks` ranges of similar byte size.

    The first stream offset starts the first range (the header stream before it holds no pages)
    and the last range runs to the end of the file.

        >>> plan_ranges([600, 1000, 1400, 1800], 2200, 2)
        [ByteRange(index=0, start=600, end=1400), ByteRange(index=1, start=1400, end=2200)]
    """
    if not offsets:
        return []
    target = (file_size - offsets[0]) / max(1, num_blocks)
    starts = [offsets[0]]
    for offset in offsets[1:]:
        if offset - starts[-1] >= target and len(starts) < num_blocks:
            starts.append(offset)
    ends = starts[1:] + [file_size]
    return [ByteRange(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


# -- writing dumps (tests, benchmarks, samples) ------------------------------------------------------

_EXPORT_NS = "http://www.mediawiki.org/xml/export-0.10/"


def _siteinfo_xml(dbname: str, namespaces: dict[int, str]) -> str:
    ns_lines = "".join(
        f'      <namespace key="{key}" case="first-letter">{escape(name)}</namespace>\n'
        if name
        else f'      <namespace key="{key}" case="first-letter" />\n'
        for key, name in sorted(namespaces.items())
    )
    return (
        f'<mediawiki xmlns="{_EXPORT_NS}" version="0.10" xml:lang="en">\n'
        "  <siteinfo>\n"
        f"    <sitename>Wikipedia</sitename>\n    <dbname>{escape(dbname)}</dbname>\n"
        "    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n"
        "    <generator>MediaWiki 1.34.0-wmf.16</generator>\n    <case>first-letter</case>\n"
        f"    <namespaces>\n{ns_lines}    </namespaces>\n"
        "  </siteinfo>\n"
    )


def page_xml(page: RawPage) -> str:
    """A `<page>` element in the pages-articles layout (with revision metadata, as real dumps)."""
    text = page.text or ""
    redirect = f"    <redirect title={quoteattr(page.redirect)} />\n" if page.redirect is not None else ""
    sha1 = hashlib.sha1(text.encode("utf-8")).hexdigest()[:31]
    return (
        f"  <page>\n    <title>{escape(page.title)}</title>\n    <ns>{page.ns}</ns>\n"
        f"    <id>{page.page_id}</id>\n{redirect}"
        f"    <revision>\n      <id>{page.page_id * 10 + 7}</id>\n"
        f"      <parentid>{page.page_id * 10 + 3}</parentid>\n"
        "      <timestamp>2019-07-30T12:00:00Z</timestamp>\n"
        "      <contributor>\n        <username>Example</username>\n        <id>42</id>\n"
        "      </contributor>\n      <comment>test</comment>\n      <model>wikitext</model>\n"
        "      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{escape(text)}</text>\n'
        f"      <sha1>{sha1}</sha1>\n    </revision>\n  </page>\n"
    )


def write_dump(
    url: str,
    pages: Iterable[RawPage | bytes],
    *,
    form: str = "xml",
    index_url: str | None = None,
    pages_per_stream: int = 100,
    dbname: str = "enwiki",
    namespaces: dict[int, str] | None = None,
) -> None:
    """Write a pages-articles dump: `form` "xml", "bz2" or "multistream" (then `index_url` too).

    A `bytes` item is written as is (a hand-made broken page, for tests). The multistream form is
    Wikimedia's: a header stream, streams of `pages_per_stream` pages, a footer stream, and an index
    of `offset:page_id:title` lines (bz2 when `index_url` ends in `.bz2`).
    """
    if form not in ("xml", "bz2", "multistream"):
        raise ConfigError(f"write_dump form={form!r}: must be 'xml', 'bz2' or 'multistream'")
    header = _siteinfo_xml(dbname, namespaces or DEFAULT_NAMESPACES).encode("utf-8")
    footer = b"</mediawiki>\n"
    index_lines: list[str] = []
    fsys, path = fs.filesystem(url)
    if "/" in path:
        fsys.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fsys.open(path, "wb") as out:
        if form == "xml":
            out.write(header)
            for page in pages:
                out.write(page if isinstance(page, bytes) else page_xml(page).encode("utf-8"))
            out.write(footer)
        elif form == "bz2":
            comp = bz2.BZ2Compressor(9)
            out.write(comp.compress(header))
            for page in pages:
                out.write(comp.compress(page if isinstance(page, bytes) else page_xml(page).encode("utf-8")))
            out.write(comp.compress(footer) + comp.flush())
        else:
            index_lines = _write_multistream(out, header, footer, pages, pages_per_stream)
    if form == "multistream" and index_url is not None:
        data = "".join(index_lines).encode("utf-8")
        fs.write_bytes_atomic(index_url, bz2.compress(data) if index_url.endswith(".bz2") else data)


def _write_multistream(
    out: BinaryIO, header: bytes, footer: bytes, pages: Iterable[RawPage | bytes], per_stream: int
) -> list[str]:
    out.write(bz2.compress(header))
    offset = len(bz2.compress(header))
    index: list[str] = []
    batch: list[RawPage | bytes] = []

    def flush() -> None:
        nonlocal offset
        data = b"".join(p if isinstance(p, bytes) else page_xml(p).encode("utf-8") for p in batch)
        for p in batch:
            if isinstance(p, RawPage):
                index.append(f"{offset}:{p.page_id}:{p.title}\n")
            else:
                match = _ID_RE.search(p)
                index.append(f"{offset}:{int(match.group(1)) if match else 0}:?\n")
        blob = bz2.compress(data)
        out.write(blob)
        offset += len(blob)
        batch.clear()

    for page in pages:
        batch.append(page)
        if len(batch) == per_stream:
            flush()
    if batch:
        flush()
    out.write(bz2.compress(footer))
    return index
