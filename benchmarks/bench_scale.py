"""Corpus linking against a 6M-entity catalogue: index recall and speed, where a document's time goes,
Ray Data link-corpus with 1 and 2 actors, and dev F1 at 6M against the kit-only exact index.

The catalogue: the kit's 126,534 entities with their real entity vectors (the trained linker's entity
encoder), then perturbed copies up to `--entities`. Copy `j` of real row `a` is
`normalize(x_a + s * (x_b - x_c))` for two random real rows b, c: the perturbation follows the real
vectors' own covariance (it stays on their manifold, unlike isotropic noise or clustered synthetic
vectors), and `s` is set so that a copy is as close to its original as a real entity is to its nearest
real neighbour (median cosine). Copies get ids `<id>~<n>`, titles `<title> ~<n>`, no text or aliases;
a link to a copy counts as wrong. Queries are the span vectors the linker really searches (recorded
while linking the kit's dev questions); truth is exact search over the expanded vectors.

Documents: kit entity descriptions (real prose full of entity names) concatenated to ~300 words.
Everything expensive is cached under `--work` (vectors, catalogue, indexes, ground truth).

    OMP_NUM_THREADS=1 python benchmarks/bench_scale.py --linker runs/hybrid5 --docs 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_index import compact_fast_scan, probe_sweep, recall, timed_search  # noqa: E402
from benchmarks.common import PeakMemory, machine_info, write_result  # noqa: E402
from elcore.index import SearchResult  # noqa: E402

_BLOCK = 131_072


# -- the expanded catalogue --------------------------------------------------------------------------------


def nearest_neighbour_cosine(real: np.ndarray, sample: int, seed: int) -> float:
    """Median cosine between a real vector and its nearest other real vector."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(real), size=min(sample, len(real)), replace=False)
    best = np.full(len(picks), -np.inf, dtype=np.float32)
    queries = real[picks].astype(np.float32)
    for lo in range(0, len(real), _BLOCK):
        scores = queries @ real[lo : lo + _BLOCK].astype(np.float32).T
        mine = (picks >= lo) & (picks < lo + _BLOCK)
        scores[np.flatnonzero(mine), picks[mine] - lo] = -np.inf
        best = np.maximum(best, scores.max(axis=1))
    return float(np.median(best))


def expand(real: np.ndarray, total: int, scale: float, seed: int, out: Path) -> np.ndarray:
    """Write `total` float16 unit vectors to `out` (.npy): the real ones, then perturbed copies."""
    n, dim = real.shape
    vectors = np.lib.format.open_memmap(
        out.with_suffix(".tmp.npy"), mode="w+", dtype=np.float16, shape=(total, dim)
    )
    vectors[:n] = real
    rng = np.random.default_rng(seed)
    for lo in range(n, total, _BLOCK):
        hi = min(total, lo + _BLOCK)
        base = real[(np.arange(lo, hi) - n) % n].astype(np.float32)
        b, c = rng.integers(0, n, size=(2, hi - lo))
        copy = base + scale * (real[b].astype(np.float32) - real[c].astype(np.float32))
        vectors[lo:hi] = copy / np.linalg.norm(copy, axis=1, keepdims=True)
    vectors.flush()
    del vectors
    os.replace(out.with_suffix(".tmp.npy"), out)
    return np.load(out, mmap_mode="r")


def expanded_catalogue(kit, total: int):
    """The kit catalogue, then copies `<id>~<n>` of its rows in turn up to `total` rows."""
    import pyarrow as pa

    from elcore.catalogue import CATALOGUE_SCHEMA, EntityCatalogue

    n = len(kit)
    extra = np.arange(n, total)
    base, copy = (extra - n) % n, (extra - n) // n + 1
    ids = np.asarray(kit.table["id"].to_numpy(zero_copy_only=False), dtype=object)
    titles = np.asarray(kit.table["title"].to_numpy(zero_copy_only=False), dtype=object)
    suffix = np.char.add("~", copy.astype(str)).astype(object)
    copies = pa.table(
        {
            "id": pa.array(ids[base] + suffix, pa.string()),
            "qid": pa.nulls(len(extra), pa.string()),
            "title": pa.array(titles[base] + np.char.add(" ~", copy.astype(str)).astype(object), pa.string()),
            "text": pa.array(np.full(len(extra), "", dtype=object), pa.string()),
            "aliases": pa.array([[]] * len(extra), pa.list_(pa.string())),
        },
        schema=CATALOGUE_SCHEMA,
    )
    return EntityCatalogue(pa.concat_tables([kit.table, copies]).combine_chunks())


# -- queries and exact truth -------------------------------------------------------------------------------


class RecordingIndex:
    """Wraps an index and keeps every query vector the linker searches."""

    def __init__(self, inner) -> None:
        self.inner, self.queries = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def search(self, queries, k):
        self.queries.append(np.asarray(queries, dtype=np.float32))
        return self.inner.search(queries, k)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int = 10):
    """`elcore.index.exact_search`'s answer with an argpartition per block (that one sorts each block
    whole: minutes at 6M rows x 1,000 queries)."""

    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), k), -1, dtype=np.int64)
    for lo in range(0, len(vectors), _BLOCK):
        scores = queries @ vectors[lo : lo + _BLOCK].astype(np.float32).T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        all_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        all_ids = np.concatenate([best_ids, top + lo], axis=1)
        keep = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, keep, axis=1)
        best_ids = np.take_along_axis(all_ids, keep, axis=1)
    return SearchResult(best_scores, best_ids)


# -- indexes -----------------------------------------------------------------------------------------------


def preset(name: str, n: int):
    """A preset by name, or "compact-fs" / "compact-fs-4k" (`bench_index.compact_fast_scan`, with
    compact's lists or 4,096)."""
    from elcore.index import IndexSpec

    if name.startswith("compact-fs"):
        return compact_fast_scan(n, nlist=4096 if name == "compact-fs-4k" else None)
    return IndexSpec(name)


def build_or_load(name: str, vectors: np.ndarray, metadata: dict, work: Path) -> tuple:
    from elcore.index import FaissIndex, load_index

    folder = work / f"index-{name}"
    if (folder / "index.json").exists():
        return load_index(str(folder)), json.loads((folder / "build.json").read_text())
    started = time.perf_counter()
    index = FaissIndex.build(vectors, preset(name, len(vectors)), metadata)
    build = {"build_seconds": round(time.perf_counter() - started, 1)}
    index.save(str(folder))
    (folder / "build.json").write_text(json.dumps(build))
    return load_index(str(folder)), build


def sweep_or_measure(index, queries: np.ndarray, truth, shares: list[float]) -> list[dict]:
    """`bench_index.probe_sweep` for an IVF index; one row at its own settings for any other."""
    rows = probe_sweep(index, queries, truth, shares)
    if rows:
        return rows
    found, qps = timed_search(index, queries)
    strict, top1 = recall(found, truth)
    return [{"nprobe": None, "recall@10": strict, "1-recall@10": top1, "queries_per_second": qps}]


def with_nprobe(folder: Path, nprobe: int) -> None:
    """Store the chosen nprobe in the saved index's spec (what every loader then searches with)."""
    manifest = json.loads((folder / "index.json").read_text())
    manifest["spec"]["nprobe"] = nprobe
    (folder / "index.json").write_text(json.dumps(manifest, indent=2))


# -- linking -----------------------------------------------------------------------------------------------


def make_docs(kit, count: int, words: int) -> list[dict]:
    texts = [t for t in kit.table["text"].to_pylist() if t and len(t.split()) > 20]
    docs, current, n, k = [], [], 0, 0
    while len(docs) < count:
        text = texts[(k * 7919) % len(texts)]  # a fixed walk over the descriptions
        k += 1
        current.append(text)
        n += len(text.split())
        if n >= words:
            joined = " ".join(" ".join(current).split()[:words])
            docs.append({"id": f"doc{len(docs):05d}", "text": joined})
            current, n = [], 0
    return docs


def encoder_only_seconds(linker, texts: list[str]) -> float:
    """Tokenise, window and run the context encoder and span scores: the linker minus retrieval."""
    import torch

    from elcore.spans import span_mask, span_scores
    from elcore.text import collate_windows, make_windows, tokenize

    config = linker.config
    started = time.perf_counter()
    with torch.inference_mode():
        docs = tokenize(linker.model.tokenizer, texts)
        windows = make_windows(docs, config.max_context_length, config.context_stride)
        for lo in range(0, len(windows), linker.batch_size):
            batch = collate_windows(linker.model.tokenizer, docs, windows[lo : lo + linker.batch_size])
            _, (start, end, inside) = linker.model.encode_context(batch.input_ids, batch.attention_mask)
            span_scores(start, end, inside, span_mask(batch.content_mask, config.max_mention_length))
    return time.perf_counter() - started


def timed_link(linker, texts: list[str], label: str) -> dict:
    from elcore.linker import LinkTimings

    linker.link(texts[:2])  # warm-up: the first search builds the index's direct map and touches its pages
    linker.timings = LinkTimings()
    links = linker.link(texts)
    t = linker.timings
    row = {
        "linker": label,
        "docs_per_second": round(len(texts) / t.total_seconds, 3),
        "spans_searched_per_doc": round(t.spans_searched / len(texts), 1),
        "windows_per_doc": round(t.windows / len(texts), 1),
        "links_per_doc": round(sum(map(len, links)) / len(texts), 2),
        "seconds": {k: round(v, 2) for k, v in t.to_dict().items() if k.endswith("seconds")},
    }
    print(json.dumps(row), file=sys.stderr)
    return row


def dev_f1(linker, kit_dir: Path, limit: int) -> dict:
    from elcore.data import read_examples
    from elcore.evaluation import evaluate_linker

    out = {}
    for name in ("webqsp/dev.jsonl", "mintaka/dev.jsonl"):
        examples = read_examples(str(kit_dir / "data" / name))[:limit]
        m = evaluate_linker(linker, examples)["metrics"]
        out[name.split("/")[0]] = {k: round(m[k]["f1"], 4) for k in ("entity", "weak", "strong")}
    return out


def ray_runs(docs_path: Path, linker_dir: Path, work: Path, actors: list[int], docs_per_part: int) -> list:
    import ray

    from pipelines.common import ActorResources
    from pipelines.link_corpus import LinkCorpusConfig, run

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    rows = []
    for n in actors:
        output = work / f"links-{n}-actors"
        config = LinkCorpusConfig(
            input=str(docs_path),
            output=str(output),
            model=str(linker_dir),
            docs_per_part=docs_per_part,
            resources=ActorResources(num_actors=n, torch_threads=1),
            overwrite=True,
        )
        import shutil

        shutil.rmtree(output, ignore_errors=True)
        with PeakMemory() as memory:
            summary = run(config)
        rows.append(
            {
                "actors": n,
                "torch_threads_per_actor": 1,
                "seconds": summary["seconds"],
                "docs": summary["docs"],
                "docs_per_second": round(summary["docs"] / summary["seconds"], 3),
                "seconds_to_first_part": summary["seconds_to_first_part"],
                "docs_per_second_after_first_part": summary["docs_per_second_after_first_part"],
                "links": summary["links"],
                "peak_rss_mib_largest_process": memory.peak_process_mib,
                "peak_rss_mib_all_processes": memory.peak_mib,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    ray.shutdown()
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--linker", required=True, help="trained linker directory over the kit catalogue")
    p.add_argument("--entities", type=int, default=6_000_000)
    p.add_argument("--work", default=str(Path.home() / ".cache" / "elq" / "scale"))
    p.add_argument("--presets", nargs="+", default=["compact", "compact-fs-4k"])
    p.add_argument("--link-preset", default=None, help="default: the fastest preset at --min-recall")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--probe-shares", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1, 0.3])
    p.add_argument("--min-recall", type=float, default=0.96, help="1-recall@10 the chosen nprobe must reach")
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--split-docs", type=int, default=100, help="documents of the single-process time split")
    p.add_argument("--words", type=int, default=300)
    p.add_argument("--docs-per-part", type=int, default=100)
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dev-limit", type=int, default=1000, help="questions per dev set in the F1 check")
    p.add_argument("--skip", nargs="*", default=[], choices=["ray", "dev", "split"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="scale")
    args = p.parse_args(argv)
    machine = machine_info()

    import faiss
    import torch

    from elcore import settings
    from elcore.catalogue import EntityCatalogue
    from elcore.data import read_examples
    from elcore.encoding import catalogue_vectors
    from elcore.fusion import FUSION_DIR
    from elcore.hybrid import calibrate_unknown_surfaces
    from elcore.linker import Linker, index_metadata
    from elcore.priors import PRIORS_FILE

    settings.hf_offline()
    torch.set_num_threads(1)
    work = Path(args.work).expanduser() / str(args.entities)
    work.mkdir(parents=True, exist_ok=True)
    kit_dir = settings.kit_dir()
    kit_linker = Linker.from_pretrained(args.linker, device="cpu")
    kit = kit_linker.catalogue
    real = catalogue_vectors(kit_linker.model, kit).astype(np.float16)

    # 1. the expanded vectors and catalogue
    expansion_file, vectors_file = work / "expansion.json", work / "vectors-fp16.npy"
    if not vectors_file.exists():
        nn = nearest_neighbour_cosine(real, 2000, args.seed)
        rng = np.random.default_rng(args.seed + 1)
        a, b, c = (real[rng.integers(0, len(real), 4000)].astype(np.float32) for _ in range(3))
        spread = np.median(np.linalg.norm(b - c, axis=1) ** 2)
        scale = float(np.sqrt((1 / nn**2 - 1) / spread))  # cos(a + s d, a) ~ 1 / sqrt(1 + s^2 |d|^2)
        started = time.perf_counter()
        vectors = expand(real, args.entities, scale, args.seed, vectors_file)
        copies = vectors[len(real) : len(real) + 4000].astype(np.float32)
        originals = real[np.arange(len(copies)) % len(real)].astype(np.float32)
        expansion = {
            "real": len(real),
            "total": args.entities,
            "scale": round(scale, 4),
            "real_nearest_neighbour_cosine_median": round(nn, 4),
            "copy_to_original_cosine_median": round(float(np.median((copies * originals).sum(1))), 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        expansion_file.write_text(json.dumps(expansion, indent=2))
    expansion = json.loads(expansion_file.read_text())
    vectors = np.load(vectors_file, mmap_mode="r")
    catalogue_file = work / "catalogue.parquet"
    if not catalogue_file.exists():
        expanded_catalogue(kit, args.entities).save(str(catalogue_file))
    catalogue = EntityCatalogue.load(str(catalogue_file))
    print(json.dumps({"expansion": expansion}), file=sys.stderr)

    # 2. real queries and exact truth
    queries_file, truth_file = work / "queries.npy", work / "truth.npz"
    if not truth_file.exists():
        recorder = RecordingIndex(kit_linker.index)
        kit_linker.index = recorder
        from elcore.data import read_examples

        texts = [
            e.text
            for name in ("webqsp/dev.jsonl", "mintaka/dev.jsonl")
            for e in read_examples(str(kit_dir / "data" / name))
        ]
        kit_linker.link(texts[:: max(1, len(texts) // 600)])
        kit_linker.index = recorder.inner
        pool = np.concatenate(recorder.queries)
        picks = np.random.default_rng(args.seed).choice(
            len(pool), min(args.queries, len(pool)), replace=False
        )
        np.save(queries_file, pool[picks])
        started = time.perf_counter()
        exact = exact_top_k(vectors, pool[picks])
        np.savez(truth_file, scores=exact.scores, ids=exact.ids)
        (work / "truth.json").write_text(
            json.dumps({"exact_seconds": round(time.perf_counter() - started, 1)})
        )
    queries, saved = np.load(queries_file), np.load(truth_file)
    truth = SearchResult(saved["scores"], saved["ids"])

    # 3. indexes: build, sweep nprobe, choose
    metadata = index_metadata(kit_linker.model, catalogue)
    index_rows, chosen = [], {}
    for name in args.presets:
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core
        index, build = build_or_load(name, vectors, metadata, work)
        faiss.omp_set_num_threads(1)  # searching: one thread, as in each link-corpus actor
        sweep = sweep_or_measure(index, queries, truth, args.probe_shares)
        good = [r for r in sweep if r["1-recall@10"] >= args.min_recall] or sweep[-1:]
        chosen[name] = good[0]["nprobe"]
        index_rows.append(
            {
                "index": name,
                "factory": index.spec.factory_string(384, len(vectors)),
                "bytes_per_entity": round(index.bytes_per_entity(), 1),
                **build,
                "probe_sweep": sweep,
                "chosen": good[0],
            }
        )
        del index
    results = {"expansion": expansion, "indexes": index_rows}
    if args.link_preset is None:
        good = [r for r in index_rows if r["chosen"]["1-recall@10"] >= args.min_recall] or index_rows
        args.link_preset = max(good, key=lambda r: r["chosen"]["queries_per_second"])["index"]

    # 4. the 6M linker directory: the kit linker's model and priors over the expanded catalogue
    folder = work / f"index-{args.link_preset}"
    if chosen[args.link_preset] is not None:
        with_nprobe(folder, chosen[args.link_preset])
    linker_dir = work / "linker"
    linker_dir.mkdir(exist_ok=True)
    for part in os.listdir(args.linker):
        if (
            part not in ("catalogue.parquet", "index", PRIORS_FILE, FUSION_DIR)
            and not (linker_dir / part).exists()
        ):
            os.symlink(Path(args.linker).resolve() / part, linker_dir / part)
    for name, target in (("catalogue.parquet", catalogue_file), ("index", folder)):
        if not (linker_dir / name).exists():
            os.symlink(target, linker_dir / name)
    kit_linker.priors.extended_to(catalogue, kit).save(str(linker_dir / PRIORS_FILE))
    # the retrieval budget, calibrated on dev: are unknown-surface spans ever linked?
    dev = [
        e
        for name in ("webqsp/dev.jsonl", "mintaka/dev.jsonl")
        for e in read_examples(str(kit_dir / "data" / name))[: args.dev_limit]
    ]
    results["unknown_surfaces"] = calibrate_unknown_surfaces(kit_linker, dev)
    print(json.dumps(results["unknown_surfaces"]), file=sys.stderr)
    kit_linker.fusion.save(str(linker_dir / FUSION_DIR))
    big = Linker.from_pretrained(str(linker_dir), device="cpu")

    # 5. where a document's time goes (one process, one thread)
    docs = make_docs(kit, args.docs, args.words)
    docs_file = work / f"docs-{args.docs}.jsonl"
    docs_file.write_text("".join(json.dumps(d) + "\n" for d in docs))
    if "split" not in args.skip:
        texts = [d["text"] for d in docs[: args.split_docs]]
        encoder = encoder_only_seconds(big, texts)
        split = [{"linker": "encoder only", "docs_per_second": round(len(texts) / encoder, 3)}]
        name = f"{args.entities} {args.link_preset}"
        searched_unknown = big.fusion.config.search_unknown_surfaces
        split.append(timed_link(big, texts, f"fused, {name} (the levers)"))
        big.fusion.config.search_unknown_surfaces = True
        split.append(timed_link(big, texts, f"fused, {name}, unknown surfaces searched too"))
        big.model.config = big.config.replace(central_spans=False)
        split.append(timed_link(big, texts, f"fused, {name}, unknown surfaces searched, every window (ELQ)"))
        big.model.config = big.config.replace(central_spans=True)
        big.fusion.config.search_unknown_surfaces = searched_unknown
        big.use_priors = False
        split.append(timed_link(big, texts, f"dense, {name}"))
        big.use_priors = True
        split.append(timed_link(kit_linker, texts, f"fused, kit {len(kit)} exact (the levers)"))
        for row in split[1:]:
            row["vs_encoder_only"] = round(row["docs_per_second"] / split[0]["docs_per_second"], 3)
        results["single_process"] = split

    # 6. the quality check at scale
    if "dev" not in args.skip:
        results["dev_f1"] = {
            f"{args.entities} {args.link_preset}": dev_f1(big, kit_dir, args.dev_limit),
            f"kit {len(kit)} exact": dev_f1(kit_linker, kit_dir, args.dev_limit),
        }
        print(json.dumps(results["dev_f1"]), file=sys.stderr)
    del big, kit_linker

    # 7. the Ray Data job
    if "ray" not in args.skip:
        rows = ray_runs(docs_file, linker_dir, work, args.actors, args.docs_per_part)
        for row in rows:
            row["words_per_second"] = round(row["docs_per_second"] * args.words, 1)
            row["vs_1_actor"] = round(row["docs_per_second"] / rows[0]["docs_per_second"], 3)
            after = rows[0]["docs_per_second_after_first_part"]
            if after and row["docs_per_second_after_first_part"]:
                row["vs_1_actor_after_first_part"] = round(row["docs_per_second_after_first_part"] / after, 3)
        results["ray"] = rows
    return write_result(args.name, {**vars(args), "cpus": os.cpu_count()}, results, machine)


if __name__ == "__main__":
    main()
