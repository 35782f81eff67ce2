"""`elq train --workers N` on Ray Train: `elcore.training.train` in N DDP workers.

    TorchTrainer(train_loop_per_worker) -> each worker: train(config, RayTrainRuntime())
        (1) rank / world size from ray.train.get_context(); every rank takes an equal shard
        (2) the model is wrapped by ray.train.torch.prepare_model (DDP: gloo on CPU, nccl on GPU)
        (3) the catalogue is encoded in shares and all-gathered (dev evaluation, hard negatives)
        (4) checkpoints go through ray.train.report to RunConfig(storage_path, name)
        (5) a re-run with the same output_dir reuses the run name, so ray.train.get_checkpoint()
            hands back the latest checkpoint and the loop resumes from it

The training loop, losses and checkpoint format are elcore's; this module only supplies the Ray
lines. `num_workers=0` trains in this process without Ray.

    ray job submit -- python -m pipelines.train --recipe webqsp --workers 2
    python -m pipelines.train --recipe frozen-entities --set epochs=1 --set model.max_entity_length=64
"""

from __future__ import annotations

import logging
import os
import time

from elcore import fs, settings
from elcore.errors import ConfigError
from elcore.train_config import TrainConfig
from elcore.training import train

from .common import init_ray
from .options import run_command_line
from .ray_train_runtime import RayTrainRuntime
from .train_job import TrainJob


def train_loop_per_worker(loop_config: dict) -> None:
    """What each Ray Train worker runs."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings.hf_offline()
    config = TrainConfig.from_dict(loop_config["config"])
    runtime = RayTrainRuntime(loop_config.get("score_attribute"))
    train(config, runtime)  # rank 0 writes output_dir/summary.json


def run_name(output_dir: str) -> str:
    """A stable Ray run name per output directory, so a re-run finds the previous run's checkpoints."""
    base = os.path.basename(output_dir.rstrip("/")) or "run"
    return f"elq-{base}-{fs.fingerprint(output_dir)[:8]}"


def run(
    config: TrainConfig,
    num_workers: int = 2,
    use_gpu: bool = False,
    storage_path: str | None = None,
    resume: bool = True,
    max_failures: int = 0,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
) -> dict:
    """Train with `num_workers` Ray Train workers (0: in this process). Returns the summary.

    Args:
        config: the training options; local paths are made absolute (workers run elsewhere). On a
            multi-node cluster `output_dir` must be shared storage (s3://, gs://, NFS): rank 0 writes
            `best/` and `summary.json` there, and this driver reads the summary back.
        storage_path: where Ray keeps checkpoints (local, s3://, gs://); default `<output_dir>/ray`.
        resume: continue from the latest checkpoint of a previous run with the same output_dir;
            False deletes that run's checkpoints first.
        max_failures: worker failures Ray Train recovers from (from the latest checkpoint).
        address: the Ray cluster (`pipelines.common.init_ray`).

    Raises:
        ConfigError: a bad option. ray.train.TrainingFailedError: a worker failed.
    """
    config = config.absolute().validate()
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        if not resume:
            fs.remove(fs.join(config.output_dir, "checkpoints"))
        return train(config)
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    init_ray(address)  # or $RAY_ADDRESS (ray job submit), else a local Ray that does not outlive this driver
    name = run_name(config.output_dir)
    storage = storage_path or fs.join(config.output_dir, "ray")
    storage = os.path.abspath(storage) if fs.is_local(storage) else storage
    if not resume:
        fs.remove(fs.join(storage, name))
    score = f"dev_{config.select_by}" if config.dev_data else None
    resources = {"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config.to_dict(), "score_attribute": score},
        scaling_config=ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=CheckpointConfig(
                num_to_keep=config.keep_checkpoints,
                checkpoint_score_attribute=score,
                checkpoint_score_order="max",
            ),
            failure_config=FailureConfig(max_failures=max_failures),
        ),
    )
    started = time.perf_counter()
    result = trainer.fit()
    summary = fs.read_json(fs.join(config.output_dir, "summary.json"))
    summary["ray"] = {
        "workers": num_workers,
        "use_gpu": use_gpu,
        "storage_path": storage,
        "name": name,
        "latest_checkpoint": result.checkpoint.path if result.checkpoint else None,
        "fit_seconds": round(time.perf_counter() - started, 1),
    }
    return summary


def run_job(job: TrainJob) -> dict:
    """Train as `job` says; when the config has a hybrid step (`--recipe hybrid`), fit it on the best
    model. Returns the summary without the per-evaluation history."""
    config = job.train_config()
    summary = run(
        config,
        num_workers=job.workers,
        use_gpu=job.use_gpu,
        storage_path=job.storage_path,
        resume=job.resume,
        max_failures=job.max_failures,
        cpus_per_worker=job.cpus_per_worker,
        address=job.address,
    )
    if config.hybrid:
        from elcore.hybrid import train_hybrid_linker

        summary["hybrid"] = train_hybrid_linker(config)
    return {k: v for k, v in summary.items() if k != "history"}


def main(argv: list[str] | None = None) -> dict:
    return run_command_line(TrainJob, run_job, "train", argv)


if __name__ == "__main__":
    main()
