"""One-pass linking: `Linker` = ElqModel + EntityCatalogue + EntityIndex.

Per batch of windows: encode once; score every span in the band; keep the top `top_k_mentions`
spans whose log-sigmoid mention score clears the mention threshold; retrieve `top_k_entities`
entities for all spans of the batch in one search; joint score = log-sigmoid(mention) +
log-softmax over the retrieved entities; then per text: merge spans seen in several windows by best
score, keep those whose joint score clears `threshold`, and resolve overlaps greedily.

With a prior table and a fusion head (`use_priors`), spans whose text the table knows are candidates
too, each span's entities are its dense top-k UNION its surface's prior entities, and the link score
is the head's log-probability over their features (`elcore.fusion`); the rest is the same.

    >>> linker = Linker.from_pretrained("~/.cache/elq/default-linker")
    >>> linker.link(["who is the president of france?"])[0][0].title
    'France'
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import fs, settings
from .candidates import BatchInputs, FusedParts, score_fused, window_context, with_alias_spans
from .catalogue import EntityCatalogue
from .encoding import catalogue_vectors
from .errors import ConfigError, IndexMismatchError, ModelNotFoundError
from .fusion import FUSION_DIR, EntityFacts, FusionConfig, FusionHead, for_new_fit
from .index import EntityIndex, IndexSpec, build_index, load_index
from .model import ElqConfig, ElqModel
from .priors import PRIORS_FILE, MentionCounts, PriorTable
from .spans import select_spans, span_mask, span_means, span_scores, top_spans
from .text import (
    TokenizedText,
    Window,
    central_span_mask,
    char_span,
    collate_windows,
    make_windows,
    tokenize,
)

log = logging.getLogger(__name__)

CATALOGUE_FILE = "catalogue.parquet"
INDEX_DIR = "index"


class UntrainedModelWarning(UserWarning):
    """A linker was built on a model whose mention head was never trained."""


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


@dataclass
class LinkTimings:
    """Where a linker's time went, summed over its calls: the encoder (context encoder and span
    scores), the index searches, fused scoring (prior look-ups, candidate vectors, the head) and the
    rest (tokenising, windows, merging); with the counts that explain them."""

    texts: int = 0
    windows: int = 0
    spans_searched: int = 0
    encoder_seconds: float = 0.0
    search_seconds: float = 0.0
    fusion_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def other_seconds(self) -> float:
        return self.total_seconds - self.encoder_seconds - self.search_seconds - self.fusion_seconds

    def to_dict(self) -> dict[str, float]:
        return {**dataclasses.asdict(self), "other_seconds": self.other_seconds}


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
    features: np.ndarray | None = None  # [C, F] fused-candidate features, aligned with rows (training)

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
        priors: the alias table; with `fusion`, spans found in it are candidates too and every span's
            dense top-k is joined by its surface's prior entities (see `elcore.fusion`).
        fusion: the learned head that scores fused candidates.
        use_priors: link with priors + head (default: when both are given); False = ELQ's dense score.
        check_fingerprints: refuse an index whose stored model / catalogue fingerprints differ from
            this model's entity encoder and this catalogue (experts may turn it off).
    """

    def __init__(
        self,
        model: ElqModel,
        catalogue: EntityCatalogue,
        index: EntityIndex,
        batch_size: int = 32,
        num_candidates: int = 0,
        device: str | None = None,
        priors: PriorTable | None = None,
        fusion: FusionHead | None = None,
        use_priors: bool | None = None,
        check_fingerprints: bool = True,
    ) -> None:
        if index.ntotal != len(catalogue):
            raise IndexMismatchError(
                f"index holds {index.ntotal} vectors but the catalogue has {len(catalogue)} entities"
            )
        if index.dim != model.config.hidden_size:
            raise IndexMismatchError(f"index dim {index.dim} != model vector dim {model.config.hidden_size}")
        if check_fingerprints:
            check_index_fingerprints(index, model, catalogue)
        if not model.head_trained:
            warnings.warn(
                "this model comes straight from a base checkpoint: its mention head is untrained, so its "
                "links are noise; train it first (elq train, or elcore.training.train) or load a trained "
                "linker with Linker.from_pretrained",
                UntrainedModelWarning,
                stacklevel=2,
            )
        self.model = model.to(device or settings.device()).eval()
        self.catalogue = catalogue
        self.index = index
        self.batch_size = batch_size
        self.num_candidates = num_candidates
        if priors is not None:
            priors.check_catalogue(catalogue)
        self.priors, self.fusion = priors, fusion
        self.use_priors = (priors is not None and fusion is not None) if use_priors is None else use_priors
        if self.use_priors and priors is None:
            raise ConfigError("use_priors needs a prior table (priors.parquet in the linker directory)")
        self._entity_facts: EntityFacts | None = None
        self.timings = LinkTimings()

    @property
    def config(self) -> ElqConfig:
        return self.model.config

    @property
    def fused(self) -> bool:
        """True when links are scored by the fusion head over dense + prior candidates."""
        return self.use_priors and self.fusion is not None

    @property
    def threshold(self) -> float:
        """The link threshold of the active score: the head's tuned one when fused, else ELQ's."""
        return self.fusion.config.threshold if self.fused else self.config.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if self.fused:
            self.fusion.config.threshold = float(value)
        else:
            self.model.config = self.config.replace(threshold=float(value))

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
        use_priors: bool | None = None,
        check_fingerprints: bool = True,
        **overrides,
    ) -> Linker:
        """Load a linker directory (model + `catalogue.parquet` + `index/` [+ `priors.parquet` +
        `fusion/`]), or a bare model dir with a catalogue (the entity vectors are then encoded, or
        read from the cache, and an exact index is built). `overrides` replace inference settings
        of the model config (threshold, top_k_mentions, top_k_entities, max_context_length,
        context_stride, ...); `threshold` applies to the active score (fused or dense).
        `use_priors=False` links with ELQ's dense score even when priors are saved."""
        model = ElqModel.from_pretrained(model_dir)
        threshold = overrides.pop("threshold", None)
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
            index = build_index(
                catalogue_vectors(model, catalogue), IndexSpec(), index_metadata(model, catalogue)
            )
        priors = fusion = None
        if use_priors is not False and fs.exists(fs.join(model_dir, PRIORS_FILE)):
            priors = PriorTable.load(fs.join(model_dir, PRIORS_FILE))
            if fs.exists(fs.join(model_dir, FUSION_DIR)):
                fusion = FusionHead.load(fs.join(model_dir, FUSION_DIR))
        linker = cls(
            model,
            catalogue,
            index,
            batch_size=batch_size,
            num_candidates=num_candidates,
            device=device,
            priors=priors,
            fusion=fusion,
            use_priors=use_priors,
            check_fingerprints=check_fingerprints,
        )
        if threshold is not None:
            linker.threshold = threshold
        return linker

    def save_pretrained(self, linker_dir: str) -> None:
        """Write the model, the catalogue, the index, and the priors and head when present."""
        self.model.save_pretrained(linker_dir)
        self.catalogue.save(fs.join(linker_dir, CATALOGUE_FILE))
        self.index.save(fs.join(linker_dir, INDEX_DIR))
        if self.priors is not None:
            self.priors.save(fs.join(linker_dir, PRIORS_FILE))
        if self.fusion is not None:
            self.fusion.save(fs.join(linker_dir, FUSION_DIR))

    # ----------------------------------------------------------------- linking
    def link(self, texts: Sequence[str]) -> list[list[Link]]:
        """Links of each text, sorted by start; `self.threshold` applies."""
        mention_threshold = self.config.effective_mention_threshold
        if not self.fused:  # ELQ's joint score never exceeds the mention score: nothing below can link
            mention_threshold = max(mention_threshold, self.threshold)
        hits = self._span_hits(texts, mention_threshold)
        resolved = [select_spans(h, self.threshold) for h in hits]
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
    def _span_hits(
        self,
        texts: Sequence[str],
        mention_threshold: float,
        own_counts: Sequence[MentionCounts] | None = None,
        with_features: bool = False,
    ) -> list[list[_SpanHit]]:
        """Scored spans per text, one per distinct character span (best over windows).

        `own_counts` (training the fusion head): what each text contributed to the prior table, taken
        out of its features; `with_features` keeps each hit's candidate features.
        """
        started = time.perf_counter()
        config = self.config
        docs = tokenize(self.model.tokenizer, texts)
        windows = make_windows(docs, config.max_context_length, config.context_stride)
        windows.sort(key=lambda w: w.num_tokens, reverse=True)
        best: list[dict[tuple[int, int], _SpanHit]] = [{} for _ in texts]
        for lo in range(0, len(windows), self.batch_size):
            chunk = windows[lo : lo + self.batch_size]
            for hit in self._score_windows(texts, docs, chunk, mention_threshold, own_counts, with_features):
                seen = best[hit.text_index].get((hit.start, hit.end))
                if seen is None or hit.score > seen.score:
                    best[hit.text_index][(hit.start, hit.end)] = hit
        self.timings.texts += len(texts)
        self.timings.windows += len(windows)
        self.timings.total_seconds += time.perf_counter() - started
        return [sorted(b.values(), key=lambda h: (h.start, h.end)) for b in best]

    def _score_windows(
        self,
        texts: Sequence[str],
        docs: list[TokenizedText],
        windows: list[Window],
        mention_threshold: float,
        own_counts: Sequence[MentionCounts] | None = None,
        with_features: bool = False,
    ) -> list[_SpanHit]:
        config, device = self.config, self.model.device
        clock = time.perf_counter()
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
        if config.central_spans:
            valid &= central_span_mask(windows, *valid.shape[1:]).to(device)
        logits = span_scores(start, end, inside, valid)
        # log-sigmoid is monotonic, so the top-k by logit are the top-k by log-sigmoid.
        b_idx, first, last, span_logits = top_spans(logits, config.top_k_mentions)
        keep = F.logsigmoid(span_logits.float()) > mention_threshold
        b_idx, first, last = b_idx[keep].cpu(), first[keep].cpu(), last[keep].cpu()
        self.timings.encoder_seconds += time.perf_counter() - clock
        searched = torch.ones(len(b_idx), dtype=torch.bool)
        spans = None
        if self.use_priors:
            # While a head's rows are collected (no head yet), spans are proposed as a new fit's are.
            fitted = self.fusion.config if self.fusion is not None else for_new_fit(FusionConfig())
            spans = with_alias_spans(
                self.priors,
                texts,
                docs,
                batch,
                valid,
                b_idx,
                first,
                last,
                search_unknown=fitted.search_unknown_surfaces,
                edge_punctuation=fitted.edge_punctuation_spans,
                own=own_counts,
            )
            b_idx, first, last, searched = spans.batch_index, spans.first, spans.last, spans.searched
        if len(b_idx) == 0:
            return []
        mention_scores = F.logsigmoid(logits[b_idx, first, last - first].float()).cpu()
        vectors = (
            span_means(hidden, b_idx.to(device), first.to(device), last.to(device)).float().cpu().numpy()
        )
        k = config.top_k_entities
        rows = np.full((len(b_idx), k), -1, dtype=np.int64)
        entity_scores = np.full((len(b_idx), k), -np.inf, dtype=np.float32)
        if searched.any():
            clock = time.perf_counter()
            found = self.index.search(vectors[searched.numpy()], k)
            rows[searched.numpy()], entity_scores[searched.numpy()] = found.ids, found.scores
            self.timings.search_seconds += time.perf_counter() - clock
            self.timings.spans_searched += int(searched.sum())
        features = None
        if spans is not None:
            clock = time.perf_counter()
            own = (
                None
                if own_counts is None
                else [own_counts[batch.windows[b].text_index] for b in b_idx.tolist()]
            )
            inputs = BatchInputs(
                texts,
                batch,
                vectors,
                window_context(hidden, batch.content_mask, b_idx),
                rows,
                entity_scores,
                mention_scores.numpy(),
                own,
            )
            parts = FusedParts(self.priors, self.fusion, self.index, self.entity_facts)
            rows, entity_scores, joint, features = score_fused(parts, spans, inputs)
            self.timings.fusion_seconds += time.perf_counter() - clock
        else:
            joint = (
                F.log_softmax(torch.from_numpy(entity_scores), dim=1) + mention_scores.unsqueeze(1)
            ).numpy()
        joint = np.nan_to_num(joint, nan=-np.inf)  # rows padded with -inf when the index is tiny
        order = np.argsort(-joint, axis=1, kind="stable")
        joint = np.take_along_axis(joint, order, axis=1)
        rows = np.take_along_axis(rows, order, axis=1)
        entity_scores = np.take_along_axis(entity_scores, order, axis=1)
        if features is not None:
            features = np.take_along_axis(features, order[..., None], axis=1)
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
                    joint[n],
                    window.number,
                    features[n] if with_features and features is not None else None,
                )
            )
        return hits

    @property
    def entity_facts(self) -> EntityFacts:
        """Per-entity features of the fusion head (computed once)."""
        if self._entity_facts is None:
            self._entity_facts = EntityFacts.of(self.catalogue)
        return self._entity_facts

    def _to_links(self, texts: Sequence[str], hits: list[list[_SpanHit]]) -> list[list[Link]]:
        """Attach catalogue fields (one batched look-up for all rows needed)."""
        width = max(1, self.num_candidates)
        needed = sorted({int(r) for per_text in hits for h in per_text for r in h.rows[:width] if r >= 0})
        entities = dict(zip(needed, self.catalogue.rows(needed), strict=True))
        out = []
        for text, per_text in zip(texts, hits, strict=True):
            links = []
            starts = {h.start for h in per_text}
            for h in per_text:
                top = entities[int(h.rows[0])]
                end = h.end if h.end in starts else name_end(text, h.start, h.end, top["title"])
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
                        end,
                        text[h.start : end],
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


def name_end(text: str, start: int, end: int, title: str) -> int:
    """`end`, or one further where the span stops before the stop of an abbreviation that ends the
    entity's name ("Martin Luther King Jr" + "." for "Martin Luther King Jr.", "Washington, D.C" + "."):
    the wordpiece spans treat that stop as punctuation, the name includes it."""
    if text[end : end + 1] != "." or not title.endswith(".") or text[start:end].endswith("."):
        return end
    last_word = text[start:end].rsplit(None, 1)[-1] if text[start:end].strip() else ""
    return end + 1 if title.rsplit(None, 1)[-1].lower() == last_word.lower() + "." else end


def index_metadata(model: ElqModel, catalogue: EntityCatalogue) -> dict[str, str]:
    """What an index built from `model`'s vectors of `catalogue` records (and `Linker` checks)."""
    return {"model_fingerprint": model.entity_fingerprint(), "catalogue_fingerprint": catalogue.fingerprint}


def check_index_fingerprints(index: EntityIndex, model: ElqModel, catalogue: EntityCatalogue) -> None:
    """Raise `IndexMismatchError` when the index says it was built for another model or catalogue.

    An index without fingerprints (built from bare vectors) is accepted as it is.
    """
    stored_model = index.metadata.get("model_fingerprint")
    stored_catalogue = index.metadata.get("catalogue_fingerprint")
    problems = []
    if stored_catalogue and stored_catalogue != catalogue.fingerprint:
        problems.append(f"catalogue {stored_catalogue} (this catalogue is {catalogue.fingerprint})")
    if stored_model and stored_model != model.entity_fingerprint():
        problems.append(f"entity encoder {stored_model} (this model's is {model.entity_fingerprint()})")
    if problems:
        raise IndexMismatchError(
            "the entity index was built for another " + " and ".join(problems) + "; rebuild it with "
            "`elq encode-entities --model MODEL --catalogue CATALOGUE --output DIR` (or embed-entities + "
            "build-index), or pass check_fingerprints=False if you know the vectors match"
        )


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
