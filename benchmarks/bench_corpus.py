"""Corpus linking: documents/s for ~300-word documents, the Ray pipeline (1 and 2 actors) against the
single-process linker, with peak memory, and a check that the Parquet links equal the single-process links.

Documents are kit questions joined until each has `--words` words (real text, many entity mentions). The
linker is the embedded default (`elq build-default`) when present, else MiniLM with an untrained mention head
over the first `--entities` kit entities and an exact index (it links plenty, so the comparison is not empty).
Ray timings are end-to-end (`run`: read, actor start and model load, link, write; `ray.init` excluded).

    python benchmarks/bench_corpus.py --docs 80
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PeakMemory, machine_info, write_result  # noqa: E402


def make_docs(kit: Path, count: int, words: int) -> list[dict]:
    questions = []
    for name in ("webqsp/dev.jsonl", "mintaka/dev.jsonl", "graphquestions/train.jsonl"):
        path = kit / "data" / name
        if path.exists():
            questions += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    docs, current, n = [], [], 0
    for q in itertools.cycle(questions):
        current.append(q)
        n += len(q.split())
        if n >= words:
            docs.append({"id": f"doc{len(docs):05d}", "text": " ".join(current)})
            current, n = [], 0
            if len(docs) == count:
                return docs
    return docs


def build_linker(work: Path, kit: Path, entities: int) -> str:
    from elcore import settings
    from elcore.catalogue import EntityCatalogue
    from elcore.encoding import catalogue_vectors
    from elcore.index import FaissIndex
    from elcore.linker import Linker
    from elcore.model import ElqModel

    default = Path(settings.default_model_dir())
    if (default / "elq_config.json").exists() and (default / "index" / "index.json").exists():
        return str(default)
    with open(kit / "catalogue" / "entities.jsonl", encoding="utf-8") as f:
        catalogue = EntityCatalogue.from_records(json.loads(line) for line in itertools.islice(f, entities))
    model = ElqModel.from_base("minilm")
    index = FaissIndex.build(catalogue_vectors(model, catalogue, cache=False, progress=False))
    Linker(model, catalogue, index, device="cpu").save_pretrained(str(work / "linker"))
    return str(work / "linker")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=80)
    p.add_argument("--words", type=int, default=300)
    p.add_argument("--entities", type=int, default=2000)
    p.add_argument("--docs-per-part", type=int, default=10)
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    machine = machine_info()

    import ray
    import torch

    from elcore import settings
    from elcore.corpus import link_documents
    from elcore.linker import Linker
    from pipelines.common import ActorResources
    from pipelines.corpus_output import read_output
    from pipelines.link_corpus import LinkCorpusConfig, run

    settings.hf_offline()
    cpus = os.cpu_count() or 1
    kit = settings.kit_dir()
    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    linker_dir = build_linker(work, kit, args.entities)
    docs = make_docs(kit, args.docs, args.words)
    corpus = work / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))

    torch.set_num_threads(cpus)
    with PeakMemory() as memory:
        started = time.perf_counter()
        linker = Linker.from_pretrained(linker_dir, device="cpu")
        loaded = time.perf_counter()
        results = link_documents(linker, docs)
        linked = time.perf_counter()
    expected = {r.id: [(k.start, k.end, k.entity_id) for k in r.links] for r in results if r.links}
    scores = {(r.id, k.start, k.end): k.score for r in results for k in r.links}
    single = {
        "load_seconds": round(loaded - started, 2),
        "link_seconds": round(linked - loaded, 2),
        "docs_per_second_link": round(len(docs) / (linked - loaded), 3),
        "docs_per_second_end_to_end": round(len(docs) / (linked - started), 3),
        "links": sum(len(v) for v in expected.values()),
        "peak_memory_mib": memory.peak_mib,
        "torch_threads": cpus,
    }
    print(json.dumps({"single_process": single}), file=sys.stderr)
    del linker

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    runs = []
    for actors in args.actors:
        config = LinkCorpusConfig(
            input=str(corpus),
            output=str(work / f"links-{actors}"),
            model=linker_dir,
            docs_per_part=args.docs_per_part,
            resources=ActorResources(num_actors=actors, torch_threads=max(1, cpus // actors)),
        )
        with PeakMemory() as memory:
            summary = run(config)
        table = read_output(config.output)
        got: dict = {}
        for row in table.to_pylist():
            got.setdefault(row["doc_id"], []).append((row["start"], row["end"], row["entity_id"]))
        score_diff = max(
            [
                abs(r["score"] - scores[(r["doc_id"], r["start"], r["end"])])
                for r in table.to_pylist()
                if (r["doc_id"], r["start"], r["end"]) in scores
            ]
            or [0.0]
        )
        rate = summary["docs"] / summary["seconds"]
        runs.append(
            {
                "actors": actors,
                "torch_threads_per_actor": config.resources.torch_threads,
                "seconds": summary["seconds"],
                "docs_per_second": round(rate, 3),
                "vs_single_process_link": round(rate / single["docs_per_second_link"], 3),
                "vs_single_process_end_to_end": round(rate / single["docs_per_second_end_to_end"], 3),
                "links": summary["links"],
                "links_equal_single_process": got == expected,
                "max_score_diff": score_diff,
                "peak_memory_mib_all_processes": memory.peak_mib,
                "peak_memory_mib_largest_process": memory.peak_process_mib,
            }
        )
        print(json.dumps(runs[-1]), file=sys.stderr)
    ray.shutdown()
    settings_out = {
        **vars(args),
        "linker": linker_dir,
        "windows": "the linker's (max_context_length, stride)",
    }
    return write_result(
        "corpus", settings_out, {"docs": len(docs), "single_process": single, "ray": runs}, machine
    )


if __name__ == "__main__":
    main()
