"""Index benchmark: per index type, build time, bytes per entity, recall against exact search, queries/s.

Vectors: synthetic unit vectors structured like sentence embeddings (clusters in a low-dimensional latent space,
mapped to `dim` dimensions, plus isotropic noise), and the real kit embeddings when an embeddings folder holds
them (`--real`, default: the largest folder under `<cache>/embeddings` with >= 100k vectors). Queries are fresh
draws from the same distribution (synthetic) or held-out entity vectors plus a little noise (real): never
vectors of the index itself.

- `recall@10`: |approximate top-10 ∩ exact top-10| / 10, averaged over queries (the strict measure).
- `1-recall@10`: the share of queries whose exact nearest entity is in the approximate top-10 (faiss' R@10).
- `compact` is the preset at <= 128 bytes/entity (`IndexSpec("compact")`: OPQ rotation + IVF + as many 8-bit PQ
  codes as fit the budget, 112 at 1M-6M x 384 dims and 96 on the kit; 30% of the lists searched); `compact-fs`
  the same layout as twice as many 4-bit fast-scan codes (exploratory); `ivf-pq96` is IVF + PQ96 without OPQ
  (nprobe 64). `ivf-pca112-sq8` was the first candidate (PCA to 112 dims + SQ8): fine on the zero-mean synthetic data, useless on real vectors (faiss' PCA centres the
  data, which breaks inner-product rankings when the vectors share a large mean).
- `bytes_per_entity`: the saved index (faiss codes, ids, graph) per entity; `with_rerank` adds the fp16
  vectors the exact re-rank keeps beside it.

    python benchmarks/bench_index.py --sizes 1000000 6000000 --queries 500
    python benchmarks/bench_index.py --kinds sq8 ivf-pq96 compact --large-kinds compact --threads 1 --name index_compact
    python benchmarks/bench_index.py --sizes 6000000 --no-real --large-kinds compact --probe-shares 0.05 0.1 0.2 0.3 0.5
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_info, peak_rss_mib, write_result  # noqa: E402
from elcore.index import FaissIndex, IndexSpec, exact_search  # noqa: E402


def spec_for(name: str, n: int) -> IndexSpec:
    """The index types compared."""
    nlist = max(1, min(int(4 * np.sqrt(n)), 65_536 // 39))
    return {
        "flat": IndexSpec("flat"),
        "flat-fp16": IndexSpec("flat-fp16"),
        "sq8": IndexSpec("sq8"),
        "hnsw": IndexSpec("hnsw", hnsw_m=32, ef_search=128),
        "ivfpq": IndexSpec("ivfpq", nprobe=32),
        "ivfpq+rerank": IndexSpec("ivfpq", nprobe=32, rerank=100),
        "ivf-pq96": IndexSpec(f"IVF{nlist},PQ96x8", nprobe=64),
        "ivf-pca112-sq8": IndexSpec(f"PCA112,IVF{nlist},SQ8", nprobe=64),
        "ivf-pca224-sq4": IndexSpec(f"PCA224,IVF{nlist},SQ4", nprobe=64),
        "ivf-opq96-pq96": IndexSpec(f"OPQ96,IVF{nlist},PQ96x8", nprobe=64),
        "pq128": IndexSpec("PQ128x8"),
        "compact": IndexSpec("compact"),
        "compact-fs": compact_fast_scan(n),
    }[name]


def compact_fast_scan(n: int, dim: int = 384, nlist: int | None = None) -> IndexSpec:
    """compact's rotation, lists and code bytes as twice as many 4-bit codes searched by faiss' SIMD
    fast-scan kernels (exploratory); `nlist` other than compact's is trained on 39 points per list."""
    layout = IndexSpec("compact").ivfpq_layout(dim, n)
    m, nlist = 2 * layout.m, nlist or layout.nlist
    factory = f"OPQ{m}_{layout.rotated_dim or dim},IVF{nlist},PQ{m}x4fs"
    return IndexSpec(
        factory,
        nprobe=IndexSpec("compact").nprobe_for(nlist),
        train_size=max(IndexSpec().train_size, 39 * nlist),
    )


def synthetic(
    n: int, dim: int, seed: int, latent: int = 64, clusters: int = 4096, noise: float = 0.35
) -> np.ndarray:
    """float16 [n, dim] unit vectors: cluster centre + spread in a `latent`-dim space, a fixed random map to
    `dim`, plus isotropic noise of `noise` times the signal's norm. Generated in blocks (6M fit in 4.6 GB)."""
    structure = np.random.default_rng(1234)  # the same space for the index and its queries
    centres = structure.standard_normal((clusters, latent)).astype(np.float32)
    mapping = (structure.standard_normal((latent, dim)) / np.sqrt(latent)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float16)
    for lo in range(0, n, 262_144):
        m = min(262_144, n - lo)
        z = centres[rng.integers(0, clusters, m)] + 0.6 * rng.standard_normal((m, latent), dtype=np.float32)
        x = z @ mapping
        x += (
            noise
            * np.linalg.norm(x, axis=1, keepdims=True)
            / np.sqrt(dim)
            * rng.standard_normal((m, dim), dtype=np.float32)
        )
        out[lo : lo + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def real_vectors(url: str | None, queries: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    from elcore import settings
    from elcore.embeddings import read_embeddings, read_manifest

    if url is None:
        root = Path(settings.cache_dir()) / "embeddings"
        found = [p for p in root.glob("*/manifest.json") if read_manifest(str(p.parent)).count >= 100_000]
        if not found:
            return None
        url = str(max(found, key=lambda p: read_manifest(str(p.parent)).count).parent)
    vectors, _ = read_embeddings(url)
    rng = np.random.default_rng(0)
    held = rng.choice(len(vectors), queries, replace=False)
    keep = np.setdiff1d(np.arange(len(vectors)), held)
    q = vectors[held] + 0.02 * rng.standard_normal(vectors[held].shape).astype(np.float32)
    return (
        vectors[keep].astype(np.float16),
        (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32),
        url,
    )


def recall(found, truth, k: int = 10) -> tuple[float, float]:
    """(strict recall@k, 1-recall@k) of approximate results against the exact ones."""
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(found.ids, truth.ids, strict=True)])
    top1 = np.mean([t[0] in f for f, t in zip(found.ids, truth.ids, strict=True)])
    return round(float(overlap), 4), round(float(top1), 4)


def timed_search(index: FaissIndex, queries: np.ndarray, k: int = 10):
    """(results, queries/s) after a warm-up."""
    index.search(queries[:10], k)
    started = time.perf_counter()
    found = index.search(queries, k)
    return found, round(len(queries) / (time.perf_counter() - started), 1)


def probe_sweep(index: FaissIndex, queries: np.ndarray, truth, shares: list[float]) -> list[dict]:
    """Recall and speed of the same trained IVF index at other shares of its lists visited."""
    ivf = faiss.try_extract_index_ivf(index.index)
    if ivf is None:
        return []
    rows = []
    for share in shares:
        ivf.nprobe = max(1, round(share * ivf.nlist))
        found, qps = timed_search(index, queries)
        strict, top1 = recall(found, truth)
        rows.append(
            {
                "probe_share": share,
                "nprobe": ivf.nprobe,
                "recall@10": strict,
                "1-recall@10": top1,
                "queries_per_second": qps,
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def measure(name: str, vectors: np.ndarray, queries: np.ndarray, truth, shares: list[float]) -> dict:
    spec = spec_for(name, len(vectors))
    started = time.perf_counter()
    index = FaissIndex.build(vectors, spec)
    build = time.perf_counter() - started
    codes = int(faiss.serialize_index(index.index).nbytes)
    rerank = 0 if index.rerank_vectors is None else index.rerank_vectors.nbytes
    found, qps = timed_search(index, queries)
    strict, top1 = recall(found, truth)
    result = {
        "index": name,
        "factory": spec.factory_string(vectors.shape[1], len(vectors)),
        "rerank": spec.rerank,
        "build_seconds": round(build, 2),
        "bytes_per_entity": round(codes / len(vectors), 1),
        "bytes_per_entity_with_rerank": round((codes + rerank) / len(vectors), 1),
        "recall@10": strict,
        "1-recall@10": top1,
        "queries_per_second": qps,
    }
    print(result, file=sys.stderr, flush=True)
    if name.startswith("compact") and shares:
        result["probe_sweep"] = probe_sweep(index, queries, truth, shares)
    del index
    gc.collect()
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes", type=int, nargs="*", default=[1_000_000, 6_000_000], help="none: real vectors only"
    )
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["flat", "flat-fp16", "sq8", "hnsw", "ivfpq", "ivfpq+rerank", "ivf-pq96", "compact"],
    )
    p.add_argument("--large", type=int, default=2_000_000, help="sizes above this run only --large-kinds")
    p.add_argument("--large-kinds", nargs="+", default=["compact", "ivfpq"])
    p.add_argument("--real", help="embeddings folder of real entity vectors (default: the cache's largest)")
    p.add_argument("--no-real", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--probe-shares",
        type=float,
        nargs="*",
        default=[],
        help="also search compact at these shares of its lists",
    )
    p.add_argument("--name", default="index")
    args = p.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    machine = machine_info()
    datasets = []
    for n in args.sizes:
        datasets.append(
            (
                f"synthetic-{n}",
                lambda n=n: (
                    synthetic(n, args.dim, 0),
                    synthetic(args.queries, args.dim, 1).astype(np.float32),
                ),
            )
        )
    if not args.no_real:
        datasets.append(("kit-real", lambda: real_vectors(args.real, args.queries)))
    results = []
    for label, make in datasets:
        made = make()
        if made is None:
            results.append({"data": label, "skipped": "no embeddings folder with >= 100k vectors found"})
            continue
        vectors, queries = made[0], made[1]
        started = time.perf_counter()
        truth = exact_search(vectors, queries, 10)
        exact_seconds = time.perf_counter() - started
        kinds = args.large_kinds if len(vectors) > args.large else args.kinds
        rows = [measure(kind, vectors, queries, truth, args.probe_shares) for kind in kinds]
        results.append(
            {
                "data": label,
                "n": len(vectors),
                "dim": vectors.shape[1],
                "queries": len(queries),
                "exact_search_seconds": round(exact_seconds, 2),
                "indexes": rows,
                **({"source": made[2]} if len(made) > 2 else {}),
            }
        )
        del vectors, made
        gc.collect()
    settings = {**vars(args), "faiss_threads": faiss.omp_get_max_threads(), "peak_rss_mib": peak_rss_mib()}
    return write_result(args.name, settings, results, machine)


if __name__ == "__main__":
    main()
