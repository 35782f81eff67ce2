"""One-pass linking: `Linker` = ElqModel + EntityCatalogue + EntityIndex.

Per batch of windows: encode once; score every span in the band; keep the top `top_k_mentions`
spans whose log-sigmoid mention score clears the mention threshold; retrieve `top_k_entities`
entities for all spans of the batch in one search; joint score = log-sigmoid(mention) +
log-softmax over the retrieved entities; then per text: merge spans seen in several windows by best
score, keep those whose joint score clears `threshold`, and resolve overlaps greedily.

    >>> linker = Linker.from_pretrained("~/.cache/elq/default-linker")
    >>> linker.link(["who is the president of france?"])[0][0].title
    'President of France'
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import fs, settings
from .catalogue import EntityCatalogue
from .encoding import catalogue_vectors
from .errors import IndexMismatchError, ModelNotFoundError
from .index import EntityIndex, FaissIndex, IndexSpec, load_index
from .model import ElqConfig, ElqModel
from .spans import select_spans, span_mask, span_means, span_scores, top_spans
from .text import TokenizedText, Window, char_span, collate_windows, make_windows, tokenize

log = logging.getLogger(__name__)

CATALOGUE_FILE = "catalogue.parquet"
INDEX_DIR = "index"


@dataclass(frozen=True)
class EntityCandidate:
    """One retrieved entity for a span."""

    entity_row: int
    entity_id: str
    qid: str | None
    title: str
    entity_score: float
    score: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Link:
    """A linked mention. Offsets are characters of the input text, end exclusive.

    `score` is the joint score, `mention_score` the log-sigmoid mention score, `entity_score` the
    inner product of mention and entity vectors; `candidates` holds the retrieved alternatives
    (best first) when asked for.
    """

    start: int
    end: int
    mention: str
    entity_row: int
    entity_id: str
    qid: str | None
    title: str
    score: float
    mention_score: float
    entity_score: float
    candidates: tuple[EntityCandidate, ...] = ()
    window: int = 0  # which window of the text (0-based, in text order) gave the best score

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if not self.candidates:
            out.pop("candidates")
        return out


@dataclass(frozen=True)
class _SpanHit:
    """A scored span before catalogue look-up: character offsets plus retrieved rows and scores."""

    text_index: int
    start: int
    end: int
    mention_score: float
    rows: np.ndarray
    entity_scores: np.ndarray
    joint_scores: np.ndarray
    window: int

    @property
    def score(self) -> float:
        return float(self.joint_scores[0])


class Linker:
    """Links mentions in texts to catalogue entities in one encoder pass per window.

    Args:
        model: the ELQ bi-encoder; its config holds the inference settings.
        catalogue: entities; row number = index id.
        index: inner-product index over the catalogue's entity vectors.
        batch_size: windows per encoder call.
        num_candidates: alternatives attached to each link (0 = none).
    """

    def __init__(
        self,
        model: ElqModel,
        catalogue: EntityCatalogue,
        index: EntityIndex,
        batch_size: int = 32,
        num_candidates: int = 0,
        device: str | None = None,
    ) -> None:
        if index.ntotal != len(catalogue):
            raise IndexMismatchError(
                f"index holds {index.ntotal} vectors but the catalogue has {len(catalogue)} entities"
            )
        if index.dim != model.config.hidden_size:
            raise IndexMismatchError(f"index dim {index.dim} != model vector dim {model.config.hidden_size}")
        self.model = model.to(device or settings.device()).eval()
        self.catalogue = catalogue
        self.index = index
        self.batch_size = batch_size
        self.num_candidates = num_candidates

    @property
    def config(self) -> ElqConfig:
        return self.model.config

    # ----------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(
        cls,
        model_dir: str,
        catalogue: str | EntityCatalogue | None = None,
        index: str | EntityIndex | None = None,
        batch_size: int = 32,
        num_candidates: int = 0,
        device: str | None = None,
        **overrides,
    ) -> Linker:
        """Load a linker directory (model + `catalogue.parquet` + `index/`), or a bare model dir
        with a catalogue (the entity vectors are then encoded, or read from the cache, and an exact
        index is built). `overrides` replace inference settings of the model config
        (threshold, top_k_mentions, top_k_entities, max_context_length, context_stride, ...)."""
        model = ElqModel.from_pretrained(model_dir)
        if overrides:
            model.config = model.config.replace(**overrides)
        if catalogue is None:
            catalogue = fs.join(model_dir, CATALOGUE_FILE)
            if not fs.exists(catalogue):
                raise ModelNotFoundError(f"{model_dir} holds no {CATALOGUE_FILE}: pass a catalogue")
        if isinstance(catalogue, str):
            catalogue = EntityCatalogue.load(catalogue)
        if index is None and fs.exists(fs.join(model_dir, INDEX_DIR)):
            index = fs.join(model_dir, INDEX_DIR)
        if isinstance(index, str):
            index = load_index(index)
        if index is None:
            index = FaissIndex.build(catalogue_vectors(model, catalogue), IndexSpec())
        return cls(
            model, catalogue, index, batch_size=batch_size, num_candidates=num_candidates, device=device
        )

    def save_pretrained(self, linker_dir: str) -> None:
        """Write the model, the catalogue and the index into one directory."""
        self.model.save_pretrained(linker_dir)
        self.catalogue.save(fs.join(linker_dir, CATALOGUE_FILE))
        self.index.save(fs.join(linker_dir, INDEX_DIR))

    # ----------------------------------------------------------------- linking
    def link(self, texts: Sequence[str]) -> list[list[Link]]:
        """Links of each text, sorted by start; `config.threshold` applies."""
        hits = self._span_hits(texts, self.config.effective_mention_threshold)
        resolved = [select_spans(h, self.config.threshold) for h in hits]
        return self._to_links(texts, resolved)

    def link_candidates(self, texts: Sequence[str], mention_threshold: float = -math.inf) -> list[list[Link]]:
        """Every scored span of each text (merged across windows), before the joint threshold and
        overlap resolution; `resolve` turns them into links at any threshold (threshold sweeps)."""
        hits = self._span_hits(texts, mention_threshold)
        return self._to_links(texts, hits)

    @staticmethod
    def resolve(candidates: Sequence[Link], threshold: float) -> list[Link]:
        """Keep candidates whose joint score clears `threshold`; greedy non-overlap by score."""
        return select_spans(candidates, threshold)

    @torch.inference_mode()
    def _span_hits(self, texts: Sequence[str], mention_threshold: float) -> list[list[_SpanHit]]:
        """Scored spans per text, one per distinct character span (best over windows)."""
        config = self.config
        docs = tokenize(self.model.tokenizer, texts)
        windows = make_windows(docs, config.max_context_length, config.context_stride)
        windows.sort(key=lambda w: w.num_tokens, reverse=True)
        best: list[dict[tuple[int, int], _SpanHit]] = [{} for _ in texts]
        for lo in range(0, len(windows), self.batch_size):
            for hit in self._score_windows(docs, windows[lo : lo + self.batch_size], mention_threshold):
                seen = best[hit.text_index].get((hit.start, hit.end))
                if seen is None or hit.score > seen.score:
                    best[hit.text_index][(hit.start, hit.end)] = hit
        return [sorted(b.values(), key=lambda h: (h.start, h.end)) for b in best]

    def _score_windows(
        self, docs: list[TokenizedText], windows: list[Window], mention_threshold: float
    ) -> list[_SpanHit]:
        config, device = self.config, self.model.device
        batch = collate_windows(self.model.tokenizer, docs, windows)
        hidden, (start, end, inside) = self.model.encode_context(
            batch.input_ids.to(device), batch.attention_mask.to(device)
        )
        valid = span_mask(
            batch.content_mask.to(device),
            config.max_mention_length,
            batch.word_start_mask.to(device) if config.word_boundaries else None,
            batch.word_end_mask.to(device) if config.word_boundaries else None,
        )
        logits = span_scores(start, end, inside, valid)
        # log-sigmoid is monotonic, so the top-k by logit are the top-k by log-sigmoid.
        b_idx, first, last, span_logits = top_spans(logits, config.top_k_mentions)
        mention_scores = F.logsigmoid(span_logits.float())
        keep = mention_scores > mention_threshold
        b_idx, first, last, mention_scores = b_idx[keep], first[keep], last[keep], mention_scores[keep]
        if len(b_idx) == 0:
            return []
        vectors = span_means(hidden, b_idx, first, last).float().cpu().numpy()
        found = self.index.search(vectors, config.top_k_entities)
        entity_scores = torch.from_numpy(found.scores)
        joint = F.log_softmax(entity_scores, dim=1) + mention_scores.cpu().unsqueeze(1)
        joint = joint.nan_to_num(nan=-math.inf)  # rows padded with -inf when the index is tiny
        joint, order = joint.sort(dim=1, descending=True)
        rows = np.take_along_axis(found.ids, order.numpy(), axis=1)
        entity_scores = np.take_along_axis(found.scores, order.numpy(), axis=1)
        hits = []
        for n, (b, i, j) in enumerate(zip(b_idx.tolist(), first.tolist(), last.tolist(), strict=True)):
            window = batch.windows[b]
            s, e = char_span(docs[window.text_index], window, i, j)
            hits.append(
                _SpanHit(
                    window.text_index,
                    s,
                    e,
                    float(mention_scores[n]),
                    rows[n],
                    entity_scores[n],
                    joint[n].numpy(),
                    window.number,
                )
            )
        return hits

    def _to_links(self, texts: Sequence[str], hits: list[list[_SpanHit]]) -> list[list[Link]]:
        """Attach catalogue fields (one batched look-up for all rows needed)."""
        width = max(1, self.num_candidates)
        needed = sorted({int(r) for per_text in hits for h in per_text for r in h.rows[:width] if r >= 0})
        entities = dict(zip(needed, self.catalogue.rows(needed), strict=True))
        out = []
        for text, per_text in zip(texts, hits, strict=True):
            links = []
            for h in per_text:
                top = entities[int(h.rows[0])]
                candidates = tuple(
                    EntityCandidate(
                        int(r),
                        entities[int(r)]["id"],
                        entities[int(r)]["qid"],
                        entities[int(r)]["title"],
                        float(es),
                        float(js),
                    )
                    for r, es, js in zip(
                        h.rows[: self.num_candidates],
                        h.entity_scores[: self.num_candidates],
                        h.joint_scores[: self.num_candidates],
                        strict=True,
                    )
                    if r >= 0
                )
                links.append(
                    Link(
                        h.start,
                        h.end,
                        text[h.start : h.end],
                        int(h.rows[0]),
                        top["id"],
                        top["qid"],
                        top["title"],
                        h.score,
                        h.mention_score,
                        float(h.entity_scores[0]),
                        candidates,
                        h.window,
                    )
                )
            out.append(links)
        return out


def default_linker_dir() -> str:
    """The embedded default linker built by `elq build-default` (see the README)."""
    return settings.default_model_dir()


def require_default_linker() -> str:
    path = default_linker_dir()
    if not os.path.exists(os.path.join(path, "elq_config.json")):
        raise ModelNotFoundError(
            f"no linker at {path}: build the embedded default first with `elq build-default` "
            "(about 10 minutes on 2 cores), or pass --model"
        )
    return path
