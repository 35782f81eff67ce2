"""The optimiser and learning-rate schedule of `elcore.training` (ELQ's: AdamW, linear warm-up/decay).

>>> optimizer = build_optimizer(model, config)
>>> scheduler = linear_schedule(optimizer, warmup=100, total=1000)
"""

from __future__ import annotations

import torch

from .model import ElqModel
from .train_config import TrainConfig


def build_optimizer(model: ElqModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; the freshly initialised mention head gets its own (higher) learning rate."""
    head = [p for p in model.mention_head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    decay = [p for p in rest if p.ndim > 1]
    no_decay = [p for p in rest if p.ndim <= 1]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"params": head, "weight_decay": 0.0, "lr": config.head_learning_rate},
        ],
        lr=config.learning_rate,
    )


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
