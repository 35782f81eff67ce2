"""Spans in overlapping windows: scored once in their most central window (`central_spans`) or in every
window with the best kept (ELQ). Kit dev questions joined into ~300-word documents (gold offsets moved
with them), so every document spans many windows; entity, weak and strong F1 and spans searched per
document for both ways, with the same linker.

    OMP_NUM_THREADS=1 python benchmarks/bench_windows.py --linker runs/hybrid5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_info, write_result  # noqa: E402


def join_examples(examples, words: int):
    """Examples concatenated (one space apart) into documents of about `words` words, spans shifted."""
    from elcore.data import Example, GoldMention

    docs, texts, mentions = [], [], []

    def flush() -> None:
        docs.append(Example(f"doc{len(docs):04d}", " ".join(texts), tuple(mentions)))
        texts.clear()
        mentions.clear()

    offset = 0
    for example in examples:
        for m in example.mentions:
            start = None if m.start is None else m.start + offset
            end = None if m.end is None else m.end + offset
            mentions.append(GoldMention(start, end, m.entity))
        texts.append(example.text)
        offset += len(example.text) + 1
        if sum(len(t.split()) for t in texts) >= words:
            flush()
            offset = 0
    if texts:
        flush()
    return docs


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--linker", required=True)
    p.add_argument("--words", type=int, default=300)
    p.add_argument("--limit", type=int, default=1000, help="dev questions per set")
    p.add_argument("--name", default="windows")
    args = p.parse_args(argv)
    machine = machine_info()

    import torch

    from elcore import settings
    from elcore.data import read_examples
    from elcore.evaluation import evaluate_linker
    from elcore.linker import Linker, LinkTimings

    settings.hf_offline()
    torch.set_num_threads(1)
    linker = Linker.from_pretrained(args.linker, device="cpu")
    results = []
    for name in ("webqsp", "mintaka"):
        examples = read_examples(str(settings.kit_dir() / "data" / name / "dev.jsonl"))[: args.limit]
        docs = join_examples(examples, args.words)
        for central in (True, False):
            linker.model.config = linker.config.replace(central_spans=central)
            linker.timings = LinkTimings()
            started = time.perf_counter()
            metrics = evaluate_linker(linker, docs)["metrics"]
            row = {
                "set": f"{name}/dev joined into {args.words}-word documents",
                "documents": len(docs),
                "windows_per_doc": round(linker.timings.windows / len(docs), 1),
                "central_spans": central,
                **{f"{k}_f1": round(metrics[k]["f1"], 4) for k in ("entity", "weak", "strong")},
                "spans_searched_per_doc": round(linker.timings.spans_searched / len(docs), 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(row, file=sys.stderr)
            results.append(row)
    return write_result(args.name, vars(args), results, machine)


if __name__ == "__main__":
    main()
