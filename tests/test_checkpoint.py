"""elcore.checkpoint: a checkpoint counts as finished only when whole, and loads only when intact."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from elcore.checkpoint import finished_checkpoints, load_checkpoint, write_checkpoint
from elcore.errors import ConfigError
from tests.training_data import tiny_config, write_tiny_data


@pytest.fixture()
def saved(tiny_model, small_catalogue, tiny_base_dir, tmp_path):
    config = tiny_config(tiny_base_dir, write_tiny_data(tmp_path / "data", small_catalogue), tmp_path / "out")
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    directory = write_checkpoint(tiny_model, optimizer, scheduler, None, {"step": 7}, config, 0, 1, None)
    root = tmp_path / "checkpoints"
    shutil.copytree(directory, root / "step-00000007")
    shutil.rmtree(directory)
    return root, (tiny_model, optimizer, scheduler, None, config, 0, 1)


def test_a_whole_checkpoint_is_finished_and_loads(saved):
    root, args = saved
    assert (root / "step-00000007" / "parts" / "rank-0.json").exists()
    assert finished_checkpoints(str(root)) == ["step-00000007"]
    assert load_checkpoint(str(root / "step-00000007"), *args).state == {"step": 7}


def test_a_copy_cut_short_is_not_finished(saved):
    root, _ = saved
    weights = root / "step-00000007" / "optimizer.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    assert finished_checkpoints(str(root)) == []
    (root / "step-00000007" / "parts" / "rank-0.json").unlink()  # the record never arrived
    weights.unlink()
    assert finished_checkpoints(str(root)) == []


def test_a_checkpoint_of_an_earlier_version_listed_in_files_json_still_resumes(saved):
    root, args = saved
    step = root / "step-00000007"
    record = json.loads((step / "parts" / "rank-0.json").read_text())
    (step / "files.json").write_text(json.dumps(record["files"]))
    shutil.rmtree(step / "parts")
    assert finished_checkpoints(str(root)) == ["step-00000007"]
    assert load_checkpoint(str(step), *args).state == {"step": 7}
    weights = step / "optimizer.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    assert finished_checkpoints(str(root)) == []


def test_damaged_bytes_are_refused_at_load(saved):
    root, args = saved
    weights = root / "step-00000007" / "optimizer.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="optimizer.safetensors file's checksum differs from its record"):
        load_checkpoint(str(root / "step-00000007"), *args)
