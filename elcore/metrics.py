"""ELQ's evaluation: strong/weak span match and entity-level precision, recall and F1, and threshold sweeps.

Definitions (all micro-averaged over the examples):

- **strong**: a prediction is correct when it has the same entity and exactly the same character span as a gold
  mention; **weak**: same entity and overlapping spans. Only gold mentions with a span count. Matching is
  one-to-one, greedy by prediction score (highest first): a gold mention is matched at most once, so a duplicate
  prediction of an already matched gold is a false positive. Among the golds a prediction may match, the exact
  span wins, then the largest overlap.
- **null-span gold**: a prediction that matched no spanned gold but whose entity is a null-span gold entity of the
  same example is neither a true nor a false positive (`ignored`, left out of precision): the kit only says the
  entity is mentioned somewhere, so a correct span prediction must not be punished.
- **entity**: per example, the set of predicted entities against the set of gold entities (all golds, with or
  without span); tp/fp/fn are summed over examples.
- Empty denominators give 0.0, never NaN.
- With `entity_has_text`, the same metrics for golds and predictions whose entity has catalogue text
  (`with_text`) and those whose entity has none (`without_text`); matching needs equal entities, so the two
  parts add up to the whole.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from elcore.data import Example, GoldMention
from elcore.errors import ConfigError, EvaluationInputError
from elcore.fs import write_bytes_atomic

C = TypeVar("C")

_KINDS = ("strong", "weak", "entity")
_SPLITS = ("with_text", "without_text")  # `evaluate`'s parts when it knows which entities have text
_MEASURES = ("precision", "recall", "f1")


class PredictedLink(Protocol):
    """What `evaluate` reads from a prediction: a character span, an entity key and a score."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def entity(self) -> str: ...
    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Prediction:
    """A predicted link: `[start, end)` character span, entity key (QID or catalogue id) and score."""

    start: int
    end: int
    entity: str
    score: float = 0.0


def _default_key(link: Any) -> str | None:
    return getattr(link, "qid", None) or getattr(link, "entity_id", None) or getattr(link, "entity", None)


def predictions_from_links(
    links: Iterable[Any],
    key: Callable[[Any], str | None] = _default_key,
    score: Callable[[Any], float] = lambda link: link.score,
) -> list[Prediction]:
    """Turn one example's linker output (anything with `start`, `end`, `score` and an entity key) into predictions.

    Args:
        links: the links of one text.
        key: the entity key to compare with the gold ids; default `link.qid or link.entity_id` (the catalogue id
            equals the QID when there is one, so this matches the kit's gold ids).
        score: the score used to order predictions for one-to-one matching.

    Returns:
        One `Prediction` per link, in input order.

    Raises:
        EvaluationInputError: a link has no entity key.

    Example:
        >>> [predictions_from_links(ls) for ls in linker.link(["who is cher?"])]
        [[Prediction(start=7, end=11, entity='Q12003', score=-0.3)]]
    """
    out = []
    for i, link in enumerate(links):
        entity = key(link)
        if not entity:
            raise EvaluationInputError(f"link {i} ({link!r}) has no entity key; pass key=... to choose one")
        out.append(Prediction(int(link.start), int(link.end), str(entity), float(score(link))))
    return out


def evaluate(
    examples: Sequence[Example],
    predictions: Sequence[Sequence[PredictedLink]],
    entity_has_text: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Score predictions against gold examples.

    Args:
        examples: the gold examples.
        predictions: one sequence of predictions per example, in the same order.
        entity_has_text: when given, also report the metrics split by whether an entity has catalogue text.

    Returns:
        A JSON-serialisable dict: `counts` (examples, gold_mentions, gold_with_span, gold_without_span,
        predictions), and `strong`, `weak`, `entity`, each with precision, recall, f1, tp, fp, fn (the span
        metrics also `ignored`); with `entity_has_text`, the same under `with_text` and `without_text`.

    Raises:
        EvaluationInputError: the counts of examples and prediction lists differ, or a prediction has no span.

    Example:
        >>> m = evaluate([ex], [[Prediction(8, 19, "Q373895", 0.9)]])
        >>> m["strong"]["precision"], m["strong"]["recall"], m["entity"]["recall"]
        (1.0, 1.0, 0.5)
    """
    if len(examples) != len(predictions):
        raise EvaluationInputError(
            f"got {len(examples)} examples but {len(predictions)} prediction lists; pass one list per example"
        )
    preds = [_checked(p, ex.id) for ex, p in zip(examples, predictions, strict=True)]
    result = _evaluate(examples, preds, lambda _entity: True)
    if entity_has_text is not None:
        cache: dict[str, bool] = {}

        def has_text(entity: str) -> bool:
            if entity not in cache:
                cache[entity] = bool(entity_has_text(entity))
            return cache[entity]

        result["with_text"] = _evaluate(examples, preds, has_text)
        result["without_text"] = _evaluate(examples, preds, lambda entity: not has_text(entity))
    return result


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of an `evaluate` result.

    Example:
        >>> print(format_table(m))
        examples 1 · gold mentions 2 (1 with span) · predictions 1
        part          metric      P      R     F1     tp     fp     fn
        all           strong  1.000  1.000  1.000      1      0      0
        ...
    """
    c = metrics["counts"]
    lines = [
        f"examples {c['examples']} · gold mentions {c['gold_mentions']} ({c['gold_with_span']} with span)"
        f" · predictions {c['predictions']}",
        f"{'part':<13}{'metric':>7}{'P':>7}{'R':>7}{'F1':>7}{'tp':>7}{'fp':>7}{'fn':>7}",
    ]
    parts = [("all", metrics)] + [(p, metrics[p]) for p in ("with_text", "without_text") if p in metrics]
    for name, part in parts:
        for kind in _KINDS:
            s = part[kind]
            lines.append(
                f"{name.replace('_', ' '):<13}{kind:>7}{s['precision']:>7.3f}{s['recall']:>7.3f}{s['f1']:>7.3f}"
                f"{s['tp']:>7}{s['fp']:>7}{s['fn']:>7}"
            )
    return "\n".join(lines)


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the counts of several `elcore.metrics.evaluate` results and recompute precision, recall and F1."""
    merged: dict[str, Any] = {"counts": {}}
    for report in reports:
        for name, value in report["counts"].items():
            merged["counts"][name] = merged["counts"].get(name, 0) + value
    for kind in _KINDS:
        totals: dict[str, int] = {}
        for report in reports:
            for name, value in report[kind].items():
                if name not in ("precision", "recall", "f1"):
                    totals[name] = totals.get(name, 0) + value
        merged[kind] = {**_prf(totals["tp"], totals["fp"], totals["fn"]), **totals}
    for split in _SPLITS:
        if reports and all(split in r for r in reports):
            merged[split] = merge_reports([r[split] for r in reports])
    return merged


def sweep_thresholds(
    examples: Sequence[Example],
    candidates: Sequence[C],
    thresholds: Iterable[float],
    resolve: Callable[[C, float], Sequence[PredictedLink]],
) -> list[dict[str, float]]:
    """Evaluate the same candidates at several thresholds.

    Args:
        examples: the gold examples.
        candidates: one item per example, whatever `resolve` takes (e.g. all scored spans of the text).
        thresholds: the thresholds to try.
        resolve: `resolve(candidates_of_one_example, threshold) -> predictions`, applying the threshold and the
            overlap resolution (the linker supplies it).

    Returns:
        One row per threshold, in the given order: `threshold`, `predictions` and `strong_precision`,
        `strong_recall`, `strong_f1`, `weak_...`, `entity_...`.

    Example:
        >>> rows = sweep_thresholds(examples, cands, [-3.0, -2.0], resolve)
        >>> best_threshold(rows, "weak_f1")
        -2.0
    """
    if len(examples) != len(candidates):
        raise EvaluationInputError(f"got {len(examples)} examples but {len(candidates)} candidate lists")
    rows = []
    for threshold in thresholds:
        metrics = evaluate(examples, [resolve(c, threshold) for c in candidates])
        row: dict[str, float] = {
            "threshold": float(threshold),
            "predictions": metrics["counts"]["predictions"],
        }
        for kind in _KINDS:
            for measure in _MEASURES:
                row[f"{kind}_{measure}"] = metrics[kind][measure]
        rows.append(row)
    return rows


def best_threshold(rows: Sequence[dict[str, float]], metric: str = "weak_f1") -> float:
    """The threshold of the row with the highest `metric`; on a tie, the highest threshold (fewest links)."""
    allowed = [f"{k}_{m}" for k in _KINDS for m in _MEASURES]
    if metric not in allowed:
        raise ConfigError(f"metric must be one of {', '.join(allowed)}, got {metric!r}")
    if not rows:
        raise ConfigError("no sweep rows: pass at least one threshold to sweep_thresholds")
    return max(rows, key=lambda r: (r[metric], r["threshold"]))["threshold"]


def plot_sweep(rows: Sequence[dict[str, float]], png_url: str, title: str | None = None) -> None:
    """Draw precision, recall and F1 against the threshold (one panel per metric) and write a PNG via fsspec."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on the Agg canvas: no pyplot state and no display backend, safe inside workers.
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ordered = sorted(rows, key=lambda r: r["threshold"])
    xs = [r["threshold"] for r in ordered]
    axes = fig.subplots(1, len(_KINDS), sharey=True)
    for ax, kind in zip(axes, _KINDS, strict=True):
        for measure in _MEASURES:
            ax.plot(xs, [r[f"{kind}_{measure}"] for r in ordered], marker=".", label=measure)
        if ordered:
            best = best_threshold(ordered, f"{kind}_f1")
            ax.axvline(best, color="grey", linestyle="--", linewidth=0.8, label=f"best F1 @ {best:g}")
        ax.set_title(kind)
        ax.set_xlabel("threshold")
        ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("score")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_bytes_atomic(png_url, buf.getvalue())


def _checked(predictions: Sequence[PredictedLink], example_id: str) -> list[PredictedLink]:
    preds = list(predictions)
    for p in preds:
        if p.start is None or p.end is None:
            raise EvaluationInputError(f"example {example_id!r}: prediction {p!r} has no span")
    return preds


def _evaluate(
    examples: Sequence[Example], predictions: list[list[PredictedLink]], keep: Callable[[str], bool]
) -> dict[str, Any]:
    counts = {"examples": len(examples), "gold_mentions": 0, "gold_with_span": 0, "predictions": 0}
    totals = {kind: {"tp": 0, "fp": 0, "fn": 0, "ignored": 0} for kind in _KINDS}
    for example, preds in zip(examples, predictions, strict=True):
        golds = [g for g in example.mentions if keep(g.entity)]
        kept = [p for p in preds if keep(p.entity)]
        spanned = [g for g in golds if g.has_span]
        counts["gold_mentions"] += len(golds)
        counts["gold_with_span"] += len(spanned)
        counts["predictions"] += len(kept)
        null_entities = {g.entity for g in golds if not g.has_span}
        for kind, weak in (("strong", False), ("weak", True)):
            tp, fp, ignored = _match_spans(spanned, null_entities, kept, weak)
            t = totals[kind]
            t["tp"], t["fp"], t["fn"], t["ignored"] = (
                t["tp"] + tp,
                t["fp"] + fp,
                t["fn"] + len(spanned) - tp,
                t["ignored"] + ignored,
            )
        gold_set, pred_set = {g.entity for g in golds}, {p.entity for p in kept}
        t = totals["entity"]
        t["tp"] += len(gold_set & pred_set)
        t["fp"] += len(pred_set - gold_set)
        t["fn"] += len(gold_set - pred_set)
    counts["gold_without_span"] = counts["gold_mentions"] - counts["gold_with_span"]
    result: dict[str, Any] = {"counts": counts}
    for kind, t in totals.items():
        if kind == "entity":
            del t["ignored"]
        result[kind] = {**_prf(t["tp"], t["fp"], t["fn"]), **t}
    return result


def _match_spans(
    golds: list[GoldMention], null_entities: set[str], preds: list[PredictedLink], weak: bool
) -> tuple[int, int, int]:
    """One-to-one greedy matching by score; returns (true positives, false positives, ignored predictions)."""
    used = [False] * len(golds)
    tp = fp = ignored = 0
    order = sorted(range(len(preds)), key=lambda i: (-preds[i].score, preds[i].start, preds[i].end, i))
    for i in order:
        p = preds[i]
        best, best_key = -1, (0, 0)
        for j, g in enumerate(golds):
            if used[j] or g.entity != p.entity:
                continue
            assert g.start is not None and g.end is not None
            exact = (g.start, g.end) == (p.start, p.end)
            overlap = min(g.end, p.end) - max(g.start, p.start)
            if not (exact or (weak and overlap > 0)):
                continue
            key = (2 if exact else 1, overlap)
            if key > best_key:
                best, best_key = j, key
        if best >= 0:
            used[best] = True
            tp += 1
        elif p.entity in null_entities:
            ignored += 1
        else:
            fp += 1
    return tp, fp, ignored


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
