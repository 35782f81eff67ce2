"""Link throughput of the in-process linker against the kit's full catalogue (126,534 entities).

Measures, for questions (~12 wordpieces, WebQSP dev) and ~300-word documents, at batch sizes
1, 8 and 64: texts/s of the encoder alone (tokenise + context encoder forward) and of the full
linker (+ span scoring, one batched retrieval, joint scoring, overlap resolution), the ratio, and
the peak memory; with the exact index and with an approximate one.

    python benchmarks/bench_link.py [--model DIR] [--index-kinds flat hnsw] [--threads 2]

Writes benchmarks/results/link.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, peak_rss_mib, write_result  # noqa: E402
from elcore import settings  # noqa: E402
from elcore.catalogue import EntityCatalogue  # noqa: E402
from elcore.data import read_examples  # noqa: E402
from elcore.encoding import catalogue_vectors  # noqa: E402
from elcore.index import FaissIndex, IndexSpec  # noqa: E402
from elcore.linker import Linker  # noqa: E402
from elcore.model import ElqModel  # noqa: E402
from elcore.text import collate_windows, make_windows, tokenize  # noqa: E402


def documents(catalogue: EntityCatalogue, count: int, words: int = 300) -> list[str]:
    """~`words`-word documents made of consecutive catalogue descriptions (real Wikipedia prose)."""
    texts = [t for t in catalogue.table.column("text").to_pylist() if len(t) > 200]
    out, current = [], []
    for text in texts:
        current.extend(text.split())
        if len(current) >= words:
            out.append(" ".join(current[:words]))
            current = []
            if len(out) == count:
                break
    return out


@torch.inference_mode()
def encoder_only(linker: Linker, texts: list[str], batch_size: int) -> float:
    """Seconds to tokenise, window and run the context encoder (what the linker cannot avoid)."""
    model, config = linker.model, linker.config
    started = time.perf_counter()
    for lo in range(0, len(texts), batch_size):
        docs = tokenize(model.tokenizer, texts[lo : lo + batch_size])
        windows = make_windows(docs, config.max_context_length, config.context_stride)
        for w_lo in range(0, len(windows), linker.batch_size):
            batch = collate_windows(model.tokenizer, docs, windows[w_lo : w_lo + linker.batch_size])
            model.encode_context(batch.input_ids, batch.attention_mask)
    return time.perf_counter() - started


def full_linker(linker: Linker, texts: list[str], batch_size: int) -> tuple[float, int]:
    started = time.perf_counter()
    links = 0
    for lo in range(0, len(texts), batch_size):
        links += sum(map(len, linker.link(texts[lo : lo + batch_size])))
    return time.perf_counter() - started, links


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="elq model dir (default: untrained MiniLM, mean-pooled entities)")
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--documents", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--index-kinds", nargs="+", default=["flat", "hnsw"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    machine = machine_info()
    settings.hf_offline()
    torch.set_num_threads(args.threads)
    kit = settings.kit_dir()
    model = (
        ElqModel.from_pretrained(args.model)
        if args.model
        else ElqModel.from_base("minilm", entity_pooling="mean")
    )
    catalogue = EntityCatalogue.load(str(kit / "catalogue" / "entities.jsonl"))
    vectors = catalogue_vectors(model, catalogue)  # cached after the first run (tens of minutes)
    questions = [e.text for e in read_examples(str(kit / "data" / "webqsp" / "dev.jsonl"))][: args.questions]
    docs = documents(catalogue, args.documents)
    sets = {"questions": questions, "documents_300_words": docs}

    results = []
    for kind in args.index_kinds:
        started = time.perf_counter()
        index = FaissIndex.build(vectors, IndexSpec(kind=kind))
        build_seconds = time.perf_counter() - started
        linker = Linker(model, catalogue, index, batch_size=64, device="cpu")
        for name, texts in sets.items():
            for batch_size in args.batch_sizes:
                linker.link(texts[:batch_size])  # warm-up
                encoder_seconds = encoder_only(linker, texts, batch_size)
                link_seconds, links = full_linker(linker, texts, batch_size)
                row = {
                    "index": kind,
                    "index_build_seconds": round(build_seconds, 2),
                    "index_bytes_per_entity": round(index.bytes_per_entity(), 1),
                    "texts": name,
                    "count": len(texts),
                    "batch_size": batch_size,
                    "encoder_only_texts_per_second": round(len(texts) / encoder_seconds, 2),
                    "linker_texts_per_second": round(len(texts) / link_seconds, 2),
                    "linker_over_encoder_cost": round(link_seconds / encoder_seconds, 3),
                    "links": links,
                    "peak_rss_mib": peak_rss_mib(),
                }
                print(row, flush=True)
                results.append(row)
    run_settings = {**vars(args), "model_config": model.config.to_dict(), "entities": len(catalogue)}
    return write_result("link", run_settings, results, machine)


if __name__ == "__main__":
    main()
