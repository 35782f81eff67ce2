"""Candidate spans: enumeration and scoring in a band, mention vectors, and overlap resolution.

Spans are indexed as `(i, w)`: start position `i`, width `w + 1` tokens, for `w < max_width`. The
score of span `i..j` is `start[i] + end[j] + sum(inside[i..j])` (ELQ), computed for the whole band
with prefix sums: `[B, L, max_width]` values, never an `L x L` grid.

    >>> scores = span_scores(start, end, inside, valid)   # [B, L, K]
    >>> b, first, last, s = top_spans(scores, k=50)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import torch


class ScoredSpan(Protocol):
    start: int
    end: int

    @property
    def score(self) -> float: ...


T = TypeVar("T")
S = TypeVar("S", bound=ScoredSpan)


def span_mask(
    content_mask: torch.Tensor,
    max_width: int,
    word_start_mask: torch.Tensor | None = None,
    word_end_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[B, L, K]` True where span `(i, w)` lies on text tokens (and on word boundaries if given)."""
    batch, length = content_mask.shape
    valid = torch.zeros((batch, length, max_width), dtype=torch.bool, device=content_mask.device)
    run = content_mask.clone()  # run[:, i] = all tokens i..i+w are text tokens
    for w in range(min(max_width, length)):
        if w > 0:
            run[:, : length - w] &= content_mask[:, w:]
            run[:, length - w :] = False
        ok = run.clone()
        if word_start_mask is not None:
            ok &= word_start_mask
        if word_end_mask is not None:
            ends = torch.zeros_like(ok)
            ends[:, : length - w] = word_end_mask[:, w:]
            ok &= ends
        valid[:, :, w] = ok
    return valid


def span_scores(
    start: torch.Tensor, end: torch.Tensor, inside: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Mention logits `[B, L, K]` for every span in the band; `-inf` where `valid` is False."""
    batch, length, max_width = valid.shape
    prefix = torch.nn.functional.pad(inside.cumsum(dim=1), (1, 0))  # prefix[:, t] = sum inside[:, :t]
    scores = torch.full(valid.shape, float("-inf"), dtype=start.dtype, device=start.device)
    for w in range(max_width):
        n = length - w
        if n <= 0:
            break
        scores[:, :n, w] = start[:, :n] + end[:, w:] + prefix[:, w + 1 :] - prefix[:, :n]
    return scores.masked_fill(~valid, float("-inf"))


def top_spans(
    scores: torch.Tensor, k: int, min_score: float = float("-inf")
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The best `k` spans of each row whose score exceeds `min_score`.

    Returns:
        `(batch_index, first, last, score)`, flat tensors over all kept spans; `first` and `last`
        are inclusive token positions.
    """
    batch, length, max_width = scores.shape
    flat = scores.reshape(batch, -1)
    k = min(k, flat.shape[1])
    best, where = flat.topk(k, dim=1)
    keep = best > min_score
    batch_index = torch.arange(batch, device=scores.device).unsqueeze(1).expand(-1, k)[keep]
    where = where[keep]
    first = where // max_width
    last = first + where % max_width
    return batch_index, first, last, best[keep]


def span_means(
    hidden: torch.Tensor, batch_index: torch.Tensor, first: torch.Tensor, last: torch.Tensor
) -> torch.Tensor:
    """Mean of `hidden[b, first..last]` for each span (ELQ's `all_avg`), via prefix sums: `[N, D]`."""
    prefix = torch.nn.functional.pad(hidden.cumsum(dim=1), (0, 0, 1, 0))
    total = prefix[batch_index, last + 1] - prefix[batch_index, first]
    return total / (last - first + 1).unsqueeze(1).to(hidden.dtype)


def resolve_overlaps(
    items: Sequence[T], span: Callable[[T], tuple[int, int]], score: Callable[[T], float]
) -> list[T]:
    """Greedy non-overlap: take items by descending score, skipping any that overlaps one taken.

    Spans are half-open `[start, end)`. The result is sorted by start.
    """
    taken: list[T] = []
    for item in sorted(items, key=score, reverse=True):
        s, e = span(item)
        if all(e <= ts or s >= te for ts, te in (span(t) for t in taken)):
            taken.append(item)
    return sorted(taken, key=lambda t: span(t)[0])


def select_spans(spans: Sequence[S], threshold: float) -> list[S]:
    """Spans scoring above `threshold`, without overlaps (greedy by score), sorted by start."""
    return resolve_overlaps(
        [s for s in spans if s.score > threshold], lambda s: (s.start, s.end), lambda s: s.score
    )
