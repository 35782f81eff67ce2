"""`RayTrainRuntime`: what `elcore.training.train` needs from Ray Train, one instance per worker.

Rank and world size from `ray.train.get_context()`, the DDP-wrapped model (`ray.train.torch.prepare_model`),
the latest checkpoint (`ray.train.get_checkpoint()`), reports through `ray.train.report`, and the collectives
the loop uses (all-gather of encoded rows, an all-true vote, a weight broadcast) over the process group
TorchTrainer set up. `elcore.train_runtime.TrainingRuntime` is the one-process version.
"""

from __future__ import annotations

import numpy as np
import torch

from elcore.train_runtime import TrainingRuntime


class RayTrainRuntime(TrainingRuntime):
    """The Ray Train side of `elcore.training.train`: one instance per worker."""

    def __init__(self, score_attribute: str | None = None) -> None:
        import ray.train

        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.score_attribute = score_attribute

    def device(self) -> torch.device:
        import ray.train.torch

        return ray.train.torch.get_device()

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        import ray.train.torch

        # Unused parameters: the encoders' poolers never train, and a batch without linked gold
        # mentions does not run the entity encoder; each rank may differ, so DDP must look.
        return ray.train.torch.prepare_model(model, parallel_strategy_kwargs={"find_unused_parameters": True})

    def latest_checkpoint(self, output_dir: str) -> str | None:
        import pyarrow.fs
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
            return checkpoint.path
        return checkpoint.to_directory()

    def report(self, metrics: dict, checkpoint_dir: str | None, output_dir: str, keep: int = 2) -> None:
        """Every rank reports (Ray requires it); rank 0 with the checkpoint, others with their part or None."""
        import ray.train

        if self.score_attribute and self.score_attribute not in metrics:
            # A checkpoint without an evaluation ranks below every scored one (F1 >= 0) and is kept
            # only while it is the latest. Not NaN: Ray's run snapshot stores NaN as null.
            metrics = {**metrics, self.score_attribute: -1.0}
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"step-{metrics['step']:08d}")

    # collectives over the process group TorchTrainer set up --------------------------------------
    def _comm_device(self) -> torch.device:
        import torch.distributed as dist

        return self.device() if dist.get_backend() == "nccl" else torch.device("cpu")

    def all_gather_rows(self, local: np.ndarray) -> np.ndarray:
        import torch.distributed as dist

        if self.world_size == 1:
            return local
        device = self._comm_device()
        size = torch.tensor([len(local)], device=device)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes, size)
        longest = int(max(s.item() for s in sizes))
        padded = torch.zeros((longest, *local.shape[1:]), dtype=torch.from_numpy(local).dtype, device=device)
        padded[: len(local)] = torch.from_numpy(local).to(device)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return np.concatenate([p[: int(s.item())].cpu().numpy() for p, s in zip(parts, sizes, strict=True)])

    def all_true(self, flag: bool) -> bool:
        import torch.distributed as dist

        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)], device=self._comm_device())
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def broadcast_weights(self, model: torch.nn.Module) -> None:
        import torch.distributed as dist

        if self.world_size == 1:
            return
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)
