"""Hard negatives from the entity index: the wrong entities a mention's current vector scores best.

In-batch negatives never show the model the catalogue's near-duplicates (same-title articles);
the index does. The loop mines them at each epoch start with the epoch's weights.

    >>> windows = mine_hard_negatives(model, windows, index, k=10)
    >>> windows[0].negative_rows      # per gold span of the window, up to k entity rows
"""

from __future__ import annotations

import dataclasses

import torch
from tqdm.auto import tqdm

from .index import EntityIndex
from .model import ElqModel
from .spans import span_means
from .text import Window, collate_windows
from .train_step import TrainingWindow


@torch.inference_mode()
def mine_hard_negatives(
    model: ElqModel,
    windows: list[TrainingWindow],
    index: EntityIndex,
    k: int,
    batch_size: int = 64,
    progress: bool = True,
) -> list[TrainingWindow]:
    """Attach to each gold span the `k` best-scoring wrong entities for its current mention vector.

    Only the mention's own gold entity is filtered out (per mention, not per window).
    """
    was_training = model.training
    model.eval()
    out = list(windows)
    with_gold = [i for i, w in enumerate(windows) if w.gold_rows]
    starts = range(0, len(with_gold), batch_size)
    for lo in tqdm(starts, desc="mine hard negatives", unit="batch", disable=not progress):
        chunk = [windows[i] for i in with_gold[lo : lo + batch_size]]
        batch = collate_windows(
            model.tokenizer,
            [w.doc for w in chunk],
            [Window(j, w.token_start, w.token_end) for j, w in enumerate(chunk)],
        )
        hidden, _ = model.encode_context(
            batch.input_ids.to(model.device), batch.attention_mask.to(model.device)
        )
        b = torch.tensor([j for j, w in enumerate(chunk) for _ in w.gold_first])
        first = torch.tensor([s for w in chunk for s in w.gold_first])
        last = torch.tensor([e for w in chunk for e in w.gold_last])
        found = index.search(
            span_means(hidden, b.to(hidden.device), first.to(hidden.device), last.to(hidden.device))
            .float()
            .cpu()
            .numpy(),
            k + 1,
        )
        n = 0
        for j, w in enumerate(chunk):
            negatives = []
            for gold in w.gold_rows:
                rows = [int(r) for r in found.ids[n] if r >= 0 and r != gold][:k]
                negatives.append(tuple(rows))
                n += 1
            out[with_gold[lo + j]] = dataclasses.replace(w, negative_rows=tuple(negatives))
    model.train(was_training)
    return out
