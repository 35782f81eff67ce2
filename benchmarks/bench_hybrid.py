"""The hybrid linker on the kit: priors + fused candidates + learned head over a trained dense model.

    python benchmarks/bench_hybrid.py --dense-model runs/kit-frozen-unit/best   # or train it first:
    python benchmarks/bench_kit_accuracy.py --recipe frozen-entities --epochs 1 \
        --set max_train_examples=13000 --output-dir runs/kit-frozen-unit

Builds the prior table from the catalogue and the kit's *training* files, fits the fusion head on a
sample of them (leave-one-out counts; both as the `hybrid` recipe says), tunes the link threshold on webqsp/dev + mintaka/dev, and
reports on each dev set, against the full 126,534-entity catalogue with the same index:

- `fused` (the hybrid linker), `dense` (ELQ's score, same model and index, `use_priors=False`) and
  `priors` (the alias-table baseline: longest n-gram over the prior table, most-mentioned entity;
  no learning): entity, weak and strong P/R/F1 and the error breakdown;
- link throughput of fused vs dense at batch 64 on questions and on ~300-word documents.

Writes `benchmarks/results/<name>.json` and saves the hybrid linker to `--output` (not committed).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_link import documents  # noqa: E402
from benchmarks.common import longest_matches, machine_info, peak_rss_mib, write_result  # noqa: E402
from elcore import settings  # noqa: E402
from elcore.data import Example, read_examples  # noqa: E402
from elcore.evaluation import default_thresholds, evaluate_linker  # noqa: E402
from elcore.fusion import FusionConfig  # noqa: E402
from elcore.hybrid import HybridConfig, fit_hybrid  # noqa: E402
from elcore.linker import Linker  # noqa: E402
from elcore.metrics import Prediction, evaluate  # noqa: E402
from elcore.priors import PriorTable  # noqa: E402
from elcore.recipes import recipe_config  # noqa: E402

DEV_SETS = ("webqsp/dev", "mintaka/dev")


def alias_baseline(
    priors: PriorTable, catalogue, examples: list[Example], max_words: int = 8
) -> list[list[Prediction]]:
    """A dictionary linker over the prior table, no learning: left to right, the longest word n-gram
    that is a known surface (a single word only when it was linked in training, capitalised or at
    least 3 times); its most-mentioned entity (then the title match)."""

    def match(text: str, start: int, end: int, words: int) -> tuple[int, int] | None:
        pos = int(priors.find([text[start:end]])[0])
        if pos < 0:
            return None
        seen = priors.surface_totals[pos]
        if words > 1 or (seen > 0 and text[start : start + 1].isupper()) or seen >= 3:
            return end, int(priors.candidates(pos, top=1).rows[0])
        return None

    out = []
    for example in examples:
        links = longest_matches(example.text, r"\w+(?:[-'.]\w+)*", max_words, match)
        keys = catalogue.rows([r for _, _, r in links]) if links else []
        out.append(
            [Prediction(s, e, k["qid"] or k["id"], 0.0) for (s, e, _), k in zip(links, keys, strict=True)]
        )
    return out


def throughput(linker: Linker, texts: list[str], batch_size: int = 64) -> float:
    started = time.perf_counter()
    for lo in range(0, len(texts), batch_size):
        linker.link(texts[lo : lo + batch_size])
    return len(texts) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dense-model", default="runs/kit-frozen-unit/best")
    parser.add_argument("--output", default="runs/hybrid")
    parser.add_argument(
        "--linker", default=None, help="evaluate this saved hybrid linker instead of fitting one"
    )
    parser.add_argument(
        "--index", default=None, help="index directory (default: exact over the cached vectors)"
    )
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--prior-candidates", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cased-copies", type=float, default=None, help="override the recipe's share")
    parser.add_argument(
        "--unseen-surfaces",
        type=float,
        default=None,
        help="override the recipe's share of unseen gold surfaces",
    )
    parser.add_argument("--select-by", default="weak_f1")
    parser.add_argument("--throughput-texts", type=int, default=256)
    parser.add_argument("--name", default="hybrid")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    machine = machine_info()
    settings.hf_offline()
    kit = settings.kit_dir()
    data = lambda name: str(kit / "data" / f"{name}.jsonl")  # noqa: E731

    started = time.perf_counter()
    linker = Linker.from_pretrained(
        args.dense_model, catalogue=str(kit / "catalogue/entities.jsonl"), index=args.index, num_candidates=10
    )
    load_seconds = time.perf_counter() - started
    dense_threshold = linker.config.threshold
    dev = {name: read_examples(data(name)) for name in DEV_SETS}
    if args.linker:
        fitted = Linker.from_pretrained(args.linker, num_candidates=10)
        linker.priors, linker.fusion, linker.use_priors = fitted.priors, fitted.fusion, True
        fit = {**fitted.fusion.config.training, "threshold": linker.threshold, "linker": args.linker}
    else:
        config = HybridConfig.from_dict(
            recipe_config("hybrid")["hybrid"]
        )  # the recipe's priors and head data
        config.fusion = FusionConfig(hidden_size=args.hidden_size, prior_candidates=args.prior_candidates)
        config.epochs = args.epochs
        if args.cased_copies is not None:
            config.cased_copies = args.cased_copies
        if args.unseen_surfaces is not None:
            config.unseen_surfaces = args.unseen_surfaces
        fit = fit_hybrid(
            linker, config, dev=[e for name in DEV_SETS for e in dev[name]], select_by=args.select_by
        )
        print("fit", fit, flush=True)
        linker.save_pretrained(args.output)

    results: dict = {
        "fit": fit,
        "dense_threshold": dense_threshold,
        "load_seconds": round(load_seconds, 1),
        "sets": {},
    }
    for name, examples in dev.items():
        row: dict = {}
        for mode in ("fused", "dense"):
            linker.use_priors = mode == "fused"
            report = evaluate_linker(linker, examples, sweep=default_thresholds(fused=linker.fused))
            row[mode] = {
                "threshold": report["threshold"],
                "metrics": {k: report["metrics"][k] for k in ("strong", "weak", "entity")},
                "best_threshold_on_this_set": report["best_threshold"],
                "errors": report["errors"],
                "texts_per_second": report["timing"]["texts_per_second"],
            }
        baseline = evaluate(examples, alias_baseline(linker.priors, linker.catalogue, examples))
        row["priors"] = {"metrics": {k: baseline[k] for k in ("strong", "weak", "entity")}}
        results["sets"][name] = row
        print(
            name,
            {
                m: {k: round(v["metrics"][k]["f1"], 3) for k in ("entity", "weak", "strong")}
                for m, v in row.items()
            },
            flush=True,
        )

    questions = [e.text for e in dev["webqsp/dev"]][: args.throughput_texts]
    docs = documents(linker.catalogue, 32)
    speed: dict = {}
    for mode in ("dense", "fused"):
        linker.use_priors = mode == "fused"
        speed[mode] = {
            "questions_per_second": round(throughput(linker, questions), 2),
            "documents_per_second": round(throughput(linker, docs), 3),
        }
    speed["fused_over_dense_time"] = {
        kind: round(speed["dense"][f"{kind}_per_second"] / speed["fused"][f"{kind}_per_second"], 3)
        for kind in ("questions", "documents")
    }
    results["throughput_batch_64"] = speed
    results["peak_rss_mib"] = peak_rss_mib()
    results["torch_threads"] = torch.get_num_threads()
    return write_result(args.name, vars(args), results, machine)


if __name__ == "__main__":
    main()
