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

import dataclasses
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import torch
from tqdm.auto import tqdm

from . import fs, settings
from .catalogue import EntityCatalogue
from .checkpoint import attach_negatives, finished_checkpoints, load_checkpoint, write_checkpoint
from .data import Example, read_examples
from .embeddings import cache_url
from .encoding import catalogue_vectors, encode_entities, store_catalogue_vectors
from .errors import ConfigError
from .evaluation import default_thresholds, entity_text_lookup, resolve_predictions
from .index import EntityIndex, FaissIndex, IndexSpec, shard_ranges
from .linker import Linker
from .metrics import best_threshold, evaluate, sweep_thresholds
from .model import ElqModel
from .spans import span_means
from .text import Window, collate_windows
from .train_config import AMP_MODES, SELECT_BY, SimulatedInterruption, TrainConfig
from .train_step import EncodedEntities, FrozenEntities, TrainingWindow, collate, prepare_windows, train_step

__all__ = [
    "AMP_MODES",
    "SELECT_BY",
    "SimulatedInterruption",
    "TrainConfig",
    "TrainingRuntime",
    "evaluate_dev",
    "mine_hard_negatives",
    "shard_evenly",
    "train",
]

log = logging.getLogger(__name__)


class TrainingRuntime:
    """One process, no DDP. `pipelines.train.RayTrainRuntime` is the Ray Train version.

    The collective methods (`all_gather_rows`, `all_true`, `broadcast_weights`) must be called by
    every rank at the same point; here they are identities.
    """

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        return torch.device(settings.device())

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device())

    def shard(self, items: Sequence) -> list:
        return shard_evenly(items, self.rank, self.world_size)

    def latest_checkpoint(self, output_dir: str) -> str | None:
        root = fs.join(output_dir, "checkpoints")
        done = finished_checkpoints(root)
        return f"{root}/{done[-1]}" if done else None

    def report(self, metrics: dict, checkpoint_dir: str | None, output_dir: str, keep: int = 2) -> None:
        """Record metrics; copy a finished checkpoint into `output_dir/checkpoints/`, keep the last `keep`."""
        if checkpoint_dir is None:
            return
        root = fs.join(output_dir, "checkpoints")
        target = fs.join(root, f"step-{metrics['step']:08d}")
        filesystem, path = fs.filesystem(target)
        filesystem.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if filesystem.exists(path):
            filesystem.rm(path, recursive=True)
        filesystem.put(checkpoint_dir.rstrip("/") + "/", path, recursive=True)
        for old in finished_checkpoints(root)[:-keep]:
            filesystem.rm(fs.filesystem(fs.join(root, old))[1], recursive=True)

    def barrier(self) -> None:
        pass

    def all_gather_rows(self, local: np.ndarray) -> np.ndarray:
        """Concatenate every rank's rows in rank order."""
        return local

    def all_true(self, flag: bool) -> bool:
        return flag

    def broadcast_weights(self, model: torch.nn.Module) -> None:
        """Copy rank 0's weights into every rank's `model`."""


def shard_evenly(items: Sequence, rank: int, world_size: int) -> list:
    """Every `world_size`-th item from `rank`, padded by wrapping so every rank gets as many.

    Equal shard lengths give every rank the same number of steps and micro-batches, which DDP
    needs (a rank with one more step would wait forever for the others' gradients).

        >>> shard_evenly(list(range(5)), 1, 2)
        [1, 3, 0]
    """
    if world_size <= 1 or not items:
        return list(items)
    per_rank = math.ceil(len(items) / world_size)
    padded = [items[i % len(items)] for i in range(per_rank * world_size)]
    return padded[rank::world_size]


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_metric: float = -1.0
    best_step: int = -1
    examples_seen: int = 0
    train_seconds: float = 0.0
    history: list = field(default_factory=list)


class _Meter:
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
class _Run:
    """What the loop's helpers share."""

    config: TrainConfig
    runtime: TrainingRuntime
    core: ElqModel
    catalogue: EntityCatalogue
    dev_sets: dict[str, list[Example]]
    dev_catalogue: EntityCatalogue | None
    frozen_index: EntityIndex | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None
    state: _State
    metrics_url: str
    negatives: list[TrainingWindow] | None = None  # this rank's mined windows of the current epoch
    saved_negatives: torch.Tensor | None = None  # from a mid-epoch checkpoint, for the resumed epoch


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
    dev_sets = {_set_name(url): _read_all([url], config.max_dev_examples) for url in config.dev_data}
    windows = prepare_windows(train_examples, model.tokenizer, catalogue, model.config)

    frozen_index: EntityIndex | None = None
    if config.freeze_entities:
        for p in model.entity_encoder.parameters():
            p.requires_grad_(False)
        vectors = _catalogue_vectors(
            runtime, model.to(device), catalogue, config.encode_batch_size, cache=True
        )
        entities = FrozenEntities(vectors)
        frozen_index = FaissIndex.build(vectors, IndexSpec())
    else:
        entities = EncodedEntities(catalogue)
    dev_catalogue = None
    if dev_sets and config.dev_catalogue_sample and frozen_index is None:
        dev_catalogue = _dev_catalogue(catalogue, dev_sets, config.dev_catalogue_sample, config.seed)

    core = model
    model = runtime.prepare_model(model)
    optimizer = _optimizer(core, config)
    steps_per_epoch = math.ceil(len(runtime.shard(windows)) / (config.batch_size * config.grad_accumulation))
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = _linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" else None
    run = _Run(
        config,
        runtime,
        core,
        catalogue,
        dev_sets,
        dev_catalogue,
        frozen_index,
        optimizer,
        scheduler,
        scaler,
        _State(),
        fs.join(config.output_dir, "metrics.jsonl"),
    )
    resume_from = runtime.latest_checkpoint(config.output_dir)
    if resume_from:
        resumed = load_checkpoint(
            resume_from, core, optimizer, scheduler, scaler, config, runtime.rank, runtime.world_size
        )
        run.state, run.saved_negatives = _State(**resumed.state), resumed.negatives
        log.info("resumed from %s at step %d (epoch %d)", resume_from, run.state.step, run.state.epoch)
    elif runtime.is_main and fs.exists(run.metrics_url):
        fs.filesystem(run.metrics_url)[0].rm(fs.filesystem(run.metrics_url)[1])  # a fresh run's own record
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
        meter = _Meter(runtime.world_size)
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
                _report(run, meter.means(), meter.rate(), evaluate=evaluate_now)
                meter = _Meter(runtime.world_size)
        bar.close()
        state.train_seconds += meter.seconds()
        state.epoch += 1
        state.step_in_epoch = 0
        run.negatives = None
        _report(run, meter.means(), meter.rate(), evaluate=True)

    summary = _summary(run, started, len(train_examples), len(windows), _final_full_eval(run))
    if runtime.is_main:
        fs.write_json_atomic(fs.join(config.output_dir, "summary.json"), summary)
        log.info("training done: %s", json.dumps({k: v for k, v in summary.items() if k != "history"}))
    return summary


def _epoch_windows(run: _Run, windows: list[TrainingWindow]) -> list[TrainingWindow]:
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
            _catalogue_vectors(runtime, run.core, run.catalogue, config.encode_batch_size, cache=untrained),
            IndexSpec(),
        )
        run.negatives = mine_hard_negatives(
            run.core, mine, index, config.hard_negatives, progress=run.runtime.is_main
        )
    return run.negatives


def _summary(run: _Run, started: float, train_examples: int, train_windows: int, final: dict | None) -> dict:
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
        "dev_catalogue_entities": len(run.dev_catalogue or run.catalogue),
        "final_dev": final,
        "history": state.history,
        "best_model": fs.join(config.output_dir, "best"),
    }


def _report(run: _Run, train_stats: dict, rate: float, evaluate: bool) -> None:
    """Evaluate (on `evaluate`), save the best model, write and report a checkpoint. All ranks call it."""
    config, runtime, state = run.config, run.runtime, run.state
    record = {
        "step": state.step,
        "epoch": state.epoch,
        **{f"train_{k}": v for k, v in train_stats.items()},
        "examples_per_second": round(rate, 2),
    }
    if evaluate and run.dev_sets:
        index = run.frozen_index
        dev_catalogue = run.dev_catalogue or run.catalogue
        if index is None:  # every rank encodes a share of the catalogue
            vectors = _catalogue_vectors(
                runtime, run.core, dev_catalogue, config.encode_batch_size, cache=False
            )
            index = FaissIndex.build(vectors, IndexSpec()) if runtime.is_main else None
        if runtime.is_main:
            report = evaluate_dev(run.core, dev_catalogue, index, run.dev_sets, config)
            record.update(report)
            metric = report[f"dev_{config.select_by}"]
            if metric > state.best_metric:
                state.best_metric, state.best_step = metric, state.step
                run.core.config.threshold = report["dev_best_threshold"]
                run.core.save_pretrained(fs.join(config.output_dir, "best"))
    elif evaluate and runtime.is_main:
        run.core.save_pretrained(fs.join(config.output_dir, "best"))
        state.best_step = state.step
    flat = {k: v for k, v in record.items() if not isinstance(v, (list, dict))}
    if runtime.is_main:
        print(json.dumps(flat), flush=True)
        state.history.append(flat)
        _append_jsonl(run.metrics_url, record)
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
    if config.stop_after_steps and state.step >= config.stop_after_steps:
        raise SimulatedInterruption(f"stopped after the checkpoint at step {state.step} (stop_after_steps)")


def _final_full_eval(run: _Run) -> dict | None:
    """Re-score the best model on the whole catalogue when evaluations used a sample of it."""
    config, runtime = run.config, run.runtime
    if not (run.dev_sets and run.dev_catalogue is not None and config.final_full_eval):
        return None
    best_dir = fs.join(config.output_dir, "best")
    if runtime.is_main:
        best = ElqModel.from_pretrained(best_dir)
        run.core.load_state_dict(best.state_dict())
        run.core.config = best.config
    runtime.broadcast_weights(run.core)
    # Cached: the best model's vectors are what linking with it (and the hybrid step) needs next.
    vectors = _catalogue_vectors(runtime, run.core, run.catalogue, config.encode_batch_size, cache=True)
    if not runtime.is_main:
        return None
    report = evaluate_dev(
        run.core, run.catalogue, FaissIndex.build(vectors, IndexSpec()), run.dev_sets, config
    )
    run.core.config.threshold = report["dev_best_threshold"]
    run.core.save_pretrained(best_dir)
    final = {k: v for k, v in report.items() if not isinstance(v, (list, dict))}
    final["catalogue_entities"] = len(run.catalogue)
    _append_jsonl(run.metrics_url, {"final_full_catalogue": True, **report})
    print(json.dumps({"final_full_catalogue": True, **final}), flush=True)
    return final


def evaluate_dev(
    model: ElqModel,
    catalogue: EntityCatalogue,
    index: EntityIndex | None,
    examples: Sequence[Example] | Mapping[str, Sequence[Example]],
    config: TrainConfig,
) -> dict:
    """Dev metrics of the current model with the joint-threshold linker and a threshold sweep.

    The threshold is chosen on all dev sets together (by `config.select_by`); each set is also scored
    at it (`dev_<set>_weak_f1`, ...). Returns flat `dev_*` scores, plus `dev_sweep` (rows) and
    `dev_metrics` (full metrics of all sets at the chosen threshold).
    """
    sets = dict(examples) if isinstance(examples, Mapping) else {"dev": list(examples)}
    if index is None:
        index = FaissIndex.build(
            catalogue_vectors(model, catalogue, batch_size=config.encode_batch_size, cache=False), IndexSpec()
        )
    pooled = [e for group in sets.values() for e in group]
    was_training = model.training
    linker = Linker(model, catalogue, index, device=str(model.device))
    thresholds = default_thresholds()
    started = time.perf_counter()
    candidates = linker.link_candidates([e.text for e in pooled], mention_threshold=min(thresholds))
    link_seconds = time.perf_counter() - started
    model.train(was_training)

    rows = sweep_thresholds(pooled, candidates, thresholds, resolve_predictions)
    best = best_threshold(rows, metric=config.select_by)
    row = next(r for r in rows if r["threshold"] == best)
    predictions = [resolve_predictions(c, best) for c in candidates]
    report: dict = {
        "dev_best_threshold": best,
        "dev_weak_f1": row["weak_f1"],
        "dev_strong_f1": row["strong_f1"],
        "dev_entity_f1": row["entity_f1"],
        "dev_link_seconds": round(link_seconds, 2),
        "dev_sweep": rows,
        "dev_metrics": evaluate(
            pooled, predictions, entity_has_text=entity_text_lookup(catalogue, pooled, predictions)
        ),
    }
    if len(sets) > 1:
        lo = 0
        for name, group in sets.items():
            metrics = evaluate(group, predictions[lo : lo + len(group)])
            lo += len(group)
            for kind in ("weak", "strong", "entity"):
                report[f"dev_{name}_{kind}_f1"] = metrics[kind]["f1"]
    return report


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


def _set_name(url: str) -> str:
    """`.../webqsp/dev.jsonl` -> `webqsp_dev`."""
    path = PurePosixPath(url.split("://", 1)[-1])
    stem = path.name.split(".", 1)[0]
    return f"{path.parent.name}_{stem}" if path.parent.name else stem


def _dev_catalogue(
    catalogue: EntityCatalogue, dev_sets: Mapping[str, Sequence[Example]], sample: int, seed: int
) -> EntityCatalogue:
    """The dev gold entities plus `sample` random others (seeded: the same at every evaluation)."""
    keys = [m.entity for group in dev_sets.values() for e in group for m in e.mentions]
    gold = np.unique(catalogue.lookup(keys)) if keys else np.zeros(0, dtype=np.int64)
    gold = gold[gold >= 0]
    rest = np.setdiff1d(np.arange(len(catalogue), dtype=np.int64), gold)
    extra = np.random.default_rng([seed, 7]).choice(rest, size=min(sample, len(rest)), replace=False)
    rows = np.sort(np.concatenate([gold, extra]))
    return EntityCatalogue(catalogue.table.take(rows))


def _catalogue_vectors(
    runtime: TrainingRuntime, model: ElqModel, catalogue: EntityCatalogue, batch_size: int, cache: bool
) -> np.ndarray:
    """All catalogue vectors on every rank; with several ranks each encodes a contiguous share."""
    if runtime.world_size == 1:
        return catalogue_vectors(
            model, catalogue, batch_size=batch_size, cache=cache, progress=runtime.is_main
        )
    model_fp, catalogue_fp = model.entity_fingerprint(), catalogue.fingerprint
    url = cache_url(model_fp, catalogue_fp)
    if cache and runtime.all_true(fs.exists(fs.join(url, "manifest.json"))):
        return catalogue_vectors(model, catalogue, batch_size=batch_size, cache=True, progress=False)
    lo, hi = shard_ranges(len(catalogue), runtime.world_size)[runtime.rank]
    rows = np.arange(lo, hi, dtype=np.int64)
    local = encode_entities(
        model, catalogue.entity_inputs(rows), batch_size=batch_size, progress=runtime.is_main
    )
    vectors = runtime.all_gather_rows(local)
    if cache and runtime.is_main:
        store_catalogue_vectors(model, catalogue, vectors)
    return vectors


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


def _optimizer(model: ElqModel, config: TrainConfig) -> torch.optim.Optimizer:
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


def _linear_schedule(optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _append_jsonl(url: str, record: dict) -> None:
    filesystem, path = fs.filesystem(url)
    filesystem.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with filesystem.open(path, "a") as f:
        f.write(json.dumps(record, default=float) + "\n")
