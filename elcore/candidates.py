"""The fused linker's part of a window batch: alias-table spans, fused candidates and their scores.

`Linker` calls these when it links with priors: `with_alias_spans` adds every valid span whose
text the prior table knows to the mention head's spans; `score_fused` joins each span's dense top-k
with its surface's prior entities, builds their features and scores them with the fusion head.

    >>> spans = with_alias_spans(priors, texts, docs, batch, valid, b_idx, first, last)
    >>> rows, dense_scores, joint, features = score_fused(parts, spans, inputs)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .fusion import EntityFacts, FusionHead, SpanFacts, candidate_features, fuse_candidates, nesting
from .index import EntityIndex
from .priors import MentionCounts, PriorTable, text_key
from .text import TokenizedText, WindowBatch, char_span

DEFAULT_PRIOR_CANDIDATES = 10  # prior rows per span while no head is fitted yet (collecting its rows)


@dataclass(frozen=True)
class FusedParts:
    """What fused scoring needs from a linker."""

    priors: PriorTable
    head: FusionHead | None  # None while collecting the head's training rows
    index: EntityIndex
    entities: EntityFacts


@dataclass(frozen=True)
class CandidateSpans:
    """The batch's candidate spans (window index, first/last model positions), which of them the
    mention head proposed (those get a dense search), and their surfaces in the prior table."""

    batch_index: torch.Tensor
    first: torch.Tensor
    last: torch.Tensor
    searched: torch.Tensor
    positions: np.ndarray  # -1: the surface is not in the table
    keys: np.ndarray
    char_starts: np.ndarray  # where each span starts in its text


@dataclass(frozen=True)
class BatchInputs:
    """The rest of what `score_fused` reads, per candidate span."""

    texts: Sequence[str]
    batch: WindowBatch
    vectors: np.ndarray  # [N, D] mean span vectors
    context: np.ndarray  # [N, D] mean vector of each span's window
    dense_rows: np.ndarray  # [N, k], -1 where not searched
    dense_scores: np.ndarray
    mention_scores: np.ndarray  # [N] log-sigmoid
    own: Sequence[MentionCounts] | None  # leave-one-out counts (training rows only)


def with_alias_spans(
    priors: PriorTable,
    texts: Sequence[str],
    docs: Sequence[TokenizedText],
    batch: WindowBatch,
    valid: torch.Tensor,
    b_idx: torch.Tensor,
    first: torch.Tensor,
    last: torch.Tensor,
    search_unknown: bool = True,
    edge_punctuation: bool = True,
    own: Sequence[MentionCounts] | None = None,
) -> CandidateSpans:
    """The mention head's spans (`b_idx`, `first`, `last`) plus every valid span the table knows.

    `search_unknown=False` drops the head's spans whose surface the table does not know (for a head
    that never links one, their dense searches are wasted); `edge_punctuation=False` drops spans whose
    text begins or ends with punctuation (the span without it has the same surface). `own` (per text;
    fitting the head): a surface only the text's own gold spans put in the table counts as unknown."""
    vb, vi, vw = (t.cpu() for t in valid.nonzero(as_tuple=True))
    vj = vi + vw
    keys = np.zeros(len(vb), dtype=np.uint64)
    starts = np.zeros(len(vb), dtype=np.int64)
    clean = np.ones(len(vb), dtype=bool)
    for n, (b, i, j) in enumerate(zip(vb.tolist(), vi.tolist(), vj.tolist(), strict=True)):
        window = batch.windows[b]
        s, e = char_span(docs[window.text_index], window, i, j)
        text = texts[window.text_index]
        keys[n], starts[n] = text_key(text[s:e]), s
        clean[n] = edge_punctuation or without_edge_punctuation(text, s, e) == (s, e)
    positions = priors.find_keys(keys)
    if own is not None:
        positions = priors.left_out_positions(
            positions, keys, [own[batch.windows[b].text_index] for b in vb.tolist()]
        )
    length, width = valid.shape[1], valid.shape[2]
    flat = ((vb * length + vi) * width + vw).numpy()  # increasing: nonzero() walks in row-major order
    head_at = np.searchsorted(flat, ((b_idx * length + first) * width + (last - first)).numpy())
    in_head = np.zeros(len(flat), dtype=bool)
    in_head[head_at] = True
    if not search_unknown:
        head_at = head_at[positions[head_at] >= 0]
    head_at = head_at[clean[head_at]]
    at = np.concatenate([head_at, np.flatnonzero((positions >= 0) & ~in_head & clean)])
    searched = torch.zeros(len(at), dtype=torch.bool)
    searched[: len(head_at)] = True
    return CandidateSpans(vb[at], vi[at], vj[at], searched, positions[at], keys[at], starts[at])


def without_edge_punctuation(text: str, start: int, end: int) -> tuple[int, int]:
    """The span `text[start:end]` without the punctuation it begins or ends with: what a head fitted
    without edge-punctuation spans proposes ("Washington, D.C" for a gold "Washington, D.C.", whose stop
    the link gets back from its title: `linker.name_end`)."""
    while end > start and not text[end - 1].isalnum():
        end -= 1
    while start < end and not text[start].isalnum():
        start += 1
    return start, end


def window_context(hidden: torch.Tensor, content_mask: torch.Tensor, batch_index: torch.Tensor) -> np.ndarray:
    """Mean text-token vector of each span's window: `[N, D]`."""
    content = content_mask.to(hidden.device).unsqueeze(-1).to(hidden.dtype)
    means = (hidden * content).sum(dim=1) / content.sum(dim=1).clamp(min=1)
    return means[batch_index.to(hidden.device)].float().cpu().numpy()


def score_fused(
    parts: FusedParts, spans: CandidateSpans, inputs: BatchInputs
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense top-k UNION prior entities per span: `(rows, dense scores, fused log-probs, features)`."""
    top = parts.head.config.prior_candidates if parts.head is not None else DEFAULT_PRIOR_CANDIDATES
    fused = fuse_candidates(
        inputs.dense_rows, inputs.dense_scores, spans.positions, spans.keys, parts.priors, top, inputs.own
    )
    # One look-up of the candidates' vectors serves both scores: the span vector against the rows the
    # dense search did not return, and the window's vector against every row.
    n = len(fused.rows)
    missing = (fused.rows >= 0) & ~fused.in_dense
    scores = parts.index.score_ids(
        np.concatenate([inputs.vectors, inputs.context]),
        np.concatenate([np.where(missing, fused.rows, -1), fused.rows]),
    )
    fused.dense_scores[missing] = scores[:n][missing]
    b, i, j = spans.batch_index, spans.first, spans.last
    words = inputs.batch.word_start_mask.cumsum(dim=1)
    capitalized = np.array(
        [
            inputs.texts[inputs.batch.windows[bb].text_index][s : s + 1].isupper()
            for bb, s in zip(b.tolist(), spans.char_starts.tolist(), strict=True)
        ],
        dtype=np.float32,
    )
    known = spans.positions >= 0
    inside, contains = nesting(b.numpy(), i.numpy(), j.numpy(), known)
    facts = SpanFacts(
        inputs.mention_scores,
        (words[b, j] - words[b, i] + 1).numpy().astype(np.float32),
        capitalized,
        known,
        inside,
        contains,
        scores[n:],
    )
    features = candidate_features(fused, facts, parts.entities, parts.priors)
    if parts.head is not None:
        joint = parts.head.log_probs(features)
    else:  # collecting training rows: any order will do
        joint = np.broadcast_to(inputs.mention_scores[:, None], fused.rows.shape).copy()
    joint = np.where(fused.rows >= 0, joint, -np.inf).astype(np.float32)
    return fused.rows, fused.dense_scores, joint, features
