"""Mention-entity priors: an alias table `surface -> [(entity row, count, name flags)]` on Arrow.

Surfaces come from the catalogue (titles, titles without their "(disambiguator)", aliases) and from
mention counts: gold spans of *training* data and, for a catalogue built by `elq kb build`, Wikipedia
anchor texts. Every surface goes through `normalize_surface` (one function for build and look-up)
and is keyed by a 64-bit hash, so a loaded table is five numpy columns sorted by key: no Python dict
of strings, at 6M entities / ~20M surfaces as at the kit's 126k.

    >>> table = PriorTable.build(catalogue, examples=read_examples("webqsp/train.jsonl"))
    >>> found = table.find(["Barack Obama"])            # position of each surface, -1 if unknown
    >>> table.candidates(int(found[0]), top=3).rows     # entity rows, most mentioned first

Each surface also records how often it occurs in the training texts at all, linked or not
(`surface_occurrences`): a common word is a link in few of the texts it occurs in, a famous name in most
(Mihalcea and Csomai's keyphraseness, TagMe's link probability).

Saved as one Parquet file (`priors.parquet`: key, surface, entity_row, count, is_title, is_alias,
surface_occurrences) whose schema metadata holds the catalogue fingerprint and what it was built from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import fs
from .catalogue import EntityCatalogue
from .data import Example
from .errors import ConfigError, IndexMismatchError

PRIORS_FILE = "priors.parquet"
NORMALIZATION = "nfkd-nomarks-casefold-alnum-v1"  # stored with the table: build and look-up must agree

_NOT_WORD = re.compile(r"[\W_]+")
_DISAMBIGUATOR = re.compile(r"\s*\([^()]*\)\s*$")
_SCHEMA = pa.schema(
    [
        pa.field("key", pa.uint64(), nullable=False),
        pa.field("surface", pa.string(), nullable=False),
        pa.field("entity_row", pa.int32(), nullable=False),
        pa.field("count", pa.int32(), nullable=False),
        pa.field("is_title", pa.bool_(), nullable=False),
        pa.field("is_alias", pa.bool_(), nullable=False),
    ]
)
# The saved file: each pair also carries its surface's occurrences (counted once the pairs are built).
_FILE_SCHEMA = _SCHEMA.append(pa.field("surface_occurrences", pa.int32(), nullable=False))
MAX_OCCURRENCE_WORDS = 8  # longest surface (in normalised words) whose occurrences in text are counted


@functools.lru_cache(maxsize=1 << 16)
def normalize_surface(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a mention or name.

    >>> normalize_surface("  Beyoncé Knowles-Carter's ")
    'beyonce knowles carter s'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", stripped.casefold()).split())


def strip_disambiguator(title: str) -> str:
    """A title without its trailing "(...)": "Mercury (planet)" -> "Mercury"."""
    return _DISAMBIGUATOR.sub("", title)


def surface_key(normalized: str) -> int:
    """64-bit key of a normalised surface (stable across processes, unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).digest(), "little")


@functools.lru_cache(maxsize=1 << 18)
def text_key(text: str) -> int:
    """Key of a raw text (normalised first); the empty surface gets key 0, which is never stored."""
    norm = normalize_surface(text)
    return surface_key(norm) if norm else 0


def surface_keys(texts: Sequence[str]) -> np.ndarray:
    """`text_key` of each raw text, as uint64."""
    return np.fromiter((text_key(t) for t in texts), dtype=np.uint64, count=len(texts))


@dataclass(frozen=True)
class PriorCandidates:
    """The entities recorded for one surface, most mentioned first (then titles, then aliases)."""

    rows: np.ndarray  # int32 entity rows
    counts: np.ndarray  # int32 mention counts
    is_title: np.ndarray  # bool
    is_alias: np.ndarray  # bool

    def left_out(self, key: int, own: MentionCounts) -> PriorCandidates:
        """These candidates of surface `key` as the table would hold them without the text `own`
        describes: its counts taken away, pairs only it recorded (no title or alias) dropped, and
        re-ranked by what is left."""
        taken = np.array([own.pairs.get((key, int(r)), 0) for r in self.rows], dtype=np.int32)
        if not taken.any():
            return self
        counts = self.counts - taken
        keep = np.flatnonzero((counts > 0) | self.is_title | self.is_alias)
        order = keep[np.argsort(-counts[keep], kind="stable")]
        return PriorCandidates(self.rows[order], counts[order], self.is_title[order], self.is_alias[order])


def ngram_keys(text: str, max_words: int = MAX_OCCURRENCE_WORDS) -> dict[int, int]:
    """Key -> occurrences of every run of up to `max_words` normalised words of `text`: the surfaces the
    text contains, linked or not ("New York City" contains "new", "new york", "york city", ...)."""
    words = normalize_surface(text).split()
    found: dict[int, int] = {}
    for i in range(len(words)):
        for n in range(1, min(max_words, len(words) - i) + 1):
            key = surface_key(" ".join(words[i : i + n]))
            found[key] = found.get(key, 0) + 1
    return found


@dataclass(frozen=True)
class MentionCounts:
    """What one text contributed to the table (for leave-one-out features): `(key, row) -> n` of its gold
    spans, and `key -> n` of the surfaces it contains (the table's occurrences)."""

    pairs: dict[tuple[int, int], int]
    occurrences: dict[int, int]
    # Gold surfaces fitted as if no text had named them (`PriorTable.left_out_positions`): the kit's
    # aliases hold every training surface, so nothing else teaches the head what an unseen name is.
    unseen: frozenset[int] = frozenset()

    @classmethod
    def of(cls, example: Example, catalogue_rows: Sequence[int]) -> MentionCounts:
        pairs: dict[tuple[int, int], int] = {}
        for norm, row in _gold_surfaces(example, catalogue_rows):
            pair = (surface_key(norm), row)
            pairs[pair] = pairs.get(pair, 0) + 1
        return cls(pairs, ngram_keys(example.text))

    @functools.cached_property
    def links(self) -> dict[int, int]:
        """Key -> n: the text's gold spans per surface (its pairs summed over entities)."""
        links: dict[int, int] = {}
        for (key, _row), n in self.pairs.items():
            links[key] = links.get(key, 0) + n
        return links


def _gold_surfaces(example: Example, catalogue_rows: Sequence[int]) -> Iterable[tuple[str, int]]:
    """`(normalised surface, entity row)` of each gold span of `example` whose entity is in the catalogue:
    exactly what one example adds to the prior counts."""
    for mention, row in zip(example.mentions, catalogue_rows, strict=True):
        if mention.has_span and row >= 0:
            norm = normalize_surface(example.text[mention.start : mention.end])
            if norm:
                yield norm, int(row)


class PriorTable:
    """The alias table, as sorted numpy columns (one entry per surface-entity pair).

    Args:
        keys: uint64 surface keys, sorted, one per pair.
        rows, counts, is_title, is_alias: the pair's entity row, mention count and name flags.
        num_entities: rows of the catalogue it was built for.
        metadata: JSON facts (catalogue fingerprint, sources, normalisation).
    """

    def __init__(
        self,
        keys: np.ndarray,
        rows: np.ndarray,
        counts: np.ndarray,
        is_title: np.ndarray,
        is_alias: np.ndarray,
        num_entities: int,
        metadata: dict | None = None,
        occurrences: np.ndarray | None = None,
    ) -> None:
        self.rows, self.counts = rows.astype(np.int32), counts.astype(np.int32)
        self.is_title, self.is_alias = is_title.astype(bool), is_alias.astype(bool)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
        self.surface_keys = keys[starts].astype(np.uint64)  # unique, sorted
        self.offsets = np.r_[starts, len(keys)].astype(np.int64)
        self.surface_totals = np.add.reduceat(self.counts.astype(np.int64), starts) if len(keys) else starts
        # The surface is a catalogue name (title or alias) of some entity, or a title: named ones stay in
        # the table whatever is counted, titles also whatever is held out.
        any_of = lambda flags: np.logical_or.reduceat(flags, starts) if len(keys) else starts.astype(bool)  # noqa: E731
        self.surface_named, self.surface_titled = any_of(self.is_title | self.is_alias), any_of(self.is_title)
        # How often each surface occurs in the counted texts, linked or not (0: not counted).
        self.surface_occurrences = (
            np.asarray(occurrences, dtype=np.int64)[starts]
            if occurrences is not None
            else np.zeros(len(starts), np.int64)
        )
        self.entity_counts = np.bincount(self.rows, weights=self.counts, minlength=num_entities).astype(
            np.int64
        )
        self.num_entities = num_entities
        self.metadata = dict(metadata or {})
        # The normalised surface of each pair, when built or read with it (linking needs only keys).
        self.surfaces: pa.Array | None = None

    def __len__(self) -> int:
        """Number of distinct surfaces."""
        return len(self.surface_keys)

    @property
    def num_pairs(self) -> int:
        return len(self.rows)

    def pair_keys(self) -> np.ndarray:
        """The surface key of each pair."""
        return np.repeat(self.surface_keys, np.diff(self.offsets))

    def pair_occurrences(self) -> np.ndarray:
        """The surface occurrences of each pair."""
        return np.repeat(self.surface_occurrences, np.diff(self.offsets))

    # ----------------------------------------------------------------- look-up
    def find_keys(self, keys: np.ndarray) -> np.ndarray:
        """Surface position of each key (int64), -1 where the table does not know it."""
        keys = np.asarray(keys, dtype=np.uint64)
        if not len(self.surface_keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self.surface_keys, keys)
        pos = np.minimum(pos, len(self.surface_keys) - 1)
        hit = (self.surface_keys[pos] == keys) & (keys != 0)
        return np.where(hit, pos, -1).astype(np.int64)

    def left_out_positions(
        self, positions: np.ndarray, keys: np.ndarray, own: Sequence[MentionCounts | None]
    ) -> np.ndarray:
        """`positions` (from `find_keys`) as a table without each span's own text would give them: -1
        where only that text's gold spans put the surface in the table (leave-one-out: such a surface
        must look as unknown as a new text's unseen name), and for the text's `unseen` surfaces that
        are no entity's title."""
        out = np.array(positions, dtype=np.int64, copy=True)
        for n, (pos, key, mine) in enumerate(zip(out.tolist(), keys.tolist(), own, strict=True)):
            if pos < 0 or mine is None:
                continue
            if key in mine.unseen and not self.surface_titled[pos]:
                out[n] = -1
            elif not self.surface_named[pos] and self.surface_totals[pos] <= mine.links.get(key, 0):
                out[n] = -1
        return out

    def find(self, texts: Sequence[str]) -> np.ndarray:
        """Surface position of each raw text (normalised here), -1 where unknown."""
        return self.find_keys(surface_keys(texts))

    def candidates(self, position: int, top: int | None = None) -> PriorCandidates:
        """The entities of surface `position` (from `find`), best first, at most `top`."""
        lo, hi = int(self.offsets[position]), int(self.offsets[position + 1])
        if top is not None:
            hi = min(hi, lo + top)
        return PriorCandidates(
            self.rows[lo:hi], self.counts[lo:hi], self.is_title[lo:hi], self.is_alias[lo:hi]
        )

    def check_catalogue(self, catalogue: EntityCatalogue) -> None:
        """Raise `IndexMismatchError` unless the table was built for this catalogue."""
        want = self.metadata.get("catalogue_fingerprint")
        if self.num_entities != len(catalogue) or (want and want != catalogue.fingerprint):
            raise IndexMismatchError(
                f"the prior table was built for a catalogue of {self.num_entities} entities "
                f"(fingerprint {want}), not this one ({len(catalogue)} entities, {catalogue.fingerprint}); "
                "refit the hybrid linker for this catalogue (elcore.hybrid.fit_hybrid, or `elq train --recipe "
                "hybrid`) or link with --no-use-priors"
            )

    def extended_to(self, catalogue: EntityCatalogue, previous: EntityCatalogue) -> PriorTable:
        """This table for `catalogue`, which is `previous` (the table's catalogue) with rows appended:
        the pairs stay as they are, the new rows have no prior yet."""
        self.check_catalogue(previous)
        n = len(previous)
        if len(catalogue) < n or not catalogue.table["id"].slice(0, n).equals(previous.table["id"]):
            raise IndexMismatchError(
                f"the catalogue of {len(catalogue)} entities does not start with the prior table's "
                f"{n} entities in the same order; rebuild the table for it"
            )
        metadata = {
            **self.metadata,
            "catalogue_fingerprint": catalogue.fingerprint,
            "num_entities": len(catalogue),
        }
        table = PriorTable(
            self.pair_keys(),
            self.rows,
            self.counts,
            self.is_title,
            self.is_alias,
            len(catalogue),
            metadata,
            self.pair_occurrences(),
        )
        table.surfaces = self.surfaces
        return table

    # ----------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        catalogue: EntityCatalogue,
        examples: Iterable[Example] = (),
        anchor_counts: pa.Table | None = None,
        sources: Sequence[str] = (),
    ) -> PriorTable:
        """Build from catalogue names, training examples' gold spans and anchor counts.

        Args:
            catalogue: titles (and titles without a trailing "(...)") and aliases become names.
            examples: *training* examples only (never a dev or test split); each gold span counts once,
                and their texts give each surface's occurrences.
            anchor_counts: a table with `surface` (raw anchor text), `entity` (catalogue id or QID) and
                `count`, as `elq kb build` writes (`anchors.parquet`).
            sources: names of the example files, recorded in the metadata.
        """
        parts = [_catalogue_names(catalogue)]
        examples = list(examples)
        if examples:
            parts.append(_example_counts(catalogue, examples))
        if anchor_counts is not None and anchor_counts.num_rows:
            parts.append(_anchor_counts(catalogue, anchor_counts))
        table = pa.concat_tables(parts)
        grouped = table.group_by(["key", "surface", "entity_row"], use_threads=False).aggregate(
            [("count", "sum"), ("is_title", "max"), ("is_alias", "max")]
        )
        grouped = grouped.rename_columns(
            {"count_sum": "count", "is_title_max": "is_title", "is_alias_max": "is_alias"}
        ).select(_SCHEMA.names)
        grouped = grouped.cast(_SCHEMA).sort_by(
            [
                ("key", "ascending"),
                ("count", "descending"),
                ("is_title", "descending"),
                ("entity_row", "ascending"),
            ]
        )
        metadata = {
            "catalogue_fingerprint": catalogue.fingerprint,
            "num_entities": len(catalogue),
            "normalization": NORMALIZATION,
            "example_sources": list(sources),
            "examples": len(examples),
            "occurrence_texts": len(examples),
            "anchor_pairs": 0 if anchor_counts is None else anchor_counts.num_rows,
        }
        table = cls._from_table(grouped, metadata)
        table.surface_occurrences = table._occurrences_in(e.text for e in examples)
        return table

    def _occurrences_in(self, texts: Iterable[str]) -> np.ndarray:
        """Per surface, how often it occurs in `texts`, linked or not."""
        totals = np.zeros(len(self), dtype=np.int64)
        for text in texts:
            found = ngram_keys(text)
            positions = self.find_keys(np.fromiter(found, dtype=np.uint64, count=len(found)))
            hit = positions >= 0
            np.add.at(
                totals, positions[hit], np.fromiter(found.values(), dtype=np.int64, count=len(found))[hit]
            )
        return totals

    @classmethod
    def _from_table(cls, table: pa.Table, metadata: dict) -> PriorTable:
        column = lambda name: table.column(name).to_numpy()  # noqa: E731
        prior = cls(
            column("key"),
            column("entity_row"),
            column("count"),
            column("is_title"),
            column("is_alias"),
            int(metadata["num_entities"]),
            metadata,
            column("surface_occurrences") if "surface_occurrences" in table.column_names else None,
        )
        if "surface" in table.column_names:
            prior.surfaces = table.column("surface").combine_chunks()
        return prior

    # ----------------------------------------------------------------- save / load
    def save(self, url: str) -> None:
        """Write `url` (one Parquet file; fsspec URL)."""
        keys = self.pair_keys()
        surfaces = (
            self.surfaces if self.surfaces is not None else pa.nulls(len(keys), pa.string()).fill_null("")
        )
        columns = [keys, surfaces, self.rows, self.counts, self.is_title, self.is_alias]
        table = pa.table(
            [*columns, np.minimum(self.pair_occurrences(), np.iinfo(np.int32).max).astype(np.int32)],
            schema=_FILE_SCHEMA,
        ).replace_schema_metadata({"elq_priors": json.dumps(self.metadata)})
        with fs.atomic_writer(url) as out:
            pq.write_table(table, out)

    @classmethod
    def load(cls, url: str, with_surfaces: bool = False) -> PriorTable:
        """Read a table written by `save` (the surface strings only when asked: linking needs keys)."""
        filesystem, path = fs.arrow_filesystem(url)
        parquet = pq.ParquetFile(path, filesystem=filesystem)
        raw = (parquet.schema_arrow.metadata or {}).get(b"elq_priors")
        if raw is None:
            raise ConfigError(f"{url} is not an elq prior table (no elq_priors metadata)")
        metadata = json.loads(raw)
        if metadata.get("normalization") != NORMALIZATION:
            raise ConfigError(
                f"{url} was normalised with {metadata.get('normalization')!r}, this elq uses {NORMALIZATION!r}: "
                "rebuild the prior table"
            )
        columns = ["key", "entity_row", "count", "is_title", "is_alias"] + (
            ["surface"] if with_surfaces else []
        )
        if "surface_occurrences" in parquet.schema_arrow.names:  # tables written before it: unknown
            columns.append("surface_occurrences")
        table = parquet.read(columns=columns)
        return cls._from_table(table, metadata)


def _catalogue_name_pairs(catalogue: EntityCatalogue) -> Iterable[tuple[str, int, bool, bool]]:
    titles = catalogue.table.column("title").to_pylist()
    aliases = catalogue.table.column("aliases").to_pylist()
    for row, (title, names) in enumerate(zip(titles, aliases, strict=True)):
        norm = normalize_surface(title or "")
        if norm:
            yield norm, row, True, False
        bare = normalize_surface(strip_disambiguator(title or ""))
        if bare and bare != norm:
            yield bare, row, False, True
        for alias in names or ():
            alias_norm = normalize_surface(alias)
            if alias_norm and alias_norm != norm:
                yield alias_norm, row, False, True


def _pairs_table(pairs: Iterable[tuple[str, int, int, bool, bool]]) -> pa.Table:
    surfaces, rows, counts, titles, aliases = [], [], [], [], []
    for surface, row, count, is_title, is_alias in pairs:
        surfaces.append(surface)
        rows.append(row)
        counts.append(count)
        titles.append(is_title)
        aliases.append(is_alias)
    keys = np.array([surface_key(s) for s in surfaces], dtype=np.uint64)
    return pa.table(
        [
            pa.array(keys, type=pa.uint64()),
            pa.array(surfaces, type=pa.string()),
            pa.array(rows, type=pa.int32()),
            pa.array(counts, type=pa.int32()),
            pa.array(titles, type=pa.bool_()),
            pa.array(aliases, type=pa.bool_()),
        ],
        schema=_SCHEMA,
    )


def _catalogue_names(catalogue: EntityCatalogue) -> pa.Table:
    return _pairs_table((s, row, 0, t, a) for s, row, t, a in _catalogue_name_pairs(catalogue))


def _example_counts(catalogue: EntityCatalogue, examples: Sequence[Example]) -> pa.Table:
    rows = example_rows(catalogue, examples)
    return _pairs_table(
        (norm, row, 1, False, False)
        for example, gold_rows in zip(examples, rows, strict=True)
        for norm, row in _gold_surfaces(example, gold_rows)
    )


def _anchor_counts(catalogue: EntityCatalogue, anchors: pa.Table) -> pa.Table:
    rows = catalogue.lookup(anchors.column("entity").to_pylist())
    surfaces = anchors.column("surface").to_pylist()
    counts = anchors.column("count").to_pylist()
    return _pairs_table(
        (normalize_surface(s), int(r), int(c), False, False)
        for s, r, c in zip(surfaces, rows, counts, strict=True)
        if r >= 0 and normalize_surface(s)
    )


def example_rows(catalogue: EntityCatalogue, examples: Sequence[Example]) -> list[np.ndarray]:
    """Catalogue rows of each example's gold entities (-1 where absent), in one look-up."""
    flat = catalogue.lookup([m.entity for e in examples for m in e.mentions])
    bounds = np.cumsum([0] + [len(e.mentions) for e in examples])
    return [flat[bounds[i] : bounds[i + 1]] for i in range(len(examples))]
