"""Evaluate a linker on gold examples: ELQ's metrics at one threshold, or swept over many.

The linker runs once (`link_candidates`); every threshold then only re-applies the joint-score
filter and greedy overlap resolution, so a sweep costs no extra encoder passes.

    >>> report = evaluate_linker(linker, read_examples("webqsp/dev.jsonl"), sweep=default_thresholds())
    >>> report["metrics"]["weak"]["f1"], report["best_threshold"]
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .catalogue import EntityCatalogue
from .data import Example
from .linker import Link, Linker
from .metrics import best_threshold, evaluate, predictions_from_links, sweep_thresholds


def default_thresholds() -> list[float]:
    return [round(float(t), 2) for t in np.arange(-8.0, 0.01, 0.25)]


def evaluate_linker(
    linker: Linker,
    examples: Sequence[Example],
    sweep: Sequence[float] | None = None,
    select_by: str = "weak_f1",
) -> dict:
    """Metrics at `linker.config.threshold`, the sweep rows and the best threshold when asked.

    Returns a JSON-serialisable dict with `metrics`, `errors` (`error_breakdown` at the threshold),
    `timing` (link seconds, texts/s), and when `sweep` is given, `sweep` rows and `best_threshold`.
    """
    threshold = linker.config.threshold
    lowest = min([threshold, *(sweep or [])])
    started = time.perf_counter()
    candidates = linker.link_candidates([e.text for e in examples], mention_threshold=lowest)
    link_seconds = time.perf_counter() - started

    def resolve(links, t):
        return predictions_from_links(Linker.resolve(links, t))

    has_text = _has_text_lookup(linker)
    links = [Linker.resolve(c, threshold) for c in candidates]
    predictions = [predictions_from_links(x) for x in links]
    report: dict = {
        "threshold": threshold,
        "metrics": evaluate(examples, predictions, entity_has_text=has_text),
        "errors": error_breakdown(examples, links, linker.catalogue),
        "timing": {
            "link_seconds": round(link_seconds, 3),
            "texts_per_second": round(len(examples) / max(link_seconds, 1e-9), 2),
        },
    }
    if sweep:
        rows = sweep_thresholds(examples, candidates, list(sweep), resolve)
        report["sweep"] = rows
        report["best_threshold"] = best_threshold(rows, metric=select_by)
        report["selected_by"] = select_by
    return report


def error_breakdown(
    examples: Sequence[Example], links: Sequence[Sequence[Link]], catalogue: EntityCatalogue
) -> dict[str, int]:
    """What became of each gold mention with a span, split by whether its entity has description text.

    `correct` (same span, same entity); `span_boundary_wrong` (the entity linked on an overlapping
    span); `wrong_entity_gold_in_top_k` / `gold_not_retrieved` (an overlapping link to another
    entity, with the gold among its `candidates` or not; `wrong_entity` when the linker attached no
    candidates); `mention_missed` (no overlapping link); `gold_not_in_catalogue`.
    """
    reasons: Counter = Counter()
    for example, found in zip(examples, links, strict=True):
        for mention in example.mentions:
            if not mention.has_span:
                continue
            row = int(catalogue.lookup([mention.entity])[0])
            if row < 0:
                reasons["gold_not_in_catalogue"] += 1
                continue
            text = "with_text" if catalogue.has_text([row])[0] else "without_text"
            overlapping = [x for x in found if x.start < mention.end and mention.start < x.end]
            if any((x.start, x.end, x.entity_row) == (mention.start, mention.end, row) for x in overlapping):
                reason = "correct"
            elif not overlapping:
                reason = "mention_missed"
            elif any(x.entity_row == row for x in overlapping):
                reason = "span_boundary_wrong"
            elif not any(x.candidates for x in overlapping):
                reason = "wrong_entity"
            elif any(c.entity_row == row for x in overlapping for c in x.candidates):
                reason = "wrong_entity_gold_in_top_k"
            else:
                reason = "gold_not_retrieved"
            reasons[f"{reason}/{text}"] += 1
    return dict(sorted(reasons.items()))


def _has_text_lookup(linker: Linker):
    """Whether an entity key (QID or catalogue id) has description text in the catalogue."""

    def has_text(key: str) -> bool:
        row = int(linker.catalogue.lookup([key])[0])
        return row >= 0 and bool(linker.catalogue.has_text([row])[0])

    return has_text
