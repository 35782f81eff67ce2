"""Train a recipe on the kit and report dev accuracy against the kit's full catalogue, with an error analysis.

    python benchmarks/bench_kit_accuracy.py --recipe frozen-entities --extra-train simplequestions --epochs 2

Trains (single process, or `--workers N` with Ray Train), then links webqsp/dev and mintaka/dev with
the best model against all 126,534 entities and writes `benchmarks/results/kit_accuracy.json`:
entity-level and strong/weak span P/R/F1 per set, split by whether the gold entity has description
text, and where the errors are: gold spans with no overlapping prediction (mention detection),
predicted at the right place with the wrong entity while the gold was among the retrieved
candidates (ranking), or not retrieved at all (retrieval), and gold entities missing from the
catalogue. Nothing trained is committed: the script rebuilds the model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, write_result  # noqa: E402
from elcore import settings  # noqa: E402
from elcore.data import read_examples, write_examples  # noqa: E402
from elcore.evaluation import default_thresholds, evaluate_linker  # noqa: E402
from elcore.linker import Linker  # noqa: E402
from elcore.recipes import parse_overrides, recipe_config, set_value  # noqa: E402
from elcore.train_config import TrainConfig  # noqa: E402
from elcore.training import train  # noqa: E402


def spanned_only(url: str, out: Path) -> str:
    """Examples of `url` whose gold mentions all have spans (silver SimpleQuestions spans included)."""
    examples = [e for e in read_examples(url) if e.mentions and all(m.has_span for m in e.mentions)]
    write_examples(str(out), examples)
    return str(out)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="frozen-entities")
    parser.add_argument(
        "--extra-train", nargs="*", default=["simplequestions"], choices=["simplequestions", "anchors"]
    )
    parser.add_argument("--set", action="append", default=[], help="TrainConfig override name=value")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="Ray Train workers (0: this process)")
    parser.add_argument("--output-dir", default="runs/kit-accuracy")
    parser.add_argument("--skip-training", action="store_true", help="evaluate output-dir/best as it is")
    parser.add_argument("--name", default="kit_accuracy")
    args = parser.parse_args(argv)
    machine = machine_info()
    settings.hf_offline()
    kit = settings.kit_dir()

    values = recipe_config(args.recipe)
    work = Path(tempfile.mkdtemp(prefix="elq-kit-"))
    if "simplequestions" in args.extra_train:
        values["train_data"].append(
            spanned_only(str(kit / "data/simplequestions/train.jsonl"), work / "sq.jsonl")
        )
    if "anchors" in args.extra_train:
        values["train_data"] += [str(kit / "data/anchors" / f) for f in ("bootleg.jsonl", "oke_train.jsonl")]
    values.update(epochs=args.epochs, output_dir=args.output_dir)
    for key, value in parse_overrides(args.set).items():
        set_value(values, key, value)
    config = TrainConfig.from_dict(values)

    started = time.perf_counter()
    summary = None
    if not args.skip_training:
        if args.workers:
            from pipelines.train import run

            summary = run(config, num_workers=args.workers)
        else:
            summary = train(config)
    train_seconds = time.perf_counter() - started

    linker = Linker.from_pretrained(f"{args.output_dir}/best", catalogue=config.catalogue, num_candidates=10)
    results = {"threshold": linker.config.threshold, "train_seconds": round(train_seconds, 1), "sets": {}}
    for url in config.dev_data:
        examples = read_examples(url)
        report = evaluate_linker(linker, examples, sweep=default_thresholds())
        name = f"{Path(url).parent.name}/{Path(url).stem}"
        results["sets"][name] = {
            "metrics": report["metrics"],
            "timing": report["timing"],
            "best_threshold_on_this_set": report["best_threshold"],
            "errors": report["errors"],
        }
        print(name, {k: report["metrics"][k]["f1"] for k in ("strong", "weak", "entity")}, flush=True)
    if summary:
        results["training"] = {k: v for k, v in summary.items() if k != "history"}
        results["history"] = summary.get("history", [])
    run_settings = {**vars(args), "train_config": config.to_dict()}
    return write_result(args.name, run_settings, results, machine)


if __name__ == "__main__":
    main()
