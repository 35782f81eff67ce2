import dataclasses

import torch

from elcore.data import Example, GoldMention
from elcore.train_step import (
    EncodedEntities,
    FrozenEntities,
    collate,
    compute_losses,
    prepare_windows,
    train_step,
)

EXAMPLES = [
    Example("a", "who is betty white's husband?", (GoldMention(7, 18, "Q373895"),)),
    Example("b", "paris is the capital of france", (GoldMention(0, 5, "Q90"), GoldMention(24, 30, "Q142"))),
    Example(
        "c", "where was barack obama born?", (GoldMention(10, 22, "Q76"), GoldMention(None, None, "Q30"))
    ),
    Example("d", "is paris in france?", (GoldMention(3, 8, "Q90"),)),
]


def _windows(model, catalogue):
    return prepare_windows(EXAMPLES, model.tokenizer, catalogue, model.config)


def test_gold_spans_become_band_labels(tiny_model, small_catalogue):
    windows = _windows(tiny_model, small_catalogue)
    batch = collate(windows, tiny_model.tokenizer, tiny_model.config)
    # "betty white" = wordpieces 3..4 of window 0 ([CLS] who is betty white ...).
    assert batch.span_labels[0, 3, 1] == 1.0 and batch.span_labels[0].sum() == 1
    assert batch.span_supervised.tolist() == [True, True, False, True]  # c has a null-span gold
    # Paris appears twice in the batch but is one column: never its own negative.
    assert len(batch.entity_rows) == len(set(batch.gold_rows.tolist())) == 4
    paris = [i for i, row in enumerate(batch.gold_rows) if row == small_catalogue.lookup(["Q90"])[0]]
    assert len(paris) == 2 and batch.target[paris[0]] == batch.target[paris[1]]


def test_null_span_example_is_left_out_of_the_span_loss(tiny_model, small_catalogue):
    (window,) = [w for w in _windows(tiny_model, small_catalogue) if w.example_id == "c"]
    parts = compute_losses(
        tiny_model,
        tiny_model.config,
        collate([window], tiny_model.tokenizer, tiny_model.config),
        EncodedEntities(small_catalogue),
    )
    assert parts.mention.item() == 0.0 and parts.mentions == 1


def test_hard_negatives_join_the_entity_columns(tiny_model, small_catalogue):
    windows = _windows(tiny_model, small_catalogue)
    with_negatives = [dataclasses.replace(windows[0], negative_rows=((0, 2),))]
    batch = collate(with_negatives, tiny_model.tokenizer, tiny_model.config)
    assert sorted(batch.entity_rows.tolist()) == sorted({0, 2, int(batch.gold_rows[0])})


def test_every_parameter_trains_and_loss_goes_down(tiny_model, small_catalogue):
    torch.manual_seed(0)
    batch = collate(_windows(tiny_model, small_catalogue), tiny_model.tokenizer, tiny_model.config)
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=3e-3)
    entities = EncodedEntities(small_catalogue)
    first = train_step(tiny_model, tiny_model.config, [batch], optimizer, None, entities)
    grads = {
        name for name, p in tiny_model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert "mention_head.linear.weight" in grads
    assert any(name.startswith("entity_encoder.") for name in grads)
    assert any(name.startswith("context_encoder.") for name in grads)
    for _ in range(30):
        last = train_step(tiny_model, tiny_model.config, [batch], optimizer, None, entities)
    assert last["loss"] < first["loss"] * 0.6
    assert last["entity_loss"] < first["entity_loss"] and last["mention_loss"] < first["mention_loss"]


def test_frozen_entities_use_precomputed_vectors(tiny_model, small_catalogue):
    for p in tiny_model.entity_encoder.parameters():
        p.requires_grad_(False)
    table = torch.randn(len(small_catalogue), tiny_model.config.hidden_size).numpy()
    batch = collate(_windows(tiny_model, small_catalogue), tiny_model.tokenizer, tiny_model.config)
    optimizer = torch.optim.AdamW([p for p in tiny_model.parameters() if p.requires_grad], lr=1e-3)
    stats = train_step(tiny_model, tiny_model.config, [batch, batch], optimizer, None, FrozenEntities(table))
    assert stats["mentions"] == 5
    assert all(p.grad is None for p in tiny_model.entity_encoder.parameters())
