"""The training loop: single process here, the same loop under Ray Train (`pipelines.train`).

The loop owns data preparation, optimiser and schedule, hard-negative mining, evaluation on the
dev sets with the joint-threshold linker, checkpoints and best-model selection. What differs
between one process and a Ray Train worker (sharding, DDP, reporting, where checkpoints go) is a
`TrainingRuntime`.

    >>> summary = train(TrainConfig(train_data=["train.jsonl"], catalogue="entities.jsonl", output_dir="out"))
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import fs, settings
from .catalogue import EntityCatalogue
from .data import Example, read_examples
from .encoding import catalogue_vectors
from .errors import ConfigError
from .evaluation import default_thresholds, evaluate_linker
from .index import EntityIndex, FaissIndex, IndexSpec
from .linker import Linker
from .model import ElqConfig, ElqModel
from .spans import span_means
from .text import Window, collate_windows
from .train_step import EncodedEntities, FrozenEntities, TrainingWindow, collate, prepare_windows, train_step

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything one training run needs; saved with every checkpoint.

    Attributes:
        train_data / dev_data: jsonl files (kit / ELQ format), local or fsspec URLs.
        catalogue: the entity catalogue linked against (dev evaluation uses all of it).
        output_dir: `best/` (the model with the best dev F1 and its tuned threshold),
            `checkpoints/`, `metrics.jsonl`, `summary.json`.
        base_model: encoder checkpoint for a fresh model (`minilm` = the shipped MiniLM).
        init_model: continue from a saved elq model instead (fine-tuning).
        model: ElqConfig overrides for a fresh model (max_context_length, entity_pooling, ...).
        freeze_entities: keep the entity encoder and its vectors fixed; train the question side.
        hard_negatives: negatives per gold mention mined from the entity index each epoch.
        select_by: dev metric that picks the best checkpoint and the threshold.
    """

    train_data: list[str]
    catalogue: str
    output_dir: str
    dev_data: list[str] = field(default_factory=list)
    base_model: str = "minilm"
    init_model: str | None = None
    model: dict = field(default_factory=dict)
    freeze_entities: bool = False
    hard_negatives: int = 0
    epochs: int = 3
    batch_size: int = 16
    grad_accumulation: int = 1
    learning_rate: float = 3e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    max_train_examples: int | None = None
    max_dev_examples: int | None = None
    eval_every_steps: int = 0  # 0: once per epoch
    checkpoint_every_steps: int = 0  # 0: once per epoch
    select_by: str = "weak_f1"
    amp: str = "none"  # none | bf16 | fp16 (GPU)
    encode_batch_size: int = 64

    def validate(self) -> TrainConfig:
        if not self.train_data:
            raise ConfigError("train_data: give at least one training file")
        for name in ("epochs", "batch_size", "grad_accumulation"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hard_negatives < 0:
            raise ConfigError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"amp must be none, bf16 or fp16, got {self.amp!r}")
        if self.select_by not in ("weak_f1", "strong_f1", "entity_f1"):
            raise ConfigError(f"select_by must be weak_f1, strong_f1 or entity_f1, got {self.select_by!r}")
        ElqConfig(**self.model).validate() if self.model else None
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values).validate()


class TrainingRuntime:
    """One process, no DDP. `pipelines.train` supplies the Ray Train version."""

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        return torch.device(settings.device())

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device())

    def shard(self, items: Sequence) -> Sequence:
        return items[self.rank :: self.world_size]

    def latest_checkpoint(self, output_dir: str) -> str | None:
        root = fs.join(output_dir, "checkpoints")
        if not fs.exists(root):
            return None
        filesystem, path = fs.filesystem(root)
        done = sorted(p for p in filesystem.ls(path, detail=False) if filesystem.exists(f"{p}/trainer_state.json"))
        return f"{root}/{done[-1].rsplit('/', 1)[-1]}" if done else None

    def report(self, metrics: dict, checkpoint_dir: str | None, output_dir: str) -> None:
        """Record metrics; move a finished checkpoint into `output_dir/checkpoints/`."""
        if checkpoint_dir is not None:
            target = fs.join(output_dir, "checkpoints", f"step-{metrics['step']:08d}")
            filesystem, path = fs.filesystem(target)
            filesystem.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            filesystem.put(checkpoint_dir.rstrip("/") + "/", path, recursive=True)

    def barrier(self) -> None:
        pass


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_metric: float = -1.0
    best_step: int = -1
    history: list = field(default_factory=list)


def train(config: TrainConfig, runtime: TrainingRuntime | None = None) -> dict:
    """Train, evaluating on the dev sets; the best model goes to `output_dir/best`. Returns a summary."""
    config.validate()
    runtime = runtime or TrainingRuntime()
    _seed_everything(config.seed)
    started = time.perf_counter()
    model = _initial_model(config)
    catalogue = EntityCatalogue.load(config.catalogue)
    train_examples = _read_all(config.train_data, config.max_train_examples)
    dev_examples = _read_all(config.dev_data, config.max_dev_examples) if config.dev_data else []
    windows = prepare_windows(train_examples, model.tokenizer, catalogue, model.config)
    device = runtime.device()

    frozen_index: EntityIndex | None = None
    if config.freeze_entities:
        for p in model.entity_encoder.parameters():
            p.requires_grad_(False)
        vectors = catalogue_vectors(model, catalogue, batch_size=config.encode_batch_size)
        entities = FrozenEntities(vectors)
        frozen_index = FaissIndex.build(vectors, IndexSpec())
    else:
        entities = EncodedEntities(catalogue)

    core = model
    model = runtime.prepare_model(model)
    optimizer = _optimizer(core, config)
    steps_per_epoch = math.ceil(len(runtime.shard(windows)) / (config.batch_size * config.grad_accumulation))
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = _linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    state = _State()
    resume_from = runtime.latest_checkpoint(config.output_dir)
    if resume_from:
        state = _load_checkpoint(resume_from, core, optimizer, scheduler)
        log.info("resumed from %s at step %d", resume_from, state.step)
    autocast = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.amp]
    metrics_url = fs.join(config.output_dir, "metrics.jsonl")

    while state.epoch < config.epochs:
        epoch_windows = list(windows)
        if config.hard_negatives:
            index = frozen_index or FaissIndex.build(
                catalogue_vectors(core, catalogue, batch_size=config.encode_batch_size, cache=False), IndexSpec()
            )
            epoch_windows = mine_hard_negatives(core, epoch_windows, index, config.hard_negatives)
        order = _epoch_order(len(epoch_windows), config.seed, state.epoch)
        mine = runtime.shard([epoch_windows[i] for i in order])
        steps = list(_chunks(mine, config.batch_size * config.grad_accumulation))
        bar = tqdm(
            total=len(steps), initial=state.step_in_epoch, desc=f"epoch {state.epoch + 1}/{config.epochs}",
            disable=not runtime.is_main, unit="step",
        )
        tick, seen = time.perf_counter(), 0
        for chunk in steps[state.step_in_epoch :]:
            micro = [
                collate(part, core.tokenizer, core.config).to(device)
                for part in _chunks(chunk, config.batch_size)
            ]
            stats = train_step(model, core.config, micro, optimizer, scheduler, entities, config.max_grad_norm, autocast)
            state.step += 1
            state.step_in_epoch += 1
            seen += len(chunk)
            rate = seen * runtime.world_size / max(time.perf_counter() - tick, 1e-9)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", ment=f"{stats['mention_loss']:.3f}",
                            ent=f"{stats['entity_loss']:.3f}", ex_s=f"{rate:.1f}")
            bar.update(1)
            if config.eval_every_steps and state.step % config.eval_every_steps == 0:
                _evaluate_and_checkpoint(config, runtime, core, catalogue, frozen_index, dev_examples,
                                         optimizer, scheduler, state, metrics_url, stats, rate)
        bar.close()
        state.epoch += 1
        state.step_in_epoch = 0
        if not config.eval_every_steps or state.step % config.eval_every_steps:
            _evaluate_and_checkpoint(config, runtime, core, catalogue, frozen_index, dev_examples,
                                     optimizer, scheduler, state, metrics_url, stats if steps else {}, rate if steps else 0.0)

    summary = {
        "steps": state.step,
        "epochs": config.epochs,
        "best_step": state.best_step,
        f"best_dev_{config.select_by}": state.best_metric,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "train_windows": len(windows),
        "history": state.history,
        "best_model": fs.join(config.output_dir, "best"),
    }
    if runtime.is_main:
        fs.write_json_atomic(fs.join(config.output_dir, "summary.json"), summary)
    return summary


def _evaluate_and_checkpoint(config, runtime, core, catalogue, frozen_index, dev_examples,
                             optimizer, scheduler, state, metrics_url, stats, rate) -> None:
    record = {"step": state.step, "epoch": state.epoch, **{f"train_{k}": v for k, v in stats.items()},
              "examples_per_second": round(rate, 2)}
    if runtime.is_main and dev_examples:
        report = evaluate_dev(core, catalogue, frozen_index, dev_examples, config)
        record.update(report)
        metric = report[f"dev_{config.select_by}"]
        if metric > state.best_metric:
            state.best_metric, state.best_step = metric, state.step
            core.config.threshold = report["dev_best_threshold"]
            core.save_pretrained(fs.join(config.output_dir, "best"))
        print(json.dumps({k: v for k, v in record.items() if not isinstance(v, (list, dict))}))
    elif runtime.is_main:
        core.save_pretrained(fs.join(config.output_dir, "best"))
        state.best_step = state.step
    state.history.append({k: v for k, v in record.items() if not isinstance(v, (list, dict))})
    if runtime.is_main:
        _append_jsonl(metrics_url, record)
    checkpoint = _write_checkpoint(core, optimizer, scheduler, state, config) if runtime.is_main else None
    runtime.report(record, checkpoint, config.output_dir)
    runtime.barrier()


def evaluate_dev(
    model: ElqModel, catalogue: EntityCatalogue, index: EntityIndex | None, examples: Sequence[Example],
    config: TrainConfig,
) -> dict:
    """Dev metrics of the current model with the joint-threshold linker and a threshold sweep."""
    if index is None:
        index = FaissIndex.build(
            catalogue_vectors(model, catalogue, batch_size=config.encode_batch_size, cache=False), IndexSpec()
        )
    was_training = model.training
    linker = Linker(model, catalogue, index, device=str(model.device))
    report = evaluate_linker(linker, examples, sweep=default_thresholds(), select_by=config.select_by)
    model.train(was_training)
    best = report["best_threshold"]
    row = next(r for r in report["sweep"] if r["threshold"] == best)
    return {
        "dev_best_threshold": best,
        "dev_weak_f1": row["weak_f1"],
        "dev_strong_f1": row["strong_f1"],
        "dev_entity_f1": row["entity_f1"],
        "dev_metrics_at_default": report["metrics"],
    }


@torch.inference_mode()
def mine_hard_negatives(
    model: ElqModel, windows: list[TrainingWindow], index: EntityIndex, k: int, batch_size: int = 64
) -> list[TrainingWindow]:
    """Attach to each gold span the `k` best-scoring wrong entities for its current mention vector."""
    was_training = model.training
    model.eval()
    out = list(windows)
    with_gold = [i for i, w in enumerate(windows) if w.gold_rows]
    for lo in range(0, len(with_gold), batch_size):
        chunk = [windows[i] for i in with_gold[lo : lo + batch_size]]
        batch = collate_windows(
            model.tokenizer, [w.doc for w in chunk], [Window(j, w.token_start, w.token_end) for j, w in enumerate(chunk)]
        )
        hidden, _ = model.encode_context(batch.input_ids.to(model.device), batch.attention_mask.to(model.device))
        b = torch.tensor([j for j, w in enumerate(chunk) for _ in w.gold_first])
        first = torch.tensor([s for w in chunk for s in w.gold_first])
        last = torch.tensor([e for w in chunk for e in w.gold_last])
        found = index.search(span_means(hidden, b.to(hidden.device), first.to(hidden.device),
                                        last.to(hidden.device)).float().cpu().numpy(), k + 1)
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
    return ElqModel.from_base(config.base_model, **config.model)


def _read_all(urls: Sequence[str], limit: int | None) -> list[Example]:
    examples = [e for url in urls for e in read_examples(url)]
    return examples[:limit] if limit else examples


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def _write_checkpoint(model: ElqModel, optimizer, scheduler, state: _State, config: TrainConfig) -> str:
    """A local directory: model (safetensors), optimiser tensors (safetensors), JSON state. No pickles."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="elq-ckpt-")
    model.save_pretrained(os.path.join(directory, "model"))
    tensors, meta = _flatten_optimizer(optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, os.path.join(directory, "optimizer.safetensors"))
    with open(os.path.join(directory, "trainer_state.json"), "w", encoding="utf-8") as f:
        json.dump({"state": dataclasses.asdict(state), "optimizer": meta,
                   "scheduler": scheduler.state_dict(), "config": config.to_dict()}, f, default=float)
    return directory


def _load_checkpoint(url: str, model: ElqModel, optimizer, scheduler) -> _State:
    local = fs.localize(url)
    restored = ElqModel.from_pretrained(os.path.join(local, "model"))
    model.load_state_dict(restored.state_dict())
    model.config = restored.config
    with open(os.path.join(local, "trainer_state.json"), encoding="utf-8") as f:
        saved = json.load(f)
    tensors = load_file(os.path.join(local, "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("rng.torch"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, saved["optimizer"]))
    scheduler.load_state_dict(saved["scheduler"])
    return _State(**saved["state"])


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for param_id, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{param_id}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_id}.{name}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict = {}
    for key, value in tensors.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = value
    for key, value in meta["scalars"].items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}
