"""The training loop: single process here, the same loop under Ray Train (`pipelines.train`).

The loop owns data preparation, optimiser and schedule, hard-negative mining, evaluation on the
dev sets with the joint-threshold linker, checkpoints and best-model selection. What differs
between one process and a Ray Train worker (sharding, DDP, collectives, reporting, where
checkpoints go) is a `TrainingRuntime`.

Resume is exact: a run killed after a checkpoint and resumed ends with the same weights as an
uninterrupted run with the same seed, because everything random is a function of (seed, rank,
step) (dropout is re-seeded before every step, the epoch order from (seed, epoch)), and a
checkpoint holds the model, optimiser, scheduler and AMP scaler state, the loop position and, in
the middle of an epoch, the hard negatives mined at its start (one file per rank). The options
are `elcore.train_config.TrainConfig` (re-exported here), the checkpoint format `elcore.checkpoint`.

    >>> summary = train(TrainConfig(train_data=["train.jsonl"], catalogue="entities.jsonl", output_dir="out"))
    >>> summary["best_dev_weak_f1"], summary["best_model"]
    (0.61, 'out/best')
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import fs
from .catalogue import EntityCatalogue
from .checkpoint import attach_negatives, load_checkpoint
from .data import Example, read_examples
from .dev_evaluation import DevEvaluation, evaluate_dev
from .errors import ConfigError
from .index import EntityIndex, FaissIndex, IndexSpec
from .model import ElqModel
from .negatives import mine_hard_negatives
from .optimization import build_optimizer, linear_schedule
from .train_config import AMP_MODES, SELECT_BY, TrainConfig
from .train_report import Meter, TrainRun, TrainState, final_full_eval, report, run_summary
from .train_runtime import TrainingRuntime, catalogue_vectors_on_ranks, shard_evenly
from .train_step import EncodedEntities, FrozenEntities, TrainingWindow, collate, prepare_windows, train_step

__all__ = [
    "AMP_MODES",
    "SELECT_BY",
    "TrainConfig",
    "TrainingRuntime",
    "evaluate_dev",
    "mine_hard_negatives",
    "shard_evenly",
    "train",
]

log = logging.getLogger(__name__)


def train(config: TrainConfig, runtime: TrainingRuntime | None = None) -> dict:
    """Train, evaluating on the dev sets; the best model goes to `output_dir/best`. Returns a summary."""
    config.validate()
    runtime = runtime or TrainingRuntime()
    _seed_everything(config.seed)
    started = time.perf_counter()
    device = runtime.device()
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp=fp16 needs a CUDA device; use amp=bf16 or amp=none on CPU")
    model = _initial_model(config)
    catalogue = EntityCatalogue.load(config.catalogue)
    train_examples = _read_all(config.train_data, config.max_train_examples)
    windows = prepare_windows(train_examples, model.tokenizer, catalogue, model.config)

    frozen_index: EntityIndex | None = None
    if config.freeze_entities:
        for p in model.entity_encoder.parameters():
            p.requires_grad_(False)
        vectors = catalogue_vectors_on_ranks(
            runtime, model.to(device), catalogue, config.encode_batch_size, cache=True
        )
        entities = FrozenEntities(vectors)
        frozen_index = FaissIndex.build(vectors, IndexSpec())
    else:
        entities = EncodedEntities(catalogue)
    dev = DevEvaluation.of(config, runtime, catalogue, frozen_index)

    core = model
    model = runtime.prepare_model(model)
    optimizer = build_optimizer(core, config)
    steps_per_epoch = math.ceil(len(runtime.shard(windows)) / (config.batch_size * config.grad_accumulation))
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" else None
    run = TrainRun(
        config,
        runtime,
        core,
        catalogue,
        dev,
        frozen_index,
        optimizer,
        scheduler,
        scaler,
        TrainState(),
        fs.join(config.output_dir, "metrics.jsonl"),
    )
    resume_from = runtime.latest_checkpoint(config.output_dir)
    if resume_from:
        resumed = load_checkpoint(
            resume_from, core, optimizer, scheduler, scaler, config, runtime.rank, runtime.world_size
        )
        run.state, run.saved_negatives = TrainState(**resumed.state), resumed.negatives
        log.info("resumed from %s at step %d (epoch %d)", resume_from, run.state.step, run.state.epoch)
    elif runtime.is_main:
        fs.remove(run.metrics_url)  # a fresh run's own record
    autocast = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.amp]
    state = run.state
    checkpoint_every = config.checkpoint_every_steps or config.eval_every_steps

    while state.epoch < config.epochs:
        mine = _epoch_windows(run, windows)
        steps = list(_chunks(mine, config.batch_size * config.grad_accumulation))
        bar = tqdm(
            total=len(steps),
            initial=state.step_in_epoch,
            desc=f"epoch {state.epoch + 1}/{config.epochs}",
            disable=not runtime.is_main,
            unit="step",
        )
        meter = Meter(runtime.world_size)
        for chunk in steps[state.step_in_epoch :]:
            micro = [
                collate(part, core.tokenizer, core.config).to(device)
                for part in _chunks(chunk, config.batch_size)
            ]
            torch.manual_seed(_step_seed(config.seed, runtime.rank, state.step))
            stats = train_step(
                model,
                core.config,
                micro,
                optimizer,
                scheduler,
                entities,
                config.max_grad_norm,
                autocast,
                scaler,
            )
            state.step += 1
            state.step_in_epoch += 1
            state.examples_seen += len(chunk) * runtime.world_size
            meter.add(stats, len(chunk))
            bar.set_postfix(
                loss=f"{stats['loss']:.3f}",
                ment=f"{stats['mention_loss']:.3f}",
                ent=f"{stats['entity_loss']:.3f}",
                ex_s=f"{meter.rate():.1f}",
            )
            bar.update(1)
            evaluate_now = bool(config.eval_every_steps and state.step % config.eval_every_steps == 0)
            checkpoint_now = bool(checkpoint_every and state.step % checkpoint_every == 0)
            if (evaluate_now or checkpoint_now) and state.step_in_epoch < len(steps):
                state.train_seconds += meter.seconds()
                report(run, meter.means(), meter.rate(), evaluate=evaluate_now)
                meter = Meter(runtime.world_size)
        bar.close()
        state.train_seconds += meter.seconds()
        state.epoch += 1
        state.step_in_epoch = 0
        run.negatives = None
        report(run, meter.means(), meter.rate(), evaluate=True)

    summary = run_summary(run, started, len(train_examples), len(windows), final_full_eval(run))
    if runtime.is_main:
        fs.write_json_atomic(fs.join(config.output_dir, "summary.json"), summary)
        log.info("training done: %s", json.dumps({k: v for k, v in summary.items() if k != "history"}))
    return summary


def _epoch_windows(run: TrainRun, windows: list[TrainingWindow]) -> list[TrainingWindow]:
    """This rank's windows of the current epoch, in order; with hard negatives mined (or restored)."""
    config, runtime = run.config, run.runtime
    order = _epoch_order(len(windows), config.seed, run.state.epoch)
    mine = runtime.shard([windows[i] for i in order])
    if not config.hard_negatives:
        return mine
    saved, run.saved_negatives = run.saved_negatives, None
    run.negatives = attach_negatives(mine, saved) if saved is not None else None
    if run.negatives is None:
        # Before the first step the entity encoder is the initial one, whose vectors may be cached.
        untrained = run.state.step == 0
        index = run.frozen_index or FaissIndex.build(
            catalogue_vectors_on_ranks(
                runtime, run.core, run.catalogue, config.encode_batch_size, cache=untrained
            ),
            IndexSpec(),
        )
        run.negatives = mine_hard_negatives(
            run.core, mine, index, config.hard_negatives, progress=run.runtime.is_main
        )
    return run.negatives


# --------------------------------------------------------------------------- helpers
def _initial_model(config: TrainConfig) -> ElqModel:
    if config.init_model:
        model = ElqModel.from_pretrained(config.init_model)
        if config.model:
            model.config = model.config.replace(**config.model)
        return model
    model = ElqModel.from_base(config.base_model, **config.model)
    model.head_trained = True  # it is about to be
    return model


def _read_all(urls: Sequence[str], limit: int | None) -> list[Example]:
    examples = [e for url in urls for e in read_examples(url)]
    return examples[:limit] if limit else examples


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _step_seed(seed: int, rank: int, step: int) -> int:
    """Dropout seed of one step on one rank: the same after a resume as in an uninterrupted run."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def _chunks(items: Sequence, size: int) -> Iterator[list]:
    for lo in range(0, len(items), size):
        yield list(items[lo : lo + size])
