"""Trainer checkpoints: write, list and load them; no pickles anywhere.

A checkpoint directory holds `model/` (safetensors), `optimizer.safetensors`, `trainer_state.json`
(loop state, optimiser scalars, scheduler and scaler state, config and job fingerprint), in
the middle of an epoch with hard negatives, `negatives-rank<r>.safetensors` (each rank's mined
negatives), and, written last, each rank's record `parts/rank-<r>.json` (`elcore.parts.PartStore`:
every file of that rank with its size and sha256). A checkpoint counts as finished only when
rank 0's files are all there at their recorded sizes (a copy cut short is passed over; listing reads
no file whole), and loading checks the checksums and refuses a damaged one. Checkpoints of earlier
versions, listed in `files.json`, are read the same way. The training loop (`elcore.training`) passes in what it saves and gets
back what it resumes from, so this module knows nothing of the loop itself.

    >>> directory = write_checkpoint(model, optimizer, scheduler, None, {"step": 10}, config, 0, 1, None)
    >>> load_checkpoint(directory, model, optimizer, scheduler, None, config, 0, 1).state["step"]
    10
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from safetensors.torch import load_file, save_file

from . import fs
from .errors import ConfigError
from .model import ElqModel
from .parts import NO_RECORD, PartStore
from .train_config import JOB_FIELDS, TrainConfig
from .train_step import TrainingWindow

log = logging.getLogger(__name__)


@dataclass
class Resumed:
    """What `load_checkpoint` hands back besides the weights and optimiser state it loads in place.

    Attributes:
        state: the loop state as saved (the fields of the trainer's state dataclass).
        negatives: this rank's hard negatives of the interrupted epoch (`negatives_tensor`), or
            None when there are none to restore (then they are mined again).
    """

    state: dict
    negatives: torch.Tensor | None = None


MAIN_PART = "rank-0"  # the part holding the model, optimiser and loop state


def _parts(url: str) -> PartStore:
    """A checkpoint's files, one part per rank (each part's files are those its record lists)."""
    return PartStore(url, None)


def finished_checkpoints(root: str) -> list[str]:
    """Names of the checkpoint directories under `root` whose rank-0 files match their record, oldest first."""
    if not fs.exists(root):
        return []
    filesystem, path = fs.filesystem(root)
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in filesystem.ls(path, detail=False)]
    return sorted(n for n in names if _finished(fs.join(root, n)))


LEGACY_FILES = "files.json"  # rank 0's listing in checkpoints written before they were PartStore parts


def _problem(url: str, part: str, checksums: bool) -> str | None:
    """What is wrong with one rank's files of a checkpoint (its record, or a legacy `files.json`)."""
    store = _parts(url)
    problem = store.problem(part, checksums)
    legacy = fs.join(url, LEGACY_FILES)
    if problem == NO_RECORD and part == MAIN_PART and fs.exists(legacy):
        return store.check(part, {"files": fs.read_json(legacy)}, checksums)  # {file: {bytes, sha256}}
    return problem


def _finished(url: str) -> bool:
    """Rank 0's files all there at their recorded sizes (listing checkpoints reads no file whole)."""
    problem = _problem(url, MAIN_PART, checksums=False)
    if problem is not None and problem != NO_RECORD:  # no record yet: a copy still arriving
        log.warning("checkpoint %s: %s; it is not resumed from", url, problem)
    return problem is None


def _seal(directory: str, rank: int) -> None:
    """Record this rank's files, written in `directory` by save_file and save_pretrained."""
    files = [
        os.path.relpath(os.path.join(folder, name), directory)
        for folder, _, names in sorted(os.walk(directory))
        for name in sorted(names)
    ]
    _parts(directory).seal(f"rank-{rank}", files, counts={})


def _verify(local: str, url: str) -> None:
    problem = _problem(local, MAIN_PART, checksums=True)
    if problem == NO_RECORD:
        log.warning("checkpoint %s has no record of its files; they are not verified", url)
    elif problem is not None:
        raise ConfigError(f"checkpoint {url}: {problem}; delete the checkpoint to resume from an earlier one")


def write_checkpoint(
    model: ElqModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    state: Mapping,
    config: TrainConfig,
    rank: int,
    world_size: int,
    negatives: Sequence[TrainingWindow] | None,
) -> str | None:
    """Write this rank's part of a checkpoint to a new local directory.

    Args:
        model, optimizer, scheduler, scaler: saved by rank 0 only.
        state: the loop state (a JSON-able mapping), saved by rank 0.
        config: the run's config, saved with its job fingerprint.
        rank, world_size: this process's place in the job.
        negatives: this rank's windows with mined hard negatives when the checkpoint falls in the
            middle of an epoch, else None.

    Returns:
        The directory (the caller removes it once reported), or None when this rank has nothing
        to add.
    """
    is_main = rank == 0
    if not is_main and negatives is None:
        return None
    directory = tempfile.mkdtemp(prefix="elq-ckpt-")
    if is_main:
        model.save_pretrained(os.path.join(directory, "model"))
        tensors, meta = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, os.path.join(directory, "optimizer.safetensors"))
        trainer_state = {
            "state": dict(state),
            "optimizer": meta,
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "config": config.to_dict(),
            "job_fingerprint": config.job_fingerprint(),
            "world_size": world_size,
        }
        with open(os.path.join(directory, "trainer_state.json"), "w", encoding="utf-8") as f:
            json.dump(trainer_state, f, default=float)
    if negatives is not None:
        save_file(
            {"negatives": _negatives_tensor(negatives, config.hard_negatives)},
            os.path.join(directory, f"negatives-rank{rank}.safetensors"),
        )
    _seal(directory, rank)
    return directory


def load_checkpoint(
    url: str,
    model: ElqModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    config: TrainConfig,
    rank: int,
    world_size: int,
) -> Resumed:
    """Load the checkpoint at `url` into `model`, `optimizer`, `scheduler` and `scaler` in place.

    Returns:
        The saved loop state and this rank's saved hard negatives (see `Resumed`).

    Raises:
        ConfigError: the checkpoint was written by another job (see `TrainConfig.job_fingerprint`).
    """
    local = fs.localize(url)
    _verify(local, url)
    with open(os.path.join(local, "trainer_state.json"), encoding="utf-8") as f:
        saved = json.load(f)
    _check_resumable(saved, config, url)
    restored = ElqModel.from_pretrained(os.path.join(local, "model"))
    model.load_state_dict(restored.state_dict())
    model.config = restored.config
    tensors = load_file(os.path.join(local, "optimizer.safetensors"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, saved["optimizer"]))
    scheduler.load_state_dict(saved["scheduler"])
    if scaler is not None and saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    resumed = Resumed(saved["state"])
    negatives_file = os.path.join(local, f"negatives-rank{rank}.safetensors")
    if resumed.state.get("step_in_epoch") and config.hard_negatives:
        damaged = rank and _problem(local, f"rank-{rank}", checksums=True) not in (None, NO_RECORD)
        if os.path.exists(negatives_file) and saved.get("world_size") == world_size and not damaged:
            resumed.negatives = load_file(negatives_file)["negatives"]
        else:
            log.warning(
                "%s: no hard negatives saved for rank %d of %d; mining again (resume not exact)",
                url,
                rank,
                world_size,
            )
    return resumed


def attach_negatives(windows: Sequence[TrainingWindow], table: torch.Tensor) -> list[TrainingWindow] | None:
    """`windows` with the negatives of `_negatives_tensor` attached in order (None if they do not fit)."""
    if sum(len(w.gold_rows) for w in windows) != len(table):
        log.warning("saved hard negatives do not match this rank's windows; mining again")
        return None
    out, n = [], 0
    for w in windows:
        if w.gold_rows:
            rows = table[n : n + len(w.gold_rows)].tolist()
            n += len(w.gold_rows)
            w = replace(w, negative_rows=tuple(tuple(r for r in row if r >= 0) for row in rows))
        out.append(w)
    return out


def _check_resumable(saved: dict, config: TrainConfig, url: str) -> None:
    if saved.get("job_fingerprint") == config.job_fingerprint():
        return
    old = saved.get("config", {})
    differ = [k for k in JOB_FIELDS if old.get(k) != getattr(config, k)]
    raise ConfigError(
        f"checkpoint {url} belongs to another job (different {differ or 'settings'}); "
        "use a new output_dir, or start over (resume=False / --no-resume)"
    )


def _negatives_tensor(windows: Sequence[TrainingWindow], k: int) -> torch.Tensor:
    """[gold spans of the windows with negatives, k] int64, padded with -1."""
    rows = [list(neg) + [-1] * (k - len(neg)) for w in windows for neg in w.negative_rows]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, k)


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
