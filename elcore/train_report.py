"""What the training loop records: its state, dev evaluation at each report, the best model, checkpoints,
the metrics log and the run's summary (`elcore.training` runs the loop).

`report` is called by every rank at the same point: it evaluates (when asked), saves a better model to
`output_dir/best`, appends to `metrics.jsonl`, writes a checkpoint and hands it to the runtime.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field

import torch

from . import fs
from .catalogue import EntityCatalogue
from .checkpoint import write_checkpoint
from .dev_evaluation import DevEvaluation
from .index import EntityIndex
from .model import ElqModel
from .train_config import TrainConfig
from .train_runtime import TrainingRuntime
from .train_step import TrainingWindow


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_metric: float = -1.0
    best_step: int = -1
    examples_seen: int = 0
    train_seconds: float = 0.0
    history: list = field(default_factory=list)


class Meter:
    """Mean loss parts and examples/s (all ranks) since the last report."""

    def __init__(self, world_size: int) -> None:
        self.world_size, self.sums, self.steps, self.examples = world_size, {}, 0, 0
        self.started = time.perf_counter()

    def add(self, stats: dict[str, float], examples: int) -> None:
        for key, value in stats.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1
        self.examples += examples

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def rate(self) -> float:
        return self.examples * self.world_size / max(self.seconds(), 1e-9)

    def means(self) -> dict[str, float]:
        return {k: v / self.steps for k, v in self.sums.items()}


@dataclass
class TrainRun:
    """What the loop's helpers share."""

    config: TrainConfig
    runtime: TrainingRuntime
    core: ElqModel
    catalogue: EntityCatalogue
    dev: DevEvaluation
    frozen_index: EntityIndex | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None
    state: TrainState
    metrics_url: str
    negatives: list[TrainingWindow] | None = None  # this rank's mined windows of the current epoch
    saved_negatives: torch.Tensor | None = None  # from a mid-epoch checkpoint, for the resumed epoch


def run_summary(
    run: TrainRun, started: float, train_examples: int, train_windows: int, final: dict | None
) -> dict:
    config, state = run.config, run.state
    return {
        "recipe": config.recipe,
        "steps": state.step,
        "epochs": config.epochs,
        "world_size": run.runtime.world_size,
        "best_step": state.best_step,
        f"best_dev_{config.select_by}": state.best_metric,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "train_seconds": round(state.train_seconds, 1),
        "train_examples": train_examples,
        "train_windows": train_windows,
        "examples_per_second": round(state.examples_seen / max(state.train_seconds, 1e-9), 2),
        "dev_catalogue_entities": run.dev.entities,
        "final_dev": final,
        "history": state.history,
        "best_model": fs.join(config.output_dir, "best"),
    }


def report(run: TrainRun, train_stats: dict, rate: float, evaluate: bool) -> None:
    """Evaluate (on `evaluate`), save the best model, log, write and report a checkpoint. All ranks call it."""
    config, runtime, state = run.config, run.runtime, run.state
    record = {
        "step": state.step,
        "epoch": state.epoch,
        **{f"train_{k}": v for k, v in train_stats.items()},
        "examples_per_second": round(rate, 2),
    }
    if evaluate:
        report = run.dev(run.core)
        if report is not None:
            record.update(report)
            metric = report[f"dev_{config.select_by}"]
            if metric > state.best_metric:
                state.best_metric, state.best_step = metric, state.step
                save_best(run, report["dev_best_threshold"])
        elif runtime.is_main and not run.dev.sets:
            state.best_step = state.step
            save_best(run, None)
    flat = _scalars(record)
    if runtime.is_main:
        print(json.dumps(flat), flush=True)
        state.history.append(flat)
        append_jsonl(run.metrics_url, record)
    checkpoint = write_checkpoint(
        run.core,
        run.optimizer,
        run.scheduler,
        run.scaler,
        dataclasses.asdict(state),
        config,
        runtime.rank,
        runtime.world_size,
        run.negatives if state.step_in_epoch and run.negatives is not None else None,
    )
    try:
        runtime.report(flat, checkpoint, config.output_dir, keep=config.keep_checkpoints)
    finally:
        if checkpoint is not None:
            shutil.rmtree(checkpoint, ignore_errors=True)
    runtime.barrier()


def save_best(run: TrainRun, threshold: float | None) -> None:
    if threshold is not None:
        run.core.config.threshold = threshold
    run.core.save_pretrained(fs.join(run.config.output_dir, "best"))


def final_full_eval(run: TrainRun) -> dict | None:
    """Re-score the best model on the whole catalogue when evaluations used a sample of it."""
    config, runtime = run.config, run.runtime
    if not run.dev.rescores_in_full:
        return None
    best_dir = fs.join(config.output_dir, "best")
    if runtime.is_main:
        best = ElqModel.from_pretrained(best_dir)
        run.core.load_state_dict(best.state_dict())
        run.core.config = best.config
    runtime.broadcast_weights(run.core)
    report = run.dev.full(run.core)
    if report is None:
        return None
    save_best(run, report["dev_best_threshold"])
    final = {**_scalars(report), "catalogue_entities": len(run.catalogue)}
    append_jsonl(run.metrics_url, {"final_full_catalogue": True, **report})
    print(json.dumps({"final_full_catalogue": True, **final}), flush=True)
    return final


def _scalars(record: dict) -> dict:
    """The fields of a record printed and kept in the history (sweep rows and per-set reports stay in
    `metrics.jsonl`)."""
    return {k: v for k, v in record.items() if not isinstance(v, (list, dict))}


def append_jsonl(url: str, record: dict) -> None:
    filesystem, path = fs.filesystem(url)
    filesystem.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with filesystem.open(path, "a") as f:
        f.write(json.dumps(record, default=float) + "\n")
