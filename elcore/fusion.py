"""Fused candidates and their learned score: dense retrieval UNION the prior table, one small head.

For every candidate span the linker takes the dense top-k entities of its mean vector and the top
prior entities of its normalised surface; each (span, entity) pair gets the features below, and a
small MLP turns them into `log P(this span links to this entity)`. That score is a log-probability
like ELQ's joint score, so thresholds, sweeps and `--candidates` work unchanged.

    >>> fused = fuse_candidates(dense_rows, dense_scores, positions, keys, priors, top=10)
    >>> head = FusionHead.load("linker/fusion")
    >>> head.log_probs(candidate_features(fused, span_facts, EntityFacts.of(catalogue), priors))  # [N, C]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from . import fs
from .errors import ConfigError, ModelNotFoundError
from .priors import MentionCounts, PriorTable

FUSION_DIR = "fusion"
FEATURES = (
    "mention_score",  # ELQ's log-sigmoid mention score of the span
    "dense_score",  # inner product of span and entity vectors
    "dense_log_softmax",  # over the span's fused candidates
    "in_dense_top_k",
    "dense_top_1",
    "log_prior",  # log p(entity | surface) from mention counts
    "has_count",
    "log_surface_count",  # how often the surface was seen as a link at all
    "is_title",  # the span's normalised text is the entity's title
    "is_alias",  # ... or one of its aliases
    "surface_known",  # the span's text is in the prior table
    "log_entity_count",  # entity popularity: its mention counts over all surfaces
    "has_text",
    "span_words",
    "capitalized",
    "prior_top_1",
    "log_surface_entities",  # ambiguity: entities recorded for the surface
    "inside_known_span",  # a longer candidate span around this one is in the prior table
    "contains_known_span",  # a shorter known span lies inside this one
    "context_score",  # inner product of the window's mean vector and the entity vector
    "context_log_softmax",  # ... over the span's candidates
    "has_qid",  # the entity has a Wikidata id
    "log_qid_number",  # log of its QID number (older items are the better-known ones)
    "log_surface_occurrences",  # how often the surface occurs in the counted texts, linked or not
    "link_rate",  # ... and the share of those occurrences that are links (low for a common word)
)


@dataclass(frozen=True)
class SpanFacts:
    """What the linker knows about each of `N` candidate spans (arrays of length N, or `[N, C]`)."""

    mention_scores: np.ndarray
    words: np.ndarray
    capitalized: np.ndarray
    known: np.ndarray  # the span's text is in the prior table
    inside_known: np.ndarray
    contains_known: np.ndarray
    context_scores: np.ndarray  # [N, C] window vector . candidate entity vector


@dataclass(frozen=True)
class EntityFacts:
    """Per catalogue row: whether it has text, and its QID number (0 = none)."""

    has_text: np.ndarray
    qid_number: np.ndarray

    @classmethod
    def of(cls, catalogue) -> EntityFacts:
        qids = catalogue.table.column("qid").to_pylist()
        numbers = np.array([int(q[1:]) if q and q[1:].isdigit() else 0 for q in qids], dtype=np.int64)
        return cls(catalogue.has_text(np.arange(len(catalogue))), numbers)


@dataclass(frozen=True)
class FusedCandidates:
    """Per span, the union of dense and prior candidates (padded with -1), and what the table says."""

    rows: np.ndarray  # [N, C] int64 entity rows, -1 = padding
    dense_scores: np.ndarray  # [N, C] float32; rows the search did not return are scored by the caller
    in_dense: np.ndarray  # [N, C] bool: returned by the dense search
    counts: np.ndarray  # [N, C] mention counts of (surface, row), leave-one-out applied
    surface_totals: np.ndarray  # [N] mention counts of the surface, leave-one-out applied
    surface_occurrences: np.ndarray  # [N] occurrences of the surface in the counted texts, leave-one-out
    surface_entities: np.ndarray  # [N] entities recorded for the surface
    is_title: np.ndarray  # [N, C] bool
    is_alias: np.ndarray  # [N, C] bool
    prior_top_1: np.ndarray  # [N, C] bool
    entity_discount: np.ndarray  # [N, C] this text's own counts of the row (subtracted from popularity)


def fuse_candidates(
    dense_rows: np.ndarray,
    dense_scores: np.ndarray,
    positions: np.ndarray,
    keys: np.ndarray,
    priors: PriorTable,
    top: int,
    own: Sequence[MentionCounts | None] | None = None,
) -> FusedCandidates:
    """Union of each span's dense rows and its surface's `top` prior rows.

    Args:
        dense_rows / dense_scores: `[N, k]` search results (-1 rows where a span was not searched).
        positions: `[N]` surface positions in `priors` (-1: surface unknown).
        keys: `[N]` surface keys (for leave-one-out).
        own: per span, the counts its own text contributed to `priors` (training only): they are
            subtracted, and pairs only that text recorded dropped, so the head never learns to trust
            counts that include its own example (`positions` should be `priors.left_out_positions`).
    """
    n, k = dense_rows.shape
    width = k + top
    rows = np.full((n, width), -1, dtype=np.int64)
    scores = np.full((n, width), np.nan, dtype=np.float32)
    counts = np.zeros((n, width), dtype=np.float32)
    title = np.zeros((n, width), dtype=bool)
    alias = np.zeros((n, width), dtype=bool)
    first = np.zeros((n, width), dtype=bool)
    discount = np.zeros((n, width), dtype=np.float32)
    totals = np.zeros(n, dtype=np.float32)
    occurrences = np.zeros(n, dtype=np.float32)
    entities = np.zeros(n, dtype=np.float32)
    for s in range(n):
        dense = [int(r) for r in dense_rows[s] if r >= 0]
        column = {r: c for c, r in enumerate(dense)}
        rows[s, : len(dense)] = dense
        scores[s, : len(dense)] = dense_scores[s, : len(dense)]
        mine = own[s] if own is not None else None
        if positions[s] >= 0:
            found = priors.candidates(int(positions[s]))
            totals[s] = float(priors.surface_totals[positions[s]])
            occurrences[s] = float(priors.surface_occurrences[positions[s]])
            if mine is not None:
                key = int(keys[s])
                found = found.left_out(key, mine)
                totals[s] -= mine.links.get(key, 0)
                occurrences[s] -= mine.occurrences.get(key, 0)
            entities[s] = len(found.rows)
            for row in found.rows[:top].tolist() if top else []:
                if row not in column and len(column) < width:
                    column[row] = len(column)
                    rows[s, column[row]] = row
            for j, row in enumerate(found.rows.tolist()):
                c = column.get(row)
                if c is None:
                    continue
                counts[s, c] = found.counts[j]
                title[s, c], alias[s, c] = found.is_title[j], found.is_alias[j]
                first[s, c] = j == 0
        if mine is not None and mine.pairs:
            for (_key, row), taken in mine.pairs.items():
                c = column.get(row)
                if c is not None:
                    discount[s, c] += taken
    in_dense = ~np.isnan(scores)
    return FusedCandidates(
        rows,
        scores,
        in_dense,
        counts,
        totals,
        np.maximum(occurrences, 0.0),
        entities,
        title,
        alias,
        first,
        discount,
    )


def nesting(
    groups: np.ndarray, first: np.ndarray, last: np.ndarray, known: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per span: is it strictly inside a known span of its group (window), does it strictly contain one."""
    same = groups[:, None] == groups[None, :]
    covers = (first[None, :] <= first[:, None]) & (last[:, None] <= last[None, :])  # [a, b]: b covers a
    strict = covers & ((first[None, :] != first[:, None]) | (last[None, :] != last[:, None])) & same
    inside = (strict & known[None, :]).any(axis=1)
    contains = (strict.T & known[None, :]).any(axis=1)
    return inside, contains


def candidate_features(
    fused: FusedCandidates, spans: SpanFacts, entities: EntityFacts, priors: PriorTable
) -> np.ndarray:
    """`[N, C, len(FEATURES)]` float32 features of every fused candidate (padding rows are zeros)."""
    rows = fused.rows
    valid = rows >= 0
    n, c = rows.shape
    dense = np.where(valid & np.isfinite(fused.dense_scores), fused.dense_scores, 0.0).astype(np.float32)
    masked = np.where(valid, dense, -np.inf)
    log_softmax = masked - _logsumexp(masked)[:, None]
    in_dense = fused.in_dense & valid
    safe_rows = np.where(valid, rows, 0)
    totals = np.maximum(fused.surface_totals, 0.0)[:, None]
    counts = np.maximum(fused.counts, 0.0)
    prior = np.where(totals > 0, counts / np.maximum(totals, 1.0), 0.0)
    popularity = np.maximum(priors.entity_counts[safe_rows] - fused.entity_discount, 0.0)
    context = np.where(valid & np.isfinite(spans.context_scores), spans.context_scores, 0.0)
    context_masked = np.where(valid, context, -np.inf)
    context_log_softmax = context_masked - _logsumexp(context_masked)[:, None]
    qid_number = entities.qid_number[safe_rows]
    # Links over occurrences, one unseen occurrence added (a surface seen once, as a link, is not yet
    # always one); anchor counts (links without their texts) can exceed the occurrences.
    occurrences = fused.surface_occurrences
    link_rate = np.where(occurrences > 0, np.minimum(fused.surface_totals / (occurrences + 1.0), 1.0), 0.0)
    per_span = lambda x: np.broadcast_to(np.asarray(x)[:, None], (n, c))  # noqa: E731
    columns = [
        per_span(spans.mention_scores),
        dense,
        np.where(valid, log_softmax, 0.0),
        in_dense,
        in_dense & (np.arange(c)[None, :] == 0),
        np.log(prior + 1e-3),
        counts > 0,
        np.broadcast_to(np.log1p(totals), (n, c)),
        fused.is_title,
        fused.is_alias,
        per_span(spans.known),
        np.log1p(popularity),
        entities.has_text[safe_rows],
        per_span(spans.words),
        per_span(spans.capitalized),
        fused.prior_top_1,
        per_span(np.log1p(fused.surface_entities)),
        per_span(spans.inside_known),
        per_span(spans.contains_known),
        context,
        np.where(valid, context_log_softmax, 0.0),
        qid_number > 0,
        np.log1p(qid_number),
        per_span(np.log1p(fused.surface_occurrences)),
        per_span(link_rate),
    ]
    features = np.stack([np.asarray(x, dtype=np.float32) for x in columns], axis=-1)
    return np.where(valid[..., None], features, 0.0).astype(np.float32)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = np.max(x, axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.sum(np.exp(x - top[:, None]), axis=1) + 1e-30)


@dataclass
class FusionConfig:
    """The head's shape, its features (names of `FEATURES`: a head fitted on fewer keeps working as
    features are added), their scaling and the link threshold it was tuned with."""

    features: list[str] = field(default_factory=lambda: list(FEATURES))
    hidden_size: int = 32
    prior_candidates: int = 10  # prior rows added to each span's dense top-k
    threshold: float = math.log(0.5)  # minimum fused log-probability of a link
    # Dense-search the mention head's spans whose surface the prior table does not know; False where dev
    # linking scored no better with those searches (`elcore.hybrid.tune_on_dev`).
    search_unknown_surfaces: bool = True
    # Keep spans that begin or end with punctuation ("Egypt." beside "Egypt", the same surface): heads
    # fitted before this setting saw them; new fits drop them, so a span is not "inside a known span"
    # merely because its sentence stop follows it.
    edge_punctuation_spans: bool = True
    feature_mean: list[float] = field(default_factory=lambda: [0.0] * len(FEATURES))
    feature_std: list[float] = field(default_factory=lambda: [1.0] * len(FEATURES))
    training: dict = field(default_factory=dict)  # what it was trained on (counts, epochs)


def for_new_fit(config: FusionConfig) -> FusionConfig:
    """`config` with the span conventions a head fitted by this elq uses (older heads keep theirs)."""
    return dataclasses.replace(config, edge_punctuation_spans=False)


class FusionHead(nn.Module):
    """MLP over candidate features -> logit of "this span links to this entity"."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        self.columns = torch.tensor([FEATURES.index(name) for name in config.features])
        width = len(config.features)
        self.net = nn.Sequential(
            nn.Linear(width, config.hidden_size), nn.ReLU(), nn.Linear(config.hidden_size, 1)
        )
        self.register_buffer("mean", torch.tensor(config.feature_mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(config.feature_std, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for `[..., len(FEATURES)]` features (the head reads its own columns)."""
        return self.net((features[..., self.columns] - self.mean) / self.std).squeeze(-1)

    @torch.inference_mode()
    def log_probs(self, features: np.ndarray) -> np.ndarray:
        """`log sigmoid(logit)` for features of any leading shape."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        return torch.nn.functional.logsigmoid(self(x)).numpy()

    def save(self, url: str) -> None:
        fs.makedirs(url)
        fs.write_json_atomic(fs.join(url, "config.json"), dataclasses.asdict(self.config))
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        fs.write_bytes_atomic(fs.join(url, "model.safetensors"), save_safetensors(state))

    @classmethod
    def load(cls, url: str) -> FusionHead:
        config_url = fs.join(url, "config.json")
        if not fs.exists(config_url):
            raise ModelNotFoundError(f"no fusion head at {url} (config.json missing)")
        config = FusionConfig(**fs.read_json(config_url))
        unknown = [name for name in config.features if name not in FEATURES]
        if unknown:
            raise ConfigError(
                f"the fusion head at {url} was fitted on features {unknown} that this elq does not compute "
                f"({list(FEATURES)}): refit it (`elq build-default` for the embedded default, `elq train "
                "--recipe hybrid` or elcore.hybrid.fit_hybrid for your own), or link with --no-use-priors"
            )
        head = cls(config)
        head.load_state_dict(load_safetensors(fs.read_bytes(fs.join(url, "model.safetensors"))), strict=True)
        return head.eval()


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    config: FusionConfig | None = None,
    epochs: int = 30,
    batch_size: int = 512,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> FusionHead:
    """Fit a head with binary cross-entropy on `[n, len(FEATURES)]` features and 0/1 labels (one row per
    candidate); it reads the columns `config.features` names."""
    config = dataclasses.replace(config or FusionConfig())
    used = features[:, [FEATURES.index(name) for name in config.features]]
    mean = used.mean(axis=0)
    std = used.std(axis=0)
    config.feature_mean = mean.astype(float).tolist()
    config.feature_std = np.where(std > 1e-6, std, 1.0).astype(float).tolist()
    torch.manual_seed(seed)
    head = FusionHead(config)
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=1e-4)
    x = torch.from_numpy(features.astype(np.float32))
    y = torch.from_numpy(labels.astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for lo in range(0, len(x), batch_size):
            idx = order[lo : lo + batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(head(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    config.training = {"rows": int(len(x)), "positives": int(labels.sum()), "epochs": epochs}
    return head.eval()
