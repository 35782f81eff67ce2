"""Entity embedding throughput: the Ray pipeline (1 and 2 actors) against the same encoder in one plain process.

The model is the shipped MiniLM (`ElqModel.from_base("minilm")`), the entities the first `--entities` of the kit
catalogue (real titles and descriptions), the output float16 Parquet. Entities/s are end-to-end for the Ray
runs (catalogue read, actor start, model load, encode, write; `ray.init` excluded) and are compared with the
plain process's encode-only rate (the strict comparison) and its end-to-end rate (load + encode + write).
The plain process uses all CPUs for torch; 1 actor gets all of them too, 2 actors one each.

    python benchmarks/bench_embed.py --entities 4000
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_info, write_result  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--entities", type=int, default=4000)
    p.add_argument("--catalogue", help="jsonl catalogue (default: the kit's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rows-per-part", type=int, default=500)
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    machine = machine_info()

    import ray
    import torch

    from elcore import settings
    from elcore.catalogue import EntityCatalogue
    from elcore.embeddings import read_embeddings
    from elcore.encoding import encode_entities
    from elcore.model import ElqModel
    from pipelines.common import ActorResources
    from pipelines.embed_entities import EmbedEntitiesConfig, run

    settings.hf_offline()
    cpus = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    source = args.catalogue or str(settings.kit_dir() / "catalogue" / "entities.jsonl")
    with open(source, encoding="utf-8") as f:
        lines = list(itertools.islice(f, args.entities))
    catalogue_url = str(work / "entities.jsonl")
    Path(catalogue_url).write_text("".join(lines))
    model_dir = str(work / "model")
    ElqModel.from_base("minilm").save_pretrained(model_dir)

    def plain_run() -> tuple[dict, np.ndarray]:
        """Load, encode (length-sorted batches, all CPUs), write one part, in this process."""
        from elcore.embeddings import write_embeddings_part

        torch.set_num_threads(cpus)
        started = time.perf_counter()
        catalogue = EntityCatalogue.load(catalogue_url)
        model = ElqModel.from_pretrained(model_dir)
        loaded = time.perf_counter()
        vectors = encode_entities(
            model, catalogue.entity_inputs(np.arange(len(catalogue))), args.batch_size, progress=False
        )
        encoded = time.perf_counter()
        table = catalogue.table
        write_embeddings_part(
            str(work / "plain"),
            "part-00000",
            np.arange(len(catalogue)),
            table.column("id"),
            table.column("qid"),
            vectors,
            "float16",
        )
        finished = time.perf_counter()
        return {
            "encode_seconds": round(encoded - loaded, 2),
            "end_to_end_seconds": round(finished - started, 2),
            "entities_per_second_encode": round(len(catalogue) / (encoded - loaded), 2),
            "entities_per_second_end_to_end": round(len(catalogue) / (finished - started), 2),
        }, vectors

    # The machine may be shared: the plain process runs before and after the Ray runs, and the Ray runs are
    # compared with the mean of the two.
    before, reference = plain_run()
    n = len(reference)
    print(json.dumps({"plain_before": before}), file=sys.stderr)

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    runs = []
    for actors in args.actors:
        config = EmbedEntitiesConfig(
            catalogue=catalogue_url,
            model=model_dir,
            output=str(work / f"ray-{actors}"),
            batch_size=args.batch_size,
            rows_per_part=args.rows_per_part,
            resources=ActorResources(num_actors=actors, torch_threads=max(1, cpus // actors)),
        )
        summary = run(config)
        vectors, _ = read_embeddings(config.output)
        rate = n / summary["seconds"]
        runs.append(
            {
                "actors": actors,
                "torch_threads_per_actor": config.resources.torch_threads,
                "seconds": summary["seconds"],
                "entities_per_second": round(rate, 2),
                "max_abs_diff_vs_plain": float(
                    np.abs(vectors - reference.astype(np.float16).astype(np.float32)).max()
                ),
            }
        )
        print(json.dumps(runs[-1]), file=sys.stderr)
    ray.shutdown()
    after, _ = plain_run()
    print(json.dumps({"plain_after": after}), file=sys.stderr)
    plain = {key: round((before[key] + after[key]) / 2, 2) for key in before}
    plain["torch_threads"] = cpus
    for row in runs:
        row["vs_plain_encode"] = round(row["entities_per_second"] / plain["entities_per_second_encode"], 3)
        row["vs_plain_end_to_end"] = round(
            row["entities_per_second"] / plain["entities_per_second_end_to_end"], 3
        )
    settings_out = {
        **vars(args),
        "model": "minilm (all-MiniLM-L6-v2, 384 dims)",
        "max_entity_length": 128,
        "dtype": "float16",
        "catalogue": source,
    }
    return write_result(
        "embed",
        settings_out,
        {"entities": n, "plain_process": plain, "plain_before": before, "plain_after": after, "ray": runs},
        machine,
    )


if __name__ == "__main__":
    main()
