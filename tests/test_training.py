"""The single-process trainer on a tiny model: loss goes down, a killed run resumes exactly, bad options fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_data import checkpoint_weights, tiny_config, without_timings, write_tiny_data

from elcore.errors import ConfigError
from elcore.training import TrainConfig, TrainingRuntime, shard_evenly, train


class Interrupted(Exception):
    pass


class InterruptedAfter(TrainingRuntime):
    """Stops the run right after the first checkpoint reported at or after `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def report(self, metrics: dict, checkpoint_dir: str | None, output_dir: str, keep: int = 2) -> None:
        super().report(metrics, checkpoint_dir, output_dir, keep)
        if checkpoint_dir is not None and metrics["step"] >= self.step:
            raise Interrupted(metrics["step"])


def last_checkpoint_model(output_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint_weights(sorted((output_dir / "checkpoints").iterdir())[-1])


def test_loss_decreases(tiny_base_dir, small_catalogue, tmp_path):
    data = write_tiny_data(tmp_path / "data", small_catalogue)
    config = tiny_config(tiny_base_dir, data, tmp_path / "run", dev_data=[], epochs=8, learning_rate=3e-3)
    summary = train(config)
    losses = [record["train_loss"] for record in summary["history"]]
    assert len(losses) == 8 and summary["steps"] == 8 * 8
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2])
    assert summary["history"][-1]["train_entity_accuracy"] > summary["history"][0]["train_entity_accuracy"]
    assert (tmp_path / "run" / "best" / "elq_config.json").exists()
    # keep_checkpoints=2: only the last two remain
    assert [p.name for p in sorted((tmp_path / "run" / "checkpoints").iterdir())] == [
        "step-00000056",
        "step-00000064",
    ]


def test_killed_run_resumes_to_the_same_result(tiny_base_dir, small_catalogue, tmp_path):
    """Mid-epoch checkpoints with hard negatives and a dev set: kill after a checkpoint, resume, compare."""
    data = write_tiny_data(tmp_path / "data", small_catalogue)
    common = {"hard_negatives": 2, "eval_every_steps": 3, "dev_catalogue_sample": 3}
    whole = train(tiny_config(tiny_base_dir, data, tmp_path / "whole", **common))

    with pytest.raises(Interrupted):
        train(tiny_config(tiny_base_dir, data, tmp_path / "killed", **common), InterruptedAfter(4))
    assert [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()] == [
        "step-00000003",
        "step-00000006",
    ]
    assert (tmp_path / "killed" / "checkpoints" / "step-00000006" / "negatives-rank0.safetensors").exists()
    resumed = train(tiny_config(tiny_base_dir, data, tmp_path / "killed", **common))

    assert resumed["steps"] == whole["steps"] == 16
    assert without_timings(resumed["history"]) == without_timings(whole["history"])
    assert resumed["best_step"] == whole["best_step"]
    assert without_timings([resumed["final_dev"]]) == without_timings([whole["final_dev"]])
    a, b = last_checkpoint_model(tmp_path / "whole"), last_checkpoint_model(tmp_path / "killed")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_accumulation_and_bf16_autocast_run(tiny_base_dir, small_catalogue, tmp_path):
    """Micro-batches of 2 accumulated to steps of 4, under bf16 autocast (CPU here, GPU on a cluster)."""
    data = write_tiny_data(tmp_path / "data", small_catalogue, n_train=12, n_dev=0)
    config = tiny_config(
        tiny_base_dir,
        data,
        tmp_path / "run",
        dev_data=[],
        epochs=1,
        batch_size=2,
        grad_accumulation=2,
        amp="bf16",
    )
    summary = train(config)
    assert summary["steps"] == 3
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in summary["history"])


def test_resume_refuses_a_different_job(tiny_base_dir, small_catalogue, tmp_path):
    data = write_tiny_data(tmp_path / "data", small_catalogue, n_train=8)
    train(tiny_config(tiny_base_dir, data, tmp_path / "run", dev_data=[], epochs=1))
    with pytest.raises(ConfigError, match="another job.*seed"):
        train(tiny_config(tiny_base_dir, data, tmp_path / "run", dev_data=[], epochs=2, seed=1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"amp": "fp8"}, "amp must be one of none, bf16, fp16"),
        ({"learning_rate": "fast"}, "learning_rate='fast': expected float"),
        ({"select_by": "f1"}, "select_by must be one of"),
        ({"model": {"entity_pooling": "max"}}, "entity_pooling"),
        ({"model": {"window": 3}}, "unknown ElqConfig fields"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"bogus": 1}, "unknown training options"),
        ({"train_data": []}, "train_data"),
    ],
)
def test_bad_options_are_clear_errors(change, message):
    values = {"train_data": ["t.jsonl"], "catalogue": "c.jsonl", "output_dir": "out", **change}
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_fp16_needs_a_gpu(tiny_base_dir, small_catalogue, tmp_path):
    data = write_tiny_data(tmp_path / "data", small_catalogue, n_train=4, n_dev=0)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        train(tiny_config(tiny_base_dir, data, tmp_path / "run", dev_data=[], amp="fp16"))


def test_shards_are_equal_and_cover_everything():
    items = list(range(7))
    shards = [shard_evenly(items, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert set().union(*shards) == set(items)
    assert shard_evenly(items, 0, 1) == items
