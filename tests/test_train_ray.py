"""Ray Train with 2 CPU workers on a tiny model (loss goes down, a killed run resumes exactly), and the recipes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from training_data import checkpoint_weights, tiny_config, without_timings, write_tiny_data

from elcore.errors import ConfigError
from elcore.recipes import RECIPES, parse_overrides, recipe, recipe_config
from tests.killing import kill_when


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    # Two logical CPUs: one per training worker (the Train controller asks for none).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_two_workers_learn_and_a_killed_run_resumes_exactly(
    local_ray, tiny_base_dir, small_catalogue, tmp_path
):
    from pipelines.train import run

    data = write_tiny_data(tmp_path / "data", small_catalogue)
    # 30 windows -> 15 per worker -> 8 steps of 2 per epoch; dev evaluation at epoch ends,
    # checkpoints also every 6 steps (mid-epoch, with each worker's mined hard negatives).
    common = {
        "epochs": 3,
        "learning_rate": 3e-3,
        "batch_size": 2,
        "hard_negatives": 1,
        "checkpoint_every_steps": 6,
        "dev_catalogue_sample": 3,
    }
    whole = run(tiny_config(tiny_base_dir, data, tmp_path / "whole", **common), num_workers=2)
    assert whole["world_size"] == 2 and whole["steps"] == 24
    losses = [r["train_loss"] for r in whole["history"]]
    assert sum(losses[-2:]) / 2 < 0.8 * losses[0], losses
    assert (tmp_path / "whole" / "best" / "elq_config.json").exists()
    assert whole["final_dev"]["catalogue_entities"] == 10

    # The same run with its driver SIGKILLed (its own local Ray) once the checkpoint at step 12, mid-epoch,
    # holds both workers' mined negatives; then resumed here.
    killed = tiny_config(tiny_base_dir, data, tmp_path / "killed", **common)
    config_file = tmp_path / "killed.json"
    config_file.write_text(json.dumps(killed.to_dict()))
    command = [sys.executable, "-m", "pipelines.train", "--config", str(config_file), "--workers", "2"]
    negatives = {"negatives-rank0.safetensors", "negatives-rank1.safetensors"}
    kill_when(
        command,
        lambda: any(
            negatives <= {p.name for p in step.iterdir()}
            for step in (tmp_path / "killed" / "ray").glob("*/step-00000012")
        ),
    )
    assert not (tmp_path / "killed" / "summary.json").exists()
    resumed = run(tiny_config(tiny_base_dir, data, tmp_path / "killed", **common), num_workers=2)

    assert without_timings(resumed["history"]) == without_timings(whole["history"])
    assert resumed["best_step"] == whole["best_step"]
    a = checkpoint_weights(whole["ray"]["latest_checkpoint"])
    b = checkpoint_weights(resumed["ray"]["latest_checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- recipes (no Ray)
@pytest.mark.parametrize("name", [n for n in RECIPES if n != "finetune"])
def test_recipes_load_and_validate(name, kit_dir):
    config = recipe(name)
    assert config.recipe == name
    assert all(Path(p).exists() for p in [*config.train_data, *config.dev_data, config.catalogue])
    assert [Path(p).parent.name for p in config.dev_data] == ["webqsp", "mintaka"]


def test_recipe_details(kit_dir, tmp_path):
    frozen = recipe("frozen-entities")
    assert frozen.freeze_entities and 8 <= frozen.hard_negatives <= 15
    assert frozen.model["entity_pooling"] == "mean"
    assert recipe("wiki").hard_negatives > 0 and recipe("wiki").freeze_entities
    assert all("/anchors/" in p for p in recipe("wiki").train_data)
    assert not recipe("webqsp").freeze_entities and recipe("webqsp").init_model is None
    with pytest.raises(ConfigError, match="recipe 'finetune'.*needs init_model"):
        recipe("finetune")
    assert recipe("finetune", {"init_model": str(tmp_path / "wiki" / "best")}).init_model.endswith("best")


def test_bad_recipe_values_are_clear_errors(kit_dir):
    with pytest.raises(ConfigError, match="unknown recipe 'webqsb'; known recipes: webqsp, wiki, finetune"):
        recipe_config("webqsb")
    with pytest.raises(ConfigError, match="epochs='three': expected int"):
        recipe("webqsp", {"epochs": "three"})
    with pytest.raises(ConfigError, match="entity_pooling"):
        recipe("webqsp", {"model.entity_pooling": "max"})
    with pytest.raises(ConfigError, match="expected name=value"):
        parse_overrides(["epochs"])
    assert parse_overrides(["epochs=2", "amp=bf16"]) == {"epochs": 2, "amp": "bf16"}
    assert recipe("webqsp", {"model.entity_pooling": "cls"}).model["max_context_length"] == 32


def test_cli_reports_a_bad_recipe_without_starting_ray(capsys):
    from pipelines.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--recipe", "nope"])
    assert exit_info.value.code == 2 and "unknown recipe 'nope'" in capsys.readouterr().err


def test_one_job_config_for_elq_train_and_the_module(tmp_path):
    import json

    from pipelines.options import config_options
    from pipelines.train_job import TrainJob

    (tmp_path / "extra.json").write_text(json.dumps({"epochs": 5, "batch_size": 8}))
    job = TrainJob(recipe="frozen-entities", config=str(tmp_path / "extra.json"), set=["epochs=2"])
    config = job.train_config()
    assert (config.epochs, config.batch_size, config.freeze_entities) == (2, 8, True)  # recipe < file < --set
    names = {o.name for o in config_options(TrainJob)}
    assert {"workers", "storage_path", "resume", "max_failures", "cpus_per_worker"} <= names
    assert TrainJob().workers == 0
