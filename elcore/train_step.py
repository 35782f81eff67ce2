"""ELQ's training objective and one optimisation step.

Losses (summed):
- mention detection: binary cross-entropy over every valid span of a window (gold spans are 1).
  A window whose example has a gold mention without a span (or a gold span cut by the window
  edge) is left out of this loss, so an unannotated true span is never taught as a negative.
- entity linking: each gold span's mean vector is scored against the batch's entity vectors
  (the gold entities of the batch, each once, plus any hard negatives); softmax cross-entropy
  with the mention's own entity as the target. Every parameter trains, the mention head included.

    >>> windows = prepare_windows(examples, model.tokenizer, catalogue, model.config)
    >>> batch = collate(windows[:16], model.tokenizer, model.config)
    >>> stats = train_step(model, model.config, [batch], optimizer, scheduler, EncodedEntities(catalogue))
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import EntityCatalogue
from .data import Example
from .model import ElqConfig, ElqModel
from .spans import span_mask, span_means, span_scores
from .text import TokenizedText, Window, WindowBatch, collate_windows, make_windows, token_span, tokenize


@dataclass(frozen=True)
class TrainingWindow:
    """One window of a training example with its gold spans (model positions, inclusive)."""

    example_id: str
    doc: TokenizedText
    token_start: int
    token_end: int
    gold_first: tuple[int, ...]
    gold_last: tuple[int, ...]
    gold_rows: tuple[int, ...]  # catalogue row of each gold span; -1 when not in the catalogue
    span_supervised: bool
    negative_rows: tuple[tuple[int, ...], ...] = ()  # hard negatives per gold span, when mined


@dataclass
class TrainingBatch:
    windows: WindowBatch
    span_labels: torch.Tensor  # [B, L, K] float
    span_supervised: torch.Tensor  # [B] bool
    gold_batch: torch.Tensor  # [M] window of each linked gold span
    gold_first: torch.Tensor  # [M]
    gold_last: torch.Tensor  # [M]
    gold_rows: np.ndarray  # [M] catalogue rows
    entity_rows: np.ndarray  # [E] unique rows scored against every mention
    target: torch.Tensor  # [M] column of each mention's gold entity in entity_rows

    def to(self, device: torch.device | str) -> TrainingBatch:
        w = self.windows
        tensors = (w.input_ids, w.attention_mask, w.content_mask, w.word_start_mask, w.word_end_mask)
        self.windows = WindowBatch(*(t.to(device) for t in tensors), w.windows)
        for name in ("span_labels", "span_supervised", "gold_batch", "gold_first", "gold_last", "target"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def prepare_windows(
    examples: Sequence[Example], tokenizer, catalogue: EntityCatalogue, config: ElqConfig
) -> list[TrainingWindow]:
    """Tokenise and window `examples`; gold spans become token spans inside each window.

    Gold spans longer than `max_mention_length` wordpieces are not span targets.
    """
    docs = tokenize(tokenizer, [e.text for e in examples])
    rows = iter(catalogue.lookup([m.entity for e in examples for m in e.mentions]).tolist())
    rows_per_example = [[next(rows) for _ in e.mentions] for e in examples]
    out = []
    for window in make_windows(docs, config.max_context_length, config.context_stride):
        example, doc = examples[window.text_index], docs[window.text_index]
        supervised = all(m.has_span for m in example.mentions)
        first, last, gold_rows = [], [], []
        for mention, row in zip(example.mentions, rows_per_example[window.text_index], strict=True):
            if not mention.has_span:
                continue
            span = token_span(doc, window, mention.start, mention.end)
            if span is None:
                # A gold cut by the window edge: its partial span must not be taught as a negative.
                starts_inside = window.token_start <= _first_token(doc, mention.start) < window.token_end
                ends_inside = window.token_start < _first_token(doc, mention.end) <= window.token_end
                supervised &= not (starts_inside or ends_inside)
                continue
            if span[1] - span[0] >= config.max_mention_length:
                continue
            first.append(span[0])
            last.append(span[1])
            gold_rows.append(row)
        out.append(
            TrainingWindow(
                example.id,
                doc,
                window.token_start,
                window.token_end,
                tuple(first),
                tuple(last),
                tuple(gold_rows),
                supervised,
            )
        )
    return out


def collate(windows: Sequence[TrainingWindow], tokenizer, config: ElqConfig) -> TrainingBatch:
    """Pad windows into one batch; in-batch entities = unique gold rows + hard negatives.

    Each entity appears once among the columns, so the same entity twice in a batch is never a
    negative of itself.
    """
    batch = collate_windows(
        tokenizer,
        [w.doc for w in windows],
        [Window(i, w.token_start, w.token_end) for i, w in enumerate(windows)],
    )
    b, length = batch.input_ids.shape
    labels = torch.zeros((b, length, config.max_mention_length))
    gold_batch, gold_first, gold_last, gold_rows, negatives = [], [], [], [], []
    for i, w in enumerate(windows):
        for j, (s, e, row) in enumerate(zip(w.gold_first, w.gold_last, w.gold_rows, strict=True)):
            labels[i, s, e - s] = 1.0
            if row >= 0:
                gold_batch.append(i)
                gold_first.append(s)
                gold_last.append(e)
                gold_rows.append(row)
                if w.negative_rows:
                    negatives.extend(w.negative_rows[j])
    rows = np.asarray(gold_rows, dtype=np.int64)
    entity_rows = np.unique(np.concatenate([rows, np.asarray(negatives, dtype=np.int64)]))
    target = torch.from_numpy(np.searchsorted(entity_rows, rows)).long()
    return TrainingBatch(
        batch,
        labels,
        torch.tensor([w.span_supervised for w in windows]),
        torch.tensor(gold_batch, dtype=torch.long),
        torch.tensor(gold_first, dtype=torch.long),
        torch.tensor(gold_last, dtype=torch.long),
        rows,
        entity_rows,
        target,
    )


def _first_token(doc, char_start: int) -> int:
    return int(np.searchsorted(doc.char_ends, char_start, side="right"))


# --------------------------------------------------------------------------- entity vectors
class EntityVectors:
    """Where the entity side of the loss gets its vectors."""

    trainable: bool = True

    def inputs(self, model: ElqModel, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {}

    def vectors(self, rows: np.ndarray, encoded: torch.Tensor | None, device) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class EncodedEntities(EntityVectors):
    """Encode the batch's entities with the (trainable) entity encoder."""

    catalogue: EntityCatalogue
    trainable: bool = field(default=True, init=False)

    def inputs(self, model: ElqModel, rows: np.ndarray) -> dict[str, torch.Tensor]:
        tokens = model.tokenize_entities(self.catalogue.entity_inputs(rows))
        return {"entity_input_ids": tokens["input_ids"], "entity_attention_mask": tokens["attention_mask"]}

    def vectors(self, rows: np.ndarray, encoded: torch.Tensor | None, device) -> torch.Tensor:
        assert encoded is not None
        return encoded


@dataclass
class FrozenEntities(EntityVectors):
    """Pre-computed entity vectors (the entity encoder does not train)."""

    table: np.ndarray
    trainable: bool = field(default=False, init=False)

    def vectors(self, rows: np.ndarray, encoded: torch.Tensor | None, device) -> torch.Tensor:
        return torch.from_numpy(self.table[rows]).to(device)


# --------------------------------------------------------------------------- losses and the step
@dataclass
class LossParts:
    total: torch.Tensor
    mention: torch.Tensor
    entity: torch.Tensor
    entity_accuracy: float
    mentions: int

    def to_dict(self) -> dict[str, float]:
        return {
            "loss": float(self.total.detach()),
            "mention_loss": float(self.mention.detach()),
            "entity_loss": float(self.entity.detach()),
            "entity_accuracy": self.entity_accuracy,
            "mentions": self.mentions,
        }


def compute_losses(
    model: nn.Module, config: ElqConfig, batch: TrainingBatch, entities: EntityVectors
) -> LossParts:
    """ELQ's losses for one batch. `model` may be wrapped (DDP): only its `forward` is called."""
    device = batch.windows.input_ids.device
    core: ElqModel = getattr(model, "module", model)
    entity_inputs = (
        {k: v.to(device) for k, v in entities.inputs(core, batch.entity_rows).items()}
        if len(batch.entity_rows)
        else {}
    )
    hidden, (start, end, inside), encoded = model(
        batch.windows.input_ids, batch.windows.attention_mask, **entity_inputs
    )
    w = batch.windows
    valid = span_mask(
        w.content_mask,
        config.max_mention_length,
        w.word_start_mask if config.word_boundaries else None,
        w.word_end_mask if config.word_boundaries else None,
    )
    # Gold spans always count, even where word boundaries would exclude them.
    valid |= batch.span_labels.bool()
    logits = span_scores(start, end, inside, valid)
    supervised = valid & batch.span_supervised[:, None, None]
    if supervised.any():
        mention_loss = F.binary_cross_entropy_with_logits(logits[supervised], batch.span_labels[supervised])
    else:
        mention_loss = start.sum() * 0.0
    if len(batch.gold_rows):
        mention_vectors = span_means(hidden, batch.gold_batch, batch.gold_first, batch.gold_last)
        entity_vectors = entities.vectors(batch.entity_rows, encoded, device).to(mention_vectors.dtype)
        scores = mention_vectors @ entity_vectors.T
        entity_loss = F.cross_entropy(scores, batch.target)
        accuracy = float((scores.argmax(1) == batch.target).float().mean())
    else:
        entity_loss, accuracy = hidden.sum() * 0.0, 0.0
        if encoded is not None:
            entity_loss = entity_loss + encoded.sum() * 0.0
    return LossParts(mention_loss + entity_loss, mention_loss, entity_loss, accuracy, len(batch.gold_rows))


def train_step(
    model: nn.Module,
    config: ElqConfig,
    micro_batches: Sequence[TrainingBatch],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    entities: EntityVectors,
    max_grad_norm: float = 1.0,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """One optimiser step over `micro_batches` (gradient accumulation), with clipping.

    `model` may be DDP-wrapped: gradients are then synchronised once, on the last micro-batch.
    With `scaler` (fp16 on GPU) the loss is scaled and the gradients unscaled before clipping; a
    step with inf/nan gradients is skipped by the scaler.

    Returns the mean loss parts over the micro-batches and the gradient norm.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for i, batch in enumerate(micro_batches):
        device_type = batch.windows.input_ids.device.type
        # DDP: skip the gradient all-reduce on all but the last micro-batch (nanoGPT's sync toggle).
        last = i == len(micro_batches) - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with torch.autocast(
                device_type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
            ):
                parts = compute_losses(model, config, batch, entities)
            loss = parts.total / len(micro_batches)
            (scaler.scale(loss) if scaler is not None else loss).backward()
        for key, value in parts.to_dict().items():
            totals[key] = totals.get(key, 0.0) + value / len(micro_batches)
    if scaler is not None:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad], max_grad_norm
    )
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {**totals, "grad_norm": float(grad_norm)}
