"""Train the `webqsp` recipe end to end with 2 Ray Train workers on this machine (budget: < 60 min on 2 cores).

Rebuilds the model from the shipped MiniLM each time (nothing trained is committed) and records wall
time, training examples/s and the dev metrics of every epoch (webqsp/dev and mintaka/dev together,
and each on its own), then the best model re-scored against the whole kit catalogue.

CPU trade-off, recorded in the result: with a trainable entity encoder, scoring the dev sets against
all 126,534 entities means re-encoding the catalogue (~20 min on 2 cores) at every evaluation. So
each epoch's evaluation links against the dev gold entities plus `--dev-catalogue-sample` random
others (optimistic: fewer distractors; used to pick the best epoch), and only the best model is
scored against the whole catalogue at the end (`final_dev`; its threshold is saved with the model).
`--dev-catalogue-sample 0` evaluates every epoch on the whole catalogue (a GPU cluster's choice).

    python benchmarks/bench_train_webqsp.py                        # the full run; writes results/train_webqsp.json
    python benchmarks/bench_train_webqsp.py --max-train-examples 64 --epochs 1 --max-dev-examples 32 \\
        --catalogue-limit 2000 --dev-catalogue-sample 200 --name train_webqsp_smoke    # a 2-minute smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import PeakMemory, write_result  # noqa: E402
from elcore.catalogue import EntityCatalogue  # noqa: E402
from elcore.data import read_examples  # noqa: E402
from elcore.recipes import parse_overrides, recipe_config, set_value  # noqa: E402
from elcore.train_config import TrainConfig  # noqa: E402

NOTE = (
    "Per-epoch dev metrics link against the dev gold entities plus dev_catalogue_sample random catalogue "
    "entities (optimistic: fewer distractors than the full catalogue) and select the best epoch; final_dev "
    "re-scores that model against the whole catalogue (its best threshold is saved in the model config). "
    "examples_per_second counts training windows over training time only (evaluation excluded)."
)


def small_catalogue(config: TrainConfig, limit: int, out: Path, seed: int = 0) -> str:
    """The gold entities of the (limited) train and dev data plus random others, `limit` in all at least."""
    catalogue = EntityCatalogue.load(config.catalogue)
    examples = [e for url in config.train_data for e in read_examples(url)][: config.max_train_examples]
    examples += [e for url in config.dev_data for e in read_examples(url)[: config.max_dev_examples]]
    gold = catalogue.lookup([m.entity for e in examples for m in e.mentions])
    gold = np.unique(gold[gold >= 0])
    rest = np.setdiff1d(np.arange(len(catalogue)), gold)
    extra = np.random.default_rng(seed).choice(
        rest, size=max(0, min(limit - len(gold), len(rest))), replace=False
    )
    subset = EntityCatalogue(catalogue.table.take(np.sort(np.concatenate([gold, extra]))))
    path = out / "catalogue.parquet"
    subset.save(str(path))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--max-dev-examples", type=int, help="per dev file")
    parser.add_argument(
        "--dev-catalogue-sample",
        type=int,
        default=10_000,
        help="random entities besides the dev gold ones at each evaluation (0: whole catalogue)",
    )
    parser.add_argument("--no-final-full-eval", action="store_true")
    parser.add_argument(
        "--catalogue-limit", type=int, help="smoke tests: train and evaluate on a sub-catalogue"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="other TrainConfig fields"
    )
    parser.add_argument(
        "--work-dir", help="keep the run (model, checkpoints) here; default: a temp dir, deleted"
    )
    parser.add_argument("--name", default="train_webqsp", help="result name: benchmarks/results/<name>.json")
    args = parser.parse_args(argv)

    import ray

    from pipelines.train import run

    temp = None if args.work_dir else tempfile.TemporaryDirectory(prefix="elq-bench-train-")
    work = Path(args.work_dir or temp.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    values = recipe_config("webqsp") | {
        "output_dir": str(work / "run"),
        "dev_catalogue_sample": args.dev_catalogue_sample,
        "final_full_eval": not args.no_final_full_eval,
        "max_train_examples": args.max_train_examples,
        "max_dev_examples": args.max_dev_examples,
    }
    if args.epochs:
        values["epochs"] = args.epochs
    for key, value in parse_overrides(args.set).items():
        set_value(values, key, value)
    config = TrainConfig.from_dict(values)
    if args.catalogue_limit:
        config.catalogue = small_catalogue(config, args.catalogue_limit, work)

    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    with PeakMemory() as memory:
        summary = run(config, num_workers=args.workers, resume=False)
    wall = time.perf_counter() - started
    ray.shutdown()

    per_epoch = [r for r in summary["history"] if "dev_weak_f1" in r]
    results = {
        "wall_seconds": round(wall, 1),
        "fit_seconds": summary["ray"]["fit_seconds"],
        "train_seconds": summary["train_seconds"],
        "examples_per_second": summary["examples_per_second"],
        "steps": summary["steps"],
        "train_examples": summary["train_examples"],
        "train_windows": summary["train_windows"],
        "dev_catalogue_entities": summary["dev_catalogue_entities"],
        "per_epoch": per_epoch,
        "best_step": summary["best_step"],
        "best_dev_weak_f1_sampled_catalogue": summary.get("best_dev_weak_f1"),
        "final_dev": summary.get("final_dev"),
        "peak_memory_mib": memory.peak_mib,
    }
    settings = {
        "recipe": "webqsp",
        "workers": args.workers,
        "cpus_per_worker": 1,
        "catalogue_limit": args.catalogue_limit,
        "note": NOTE,
        "config": config.to_dict(),
    }
    write_result(args.name, settings, results)
    if temp is not None:
        temp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
