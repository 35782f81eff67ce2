"""The embedded default on everyday text: `benchmarks/data/everyday.jsonl` (hand-written, see
`benchmarks/data/make_everyday.py`), fused vs dense score vs an exact-title matcher, plus what the
README's sentences link to and how long one `elq link "..."` takes from the shell.

    python benchmarks/bench_default.py [--model DIR]     # default: the built embedded default
    python benchmarks/bench_default.py --builds DIR ...   # several builds on both hand-written sets

Writes `benchmarks/results/default.json` (with `--builds`: `default_builds.json`, entity and strong
P/R/F1 of each build on `everyday_dev.jsonl`, the set changes are chosen on, and `everyday.jsonl`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import longest_matches, machine_info, write_result  # noqa: E402
from elcore import default_model, settings  # noqa: E402
from elcore.data import read_examples  # noqa: E402
from elcore.evaluation import evaluate_linker  # noqa: E402
from elcore.linker import Linker, require_default_linker  # noqa: E402
from elcore.metrics import Prediction, evaluate  # noqa: E402

EVERYDAY = Path(__file__).resolve().parent / "data" / "everyday.jsonl"
EVERYDAY_DEV = default_model.EVERYDAY_DEV
README_SENTENCES = [
    "Who painted the Mona Lisa, and where does it hang?",
    "Albert Einstein developed the theory of relativity.",
    "The Amazon River flows through Brazil into the Atlantic Ocean.",
]


def title_matcher(linker: Linker, texts: list[str], max_words: int = 6) -> list[list[Prediction]]:
    """The 20-line baseline: longest word n-gram equal (case-insensitively) to a catalogue title."""
    titles = linker.catalogue.table.column("title").to_pylist()
    ids = linker.catalogue.table.column("id").to_pylist()
    by_title = {t.lower(): i for t, i in zip(titles, ids, strict=True)}

    def match(text: str, start: int, end: int, words: int) -> tuple[int, str] | None:
        ends = [end + 1, end] if text[end : end + 1] == "." else [end]  # "Jr.", "D.C."
        found = [(e, by_title[text[start:e].lower()]) for e in ends if text[start:e].lower() in by_title]
        return found[0] if found else None

    return [
        [
            Prediction(s, e, entity)
            for s, e, entity in longest_matches(text, r"\w+(?:[-'.,]\w+)*", max_words, match)
        ]
        for text in texts
    ]


def compare_builds(model_dirs: list[str]) -> dict:
    """Entity and strong P/R/F1 of each build (its own threshold) on both hand-written sets."""
    sets = {"everyday_dev": read_examples(str(EVERYDAY_DEV)), "everyday": read_examples(str(EVERYDAY))}
    builds = {}
    for model_dir in model_dirs:
        linker = Linker.from_pretrained(model_dir, num_candidates=3)
        row: dict = {"threshold": linker.threshold}
        for name, examples in sets.items():
            metrics = evaluate_linker(linker, examples)["metrics"]
            row[name] = {k: metrics[k] for k in ("entity", "strong")}
        print(model_dir, {n: round(row[n]["entity"]["f1"], 3) for n in sets}, flush=True)
        builds[model_dir] = row
    return {"golds": {name: sum(len(e.mentions) for e in ex) for name, ex in sets.items()}, "builds": builds}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--builds", nargs="+", default=None, help="linker directories to compare")
    args = parser.parse_args(argv)
    machine = machine_info()
    settings.hf_offline()
    if args.builds:
        return write_result("default_builds", vars(args), compare_builds(args.builds), machine)
    model_dir = args.model or require_default_linker()
    linker = Linker.from_pretrained(model_dir, num_candidates=3)
    examples = read_examples(str(EVERYDAY))
    results: dict = {"examples": len(examples), "golds": sum(len(e.mentions) for e in examples), "modes": {}}
    for mode in ("fused", "dense"):
        linker.use_priors = mode == "fused" and linker.priors is not None
        report = evaluate_linker(linker, examples)
        results["modes"][mode] = {
            "threshold": report["threshold"],
            **{k: report["metrics"][k] for k in ("entity", "strong", "weak")},
            "errors": report["errors"],
        }
    baseline = evaluate(examples, title_matcher(linker, [e.text for e in examples]))
    results["modes"]["exact_title_matcher"] = {k: baseline[k] for k in ("entity", "strong", "weak")}
    linker.use_priors = linker.priors is not None
    results["readme_sentences"] = [
        [(x.mention, x.title, round(x.score, 2)) for x in links] for links in linker.link(README_SENTENCES)
    ]
    runs = []
    for _ in range(5):  # one start is noisy (page cache, the pyenv shim): the median of five
        started = time.perf_counter()
        subprocess.run(
            ["elq", "link", "--model", model_dir, README_SENTENCES[1]], check=True, capture_output=True
        )
        runs.append(round(time.perf_counter() - started, 2))
    results["elq_link_one_sentence_seconds"] = sorted(runs)[len(runs) // 2]
    results["elq_link_one_sentence_runs"] = runs
    for mode, row in results["modes"].items():
        print(mode, {k: round(row[k]["f1"], 3) for k in ("entity", "strong", "weak")}, flush=True)
    return write_result("default", vars(args), results, machine)


if __name__ == "__main__":
    main()
