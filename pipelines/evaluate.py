"""`evaluate-corpus` on Ray: ELQ's metrics of link-corpus output against the gold examples it linked.

    gold jsonl (driver, put in the object store) + link-corpus parts
      -> map_batches(evaluate_parts): per part, `elcore.metrics.evaluate` on its documents
      -> sum tp/fp/fn over parts -> precision, recall, F1 (the numbers `elcore.metrics.evaluate` gives at once)

Run link-corpus on the gold file first (its `id` and `text` fields), then:

    python -m pipelines.evaluate --gold kit/data/webqsp/dev.jsonl --links out/webqsp-links --catalogue kb.parquet
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from elcore import fs
from elcore.errors import ConfigError, EvaluationInputError
from elcore.metrics import merge_reports

from .common import IO_TASK_CPUS, dataset_of, init_ray
from .corpus_output import output_store, part_tables
from .options import run_command_line
from .stage_configs import EvaluateCorpusConfig


def evaluate_parts(batch: pa.Table, output: str, examples: Any, has_text: Any) -> dict[str, list]:
    """Ray Data task: metrics of the gold examples whose documents are in each part (`elcore.metrics`)."""
    import ray

    from elcore.metrics import evaluate, predictions_from_links

    gold, keys = ray.get(examples), (ray.get(has_text) if has_text is not None else None)
    reports, seen = [], []
    for part in batch.column("part").to_pylist():
        links, status = part_tables(output, part)
        by_doc: dict[str, list] = {}
        for row in links.select(["doc_id", "start", "end", "qid", "entity_id", "score"]).to_pylist():
            by_doc.setdefault(row["doc_id"], []).append(SimpleNamespace(**row))
        ids = [i for i in status.column("doc_id").to_pylist() if i in gold]
        predictions = [predictions_from_links(by_doc.get(i, [])) for i in ids]
        report = evaluate(
            [gold[i] for i in ids], predictions, keys.__contains__ if keys is not None else None
        )
        reports.append(json.dumps(report))
        seen.append(ids)
    return {"part": batch.column("part").to_pylist(), "report": reports, "ids": seen}


def run(config: EvaluateCorpusConfig) -> dict[str, Any]:
    """Evaluate link-corpus output against `gold`; gold examples with no output row count as unlinked.

    Raises:
        ConfigError: no gold file.
        InputRecordError: a gold record is malformed.
        EvaluationInputError: gold ids repeat, or a document appears twice in the output.
    """
    import ray

    from elcore.data import read_examples
    from elcore.metrics import evaluate

    started = time.perf_counter()
    if not fs.exists(config.gold):
        raise ConfigError(f"gold examples not found: {config.gold}")
    examples = read_examples(config.gold)
    gold = {e.id: e for e in examples}
    if len(gold) != len(examples):
        raise EvaluationInputError(f"{config.gold}: example ids repeat; link-corpus output is keyed by id")
    has_text = None
    if config.catalogue:
        from elcore.catalogue import EntityCatalogue

        table = EntityCatalogue.load(config.catalogue).table
        with_text = [len(t or "") > 0 for t in table.column("text").to_pylist()]
        keys = {
            k
            for col in ("id", "qid")
            for k, w in zip(table.column(col).to_pylist(), with_text, strict=True)
            if k and w
        }
        has_text = frozenset(keys)
    parts = sorted(output_store(config.links).done())
    reports: list[dict[str, Any]] = []
    seen: set[str] = set()
    if parts:
        init_ray(config.address)
        refs = {"examples": ray.put(gold), "has_text": ray.put(has_text) if has_text is not None else None}
        rows = dataset_of([{"part": p} for p in parts]).map_batches(
            evaluate_parts,
            fn_kwargs={"output": config.links, **refs},
            batch_size=1,
            batch_format="pyarrow",
            num_cpus=IO_TASK_CPUS,
        )
        for row in rows.iter_rows():
            repeated = seen.intersection(row["ids"])
            if repeated:
                raise EvaluationInputError(
                    f"{config.links}: documents {sorted(repeated)[:5]} appear in two parts"
                )
            seen.update(row["ids"])
            reports.append(json.loads(row["report"]))
    missing = [e for e in examples if e.id not in seen]
    if missing:  # never linked (not in the output): they count with no predictions
        reports.append(
            evaluate(missing, [[] for _ in missing], has_text.__contains__ if has_text is not None else None)
        )
    report = {
        "gold": config.gold,
        "links": config.links,
        "metrics": merge_reports(reports),
        "examples": len(examples),
        "examples_missing_from_output": len(missing),
        "parts": len(parts),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if config.output:
        fs.write_json_atomic(config.output, report)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command_line(EvaluateCorpusConfig, run, "evaluate-corpus", argv)


if __name__ == "__main__":
    main()
