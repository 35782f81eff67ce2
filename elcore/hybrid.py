"""The hybrid linker: a trained dense ELQ model + the prior table + a fusion head fitted on training data.

    >>> linker = Linker.from_pretrained("runs/frozen/best", catalogue="entities.jsonl")
    >>> summary = fit_hybrid(linker, HybridConfig(prior_data=[...], head_data=[...]), dev=dev_examples)
    >>> linker.save_pretrained("runs/hybrid")        # + priors.parquet + fusion/

Steps: (1) the prior table from the catalogue's names and the gold spans of *all* training files
(never a dev split); (2) the linker proposes fused candidates on a sample of the training texts,
with each text's own counts taken out of its features (leave-one-out), and every candidate is
labelled 1 when its span and entity are exactly a gold mention's; (3) the head fits those labels;
(4) the link threshold and whether unknown surfaces are searched are tuned on dev (when given)
and kept with the head.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import fs
from .candidates import without_edge_punctuation
from .data import Example, read_examples
from .errors import ConfigError
from .fusion import FusionConfig, for_new_fit, train_head
from .linker import Linker
from .priors import MentionCounts, PriorTable, example_rows

if TYPE_CHECKING:
    from .train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class HybridConfig:
    """What the priors and the fusion head learn from.

    Attributes:
        prior_data: training files whose gold spans become mention counts (train splits only).
        head_data: `(file, max_examples[, "partial"])` the head is fitted on (sampled, 0 = all; each
            file must be in `prior_data`, so leave-one-out applies). "partial" marks files that
            annotate only some mentions (Wikipedia anchors, FewRel's entity pairs): only candidate
            spans that overlap a gold span are used, so unannotated names are not taught as negatives.
            Texts without a gold span are fitted from complete files (every span there is a negative,
            "the cup of tea" kind) and skipped in partial ones.
        anchor_counts: an `anchors.parquet` written by `elq kb build` (surface, entity, count), optional.
        fusion: the head's shape and its prior candidates per span.
        cased_copies: share of the completely annotated head texts that are also fitted in a cased
            form (first letter and every gold span written as its entity's title, where that only
            changes case), for inputs that name entities with capitals (most lower-cased question
            sets teach the head nothing about those).
        unseen_surfaces: share of the head texts' gold surfaces (other than titles) fitted as if the
            table had never seen them: on new text a tenth to a fifth of the names are not in it
            (kit dev sets), and with aliases taken from the training data the head would otherwise
            never see such a name be a link.
        epochs: passes of the head over its rows.
        seed: sampling and initialisation.
    """

    prior_data: list[str] = field(default_factory=list)
    head_data: list[tuple[str, int, str]] = field(default_factory=list)
    anchor_counts: str | None = None
    fusion: FusionConfig = field(default_factory=FusionConfig)
    cased_copies: float = 0.0
    unseen_surfaces: float = 0.0
    epochs: int = 30
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> HybridConfig:
        """From JSON-like values (`TrainConfig.hybrid`); raises `ConfigError` naming an unknown field."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"hybrid: unknown fields {unknown}; known: {sorted(known)}")
        values = dict(values)
        if isinstance(values.get("fusion"), dict):
            values["fusion"] = FusionConfig(**values["fusion"])
        values["head_data"] = [_head_entry(entry) for entry in values.get("head_data", [])]
        return cls(**values)


def _head_entry(entry: Sequence) -> tuple[str, int, str]:
    url, limit, *rest = entry
    annotation = rest[0] if rest else "complete"
    if annotation not in ("complete", "partial"):
        raise ConfigError(
            f"hybrid.head_data {url}: annotation must be 'complete' or 'partial', got {annotation!r}"
        )
    return str(url), int(limit), annotation


def train_hybrid_linker(config: TrainConfig) -> dict:
    """The hybrid stage of a training run: `output_dir/best` + priors + head -> `output_dir/linker`.

    The priors count the run's own training files plus `hybrid.prior_data`; the threshold is tuned on
    the run's dev sets by its `select_by` metric.
    """
    hybrid = HybridConfig.from_dict(config.hybrid)
    hybrid.prior_data = list(dict.fromkeys([*config.train_data, *hybrid.prior_data]))
    linker = Linker.from_pretrained(fs.join(config.output_dir, "best"), catalogue=config.catalogue)
    dev = [e for url in config.dev_data for e in read_examples(url, limit=config.max_dev_examples)]
    summary = fit_hybrid(linker, hybrid, dev=dev, select_by=config.select_by)
    out = fs.join(config.output_dir, "linker")
    linker.save_pretrained(out)
    return {**summary, "linker": out}


def fit_hybrid(
    linker: Linker,
    config: HybridConfig,
    dev: Sequence[Example] = (),
    thresholds: Sequence[float] | None = None,
    select_by: str = "weak_f1",
) -> dict:
    """Build the priors, fit the head and (with `dev`) tune its threshold; the linker is fused after."""
    started = time.perf_counter()
    examples_by_file = {url: read_examples(url) for url in config.prior_data}
    anchors = None
    if config.anchor_counts:
        import pyarrow.parquet as pq

        filesystem, path = fs.arrow_filesystem(config.anchor_counts)
        anchors = pq.read_table(path, filesystem=filesystem)
    all_examples = [e for examples in examples_by_file.values() for e in examples]
    priors = PriorTable.build(linker.catalogue, all_examples, anchors, sources=list(config.prior_data))
    log.info("prior table: %d surfaces, %d pairs", len(priors), priors.num_pairs)

    rng = random.Random(config.seed)
    head_examples: list[Example] = []
    partial: list[bool] = []
    for url, limit, annotation in map(_head_entry, config.head_data):
        pool = examples_by_file.get(url)
        if pool is None:
            raise ConfigError(
                f"hybrid.head_data file {url} is not among prior_data (leave-one-out needs it there)"
            )
        if annotation == "partial":  # a text without gold spans says nothing about its spans there
            pool = [e for e in pool if e.mentions]
        chosen = rng.sample(pool, min(limit, len(pool))) if limit else pool
        if annotation == "complete" and config.cased_copies > 0 and chosen:
            chosen = chosen + _cased_copies(chosen, _gold_titles(linker, chosen), config.cased_copies, rng)
        head_examples += chosen
        partial += [annotation == "partial"] * len(chosen)
    linker.priors, linker.fusion, linker.use_priors = priors, None, True
    features, labels = collect_training_rows(
        linker, head_examples, partial, unseen_surfaces=config.unseen_surfaces, seed=config.seed
    )
    head = train_head(features, labels, for_new_fit(config.fusion), epochs=config.epochs, seed=config.seed)
    linker.fusion = head
    summary = {
        "surfaces": len(priors),
        "pairs": priors.num_pairs,
        "head_examples": len(head_examples),
        "head_rows": int(len(labels)),
        "head_positives": int(labels.sum()),
    }
    if dev:
        summary.update(tune_on_dev(linker, dev, thresholds, select_by))
    head.config.training.update({k: v for k, v in summary.items() if k != "threshold"})
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def tune_on_dev(
    linker: Linker,
    examples: Sequence[Example],
    thresholds: Sequence[float] | None = None,
    select_by: str = "weak_f1",
) -> dict:
    """The link threshold and whether to dense-search spans of surfaces the prior table does not know
    (`FusionConfig.search_unknown_surfaces`), chosen together: the threshold is swept on `examples`
    (dev texts) with and without those searches, and the better (on a tie the cheaper, without)
    is kept. The searches find names no training text had, and add wrong links of unknown spans;
    where dev annotates only names the table knows (silver leads) every such link counts wrong."""
    from .evaluation import default_thresholds, evaluate_linker

    if not linker.fused:
        raise ConfigError("tune_on_dev needs a fused linker (priors and a fusion head)")
    sweep = thresholds or default_thresholds(fused=True)
    best: tuple[float, bool, float] | None = None
    for search in (False, True):
        linker.fusion.config.search_unknown_surfaces = search
        report = evaluate_linker(linker, examples, sweep=sweep, select_by=select_by)
        score = next(r[select_by] for r in report["sweep"] if r["threshold"] == report["best_threshold"])
        if best is None or score > best[0]:
            best = (score, search, report["best_threshold"])
    score, linker.fusion.config.search_unknown_surfaces, linker.threshold = best
    return {
        "threshold": linker.threshold,
        "search_unknown_surfaces": linker.fusion.config.search_unknown_surfaces,
        f"dev_{select_by}": round(score, 4),
    }


def calibrate_unknown_surfaces(linker: Linker, examples: Sequence[Example]) -> dict:
    """Does the fused linker, at its threshold, ever link a span whose surface the prior table does not
    know? Scored on `examples`; when no such candidate reaches the threshold, the linker stops
    dense-searching those spans (`FusionConfig.search_unknown_surfaces`; on 300-word documents they
    are most of the searches, kit: 2 in 3). A quicker check than `tune_on_dev`, which weighs the
    links they add against the wrong ones."""
    if not linker.fused:
        raise ConfigError("calibrate_unknown_surfaces needs a fused linker (priors and a fusion head)")
    linker.fusion.config.search_unknown_surfaces = True
    texts = [e.text for e in examples]
    candidates = [
        c for per in linker.link_candidates(texts, linker.config.effective_mention_threshold) for c in per
    ]
    unknown = linker.priors.find([c.mention for c in candidates]) < 0
    best = max((c.score for c, u in zip(candidates, unknown, strict=True) if u), default=-math.inf)
    linker.fusion.config.search_unknown_surfaces = bool(best >= linker.threshold)
    return {
        "unknown_surface_candidates": int(unknown.sum()),
        "unknown_surface_best_log_prob": round(best, 3) if math.isfinite(best) else None,
        "search_unknown_surfaces": linker.fusion.config.search_unknown_surfaces,
    }


def _gold_titles(linker: Linker, examples: Sequence[Example]) -> list[str]:
    """The catalogue title of every gold mention of `examples`, in order ('' where not in the catalogue)."""
    rows = np.concatenate(example_rows(linker.catalogue, examples))
    titles = linker.catalogue.titles(np.maximum(rows, 0))
    return [t if r >= 0 else "" for t, r in zip(titles, rows.tolist(), strict=True)]


def _cased_copies(
    examples: Sequence[Example], titles: Sequence[str], share: float, rng: random.Random
) -> list[Example]:
    """Copies of a share of `examples` with the first letter and each gold span written as its
    entity's title (`titles`: one per mention, in order), where that changes case only."""
    copies, i = [], 0
    for example in examples:
        mine = titles[i : i + len(example.mentions)]
        i += len(example.mentions)
        if rng.random() >= share:
            continue
        chars = list(example.text[:1].upper() + example.text[1:])
        changed = False
        for mention, title in zip(example.mentions, mine, strict=True):
            if (
                mention.has_span
                and title
                and title.lower() == example.text[mention.start : mention.end].lower()
            ):
                chars[mention.start : mention.end] = list(title)
                changed = True
        if changed:
            copies.append(dataclasses.replace(example, id=f"{example.id}/cased", text="".join(chars)))
    return copies


def collect_training_rows(
    linker: Linker,
    examples: Sequence[Example],
    partial: Sequence[bool] | None = None,
    batch: int = 256,
    unseen_surfaces: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 labels of every fused candidate the linker proposes on `examples`.

    Candidates whose entity is a gold entity without a span are left out (the gold only says it is
    mentioned somewhere, so they are neither right nor wrong); so are, for a `partial` example, spans
    that overlap none of its gold spans. Each text's own counts are left out of its features, and a
    share `unseen_surfaces` of its gold surfaces is treated as unknown to the table.
    """
    partial = list(partial) if partial is not None else [False] * len(examples)
    rows_of = example_rows(linker.catalogue, examples)
    rng = random.Random(seed)
    features, labels = [], []
    done, started = 0, time.perf_counter()
    for lo in range(0, len(examples), batch):
        chunk = examples[lo : lo + batch]
        own = [
            _with_unseen(MentionCounts.of(e, r), unseen_surfaces, rng)
            for e, r in zip(chunk, rows_of[lo : lo + batch], strict=True)
        ]
        hits = linker._span_hits(
            [e.text for e in chunk], linker.config.effective_mention_threshold, own, True
        )
        chunk_partial = partial[lo : lo + batch]
        for example, gold_rows, per_text, only_overlapping in zip(
            chunk, rows_of[lo : lo + batch], hits, chunk_partial, strict=True
        ):
            gold = {
                without_edge_punctuation(example.text, m.start, m.end): int(r)
                for m, r in zip(example.mentions, gold_rows, strict=True)
                if m.has_span
            }
            unspanned = {int(r) for m, r in zip(example.mentions, gold_rows, strict=True) if not m.has_span}
            for hit in per_text:
                if only_overlapping and not any(hit.start < e and s < hit.end for s, e in gold):
                    continue  # an unannotated name of a partially annotated text: neither right nor wrong
                valid = hit.rows >= 0
                keep = valid & ~np.isin(hit.rows, list(unspanned))
                want = gold.get((hit.start, hit.end), -2)
                features.append(hit.features[keep])
                labels.append((hit.rows[keep] == want).astype(np.float32))
        done += len(chunk)
        rate = done / max(time.perf_counter() - started, 1e-9)
        log.info(
            "fusion rows: %d/%d texts (%.1f/s, ETA %.0f s)",
            done,
            len(examples),
            rate,
            (len(examples) - done) / rate,
        )
    return np.concatenate(features), np.concatenate(labels)


def _with_unseen(counts: MentionCounts, share: float, rng: random.Random) -> MentionCounts:
    """`counts` with each of its gold surfaces marked unseen with probability `share`."""
    unseen = frozenset(key for key in counts.links if rng.random() < share)
    return dataclasses.replace(counts, unseen=unseen) if unseen else counts
