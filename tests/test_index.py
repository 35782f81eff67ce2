import uuid

import faiss
import numpy as np
import pytest

from elcore import fs
from elcore.errors import ConfigError, IndexMismatchError, IndexNotFoundError
from elcore.index import (
    EntityIndex,
    FaissIndex,
    IndexKind,
    IndexSpec,
    SearchResult,
    ShardedIndex,
    compact_bytes_per_entity,
    exact_search,
    load_index,
    shard_ranges,
    train_empty_index,
)
from elcore.index_files import write_shard, write_sharded_manifest

DIM, N, K = 32, 2000, 10
APPROXIMATE = ["flat-fp16", "sq8", "hnsw", "ivfpq", "compact", "IVF32,SQ8"]


@pytest.fixture(scope="module")
def data():
    """Unit vectors near an 8-dimensional subspace (entity embeddings are far from isotropic)."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((8, DIM))
    points = rng.standard_normal((N + 100, 8)) @ basis + 0.1 * rng.standard_normal((N + 100, DIM))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    return points[:N], points[N:]


@pytest.fixture(scope="module")
def truth(data):
    vectors, queries = data
    return exact_search(vectors, queries, K)


@pytest.fixture
def memory_dir():
    url = f"memory://test-index-{uuid.uuid4().hex[:8]}"
    yield url
    fs.remove(url)


def recall(found: SearchResult, truth: SearchResult) -> float:
    return float(
        np.mean(
            [len(set(a) & set(b)) / truth.ids.shape[1] for a, b in zip(found.ids, truth.ids, strict=True)]
        )
    )


def test_exact_search_is_brute_force(data, truth):
    vectors, queries = data
    scores = queries.astype(np.float64) @ vectors.T.astype(np.float64)
    ids = np.argsort(-scores, axis=1)[:, :K]
    np.testing.assert_array_equal(truth.ids, ids)
    np.testing.assert_allclose(truth.scores, np.take_along_axis(scores, ids, 1), rtol=1e-5)
    blocked = exact_search(vectors, queries, K, block_size=300)
    np.testing.assert_array_equal(blocked.ids, truth.ids)
    assert truth.scores.dtype == np.float32 and truth.ids.dtype == np.int64


def test_flat_equals_exact(data, truth):
    vectors, queries = data
    index = FaissIndex.build(vectors.astype(np.float64), IndexSpec("flat"))  # converted to float32
    assert isinstance(index.index, faiss.IndexFlat) and index.index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert (index.dim, index.ntotal) == (DIM, N)
    found = index.search(queries, K)
    np.testing.assert_array_equal(found.ids, truth.ids)
    np.testing.assert_allclose(found.scores, truth.scores, rtol=1e-5)


def test_sharded_flat_equals_single_flat(data):
    vectors, queries = data
    single = FaissIndex.build(vectors, IndexSpec("flat")).search(queries, K)
    sharded = ShardedIndex.build(vectors, IndexSpec("flat"), num_shards=3)
    assert sharded.ranges == [(0, 666), (666, 1333), (1333, 2000)]
    found = sharded.search(queries, K)
    np.testing.assert_array_equal(found.ids, single.ids)
    np.testing.assert_allclose(found.scores, single.scores, rtol=1e-6)


@pytest.mark.parametrize("kind", APPROXIMATE)
def test_approximate_recall(data, truth, kind):
    vectors, queries = data
    index = FaissIndex.build(vectors, IndexSpec(kind))
    assert recall(index.search(queries, K), truth) > 0.8
    assert index.bytes_per_entity() > 0


@pytest.mark.parametrize("kind", ["sq8", "ivfpq"])
def test_rerank_improves_or_equals(data, truth, kind):
    vectors, queries = data
    plain = recall(FaissIndex.build(vectors, IndexSpec(kind)).search(queries, K), truth)
    reranked = FaissIndex.build(vectors, IndexSpec(kind, rerank=50))
    found = reranked.search(queries, K)
    assert recall(found, truth) >= plain and recall(found, truth) > 0.95
    exact16 = np.einsum("qkd,qd->qk", vectors.astype(np.float16).astype(np.float32)[found.ids], queries)
    np.testing.assert_allclose(found.scores, exact16, rtol=1e-5, atol=1e-6)


def test_sharded_trained_index_shares_training(data, truth):
    vectors, queries = data
    spec = IndexSpec("ivfpq", nprobe=8)
    sharded = ShardedIndex.build(vectors, spec, num_shards=3)
    centroids = [faiss.extract_index_ivf(s.index).quantizer.reconstruct_n(0, 4) for s in sharded.shards]
    np.testing.assert_array_equal(centroids[0], centroids[2])
    assert recall(sharded.search(queries, K), truth) > 0.8
    # The same shards built apart (one per pipeline task) from one trained template.
    trained = train_empty_index(vectors, spec, N)
    apart = ShardedIndex.from_shards(
        [FaissIndex.build(vectors[a:b], spec, trained=trained) for a, b in shard_ranges(N, 3)]
    )
    np.testing.assert_array_equal(apart.search(queries, K).ids, sharded.search(queries, K).ids)


@pytest.mark.parametrize("where", ["local", "memory"])
@pytest.mark.parametrize(
    "make",
    [
        lambda v: FaissIndex.build(v, IndexSpec("flat"), {"catalogue_fingerprint": "abc"}),
        lambda v: FaissIndex.build(v, IndexSpec("ivfpq", rerank=30), {"catalogue_fingerprint": "abc"}),
        lambda v: ShardedIndex.build(v, IndexSpec("hnsw", rerank=20), 3, {"catalogue_fingerprint": "abc"}),
        lambda v: FaissIndex.build(v, IndexSpec("IVF16,PQ16x4fs"), {"catalogue_fingerprint": "abc"}),
    ],
    ids=["flat", "ivfpq-rerank", "sharded-hnsw-rerank", "ivf-fast-scan"],
)
def test_save_load_round_trip(data, tmp_path, memory_dir, where, make):
    vectors, queries = data
    index = make(vectors)
    url = str(tmp_path / "index") if where == "local" else memory_dir
    index.save(url)
    loaded = load_index(url)
    assert type(loaded) is type(index)
    assert (loaded.dim, loaded.ntotal, loaded.spec) == (index.dim, index.ntotal, index.spec)
    assert loaded.metadata == {"catalogue_fingerprint": "abc"}
    before, after = index.search(queries, K), loaded.search(queries, K)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_array_equal(after.scores, before.scores)
    ids = before.ids[:, :3]  # loaded (memory-mapped where local) codes are scored by id too
    np.testing.assert_allclose(loaded.score_ids(queries, ids), index.score_ids(queries, ids), rtol=1e-5)
    manifest = fs.read_json(fs.join(url, "index.json"))
    assert manifest["ntotal"] == N and manifest["shards"][-1][1] == N
    assert type(index).load(url).ntotal == N


def test_pipeline_writes_shards_then_manifest(data, memory_dir):
    vectors, queries = data
    spec = IndexSpec("sq8")
    trained = train_empty_index(vectors[:500], spec, N)
    sizes = []
    for number, (start, end) in enumerate(shard_ranges(N, 2)):
        shard = FaissIndex.build(vectors[start:end], spec, trained=trained)
        write_shard(memory_dir, number, shard)
        sizes.append(shard.ntotal)
    write_sharded_manifest(memory_dir, spec, DIM, sizes, {"model_fingerprint": "m"})
    loaded = EntityIndex.load(memory_dir)
    assert isinstance(loaded, ShardedIndex) and loaded.ranges == [(0, 1000), (1000, 2000)]
    assert loaded.metadata == {"model_fingerprint": "m"}
    assert recall(loaded.search(queries, K), exact_search(vectors, queries, K)) > 0.8


@pytest.mark.parametrize("rerank", [0, 5])
def test_k_larger_than_ntotal_pads(data, rerank):
    vectors, queries = data
    spec = IndexSpec("flat", rerank=rerank)
    for index in (FaissIndex.build(vectors[:5], spec), ShardedIndex.build(vectors[:5], spec, num_shards=3)):
        found = index.search(queries[:4], 8)
        assert found.ids.shape == found.scores.shape == (4, 8)
        assert (found.ids[:, 5:] == -1).all() and np.isneginf(found.scores[:, 5:]).all()
        assert sorted(found.ids[0, :5]) == [0, 1, 2, 3, 4]
    padded = exact_search(vectors[:3], queries[:2], 5)
    assert padded.ids[:, 3:].tolist() == [[-1, -1], [-1, -1]]


def test_spec_presets_and_errors(data, tmp_path):
    vectors, queries = data
    assert IndexSpec("hnsw").kind is IndexKind.HNSW
    assert IndexSpec("ivfpq").factory_string(DIM, N) == "IVF51,PQ16x6"
    assert IndexSpec("ivfpq").factory_string(768, 1_000_000) == "IVF1680,PQ64x8"
    # compact: as many code bytes as fit 128 B/entity with ids, centroids and rotation; 30% of the lists
    compact = IndexSpec("compact")
    assert compact.factory_string(384, 6_000_000) == "OPQ112_448,IVF1680,PQ112x8"  # 120.7 B
    assert compact.factory_string(384, 1_000_000) == "OPQ112_448,IVF1680,PQ112x8"  # 124.2 B
    assert compact.factory_string(384, 126_534) == "OPQ96,IVF711,PQ96x8"  # 112 would take 136 B
    # a small catalogue's shared tables would leave < 64 code bytes: the codes and ids take the budget
    assert compact.factory_string(384, 10_000) == "OPQ120_480,IVF200,PQ120x8"
    assert compact.factory_string(32, 2000) == "IVF51,PQ16x6"  # too few points to learn an OPQ rotation
    assert (compact.nprobe_for(1680), IndexSpec("ivfpq").nprobe_for(1680)) == (504, 16)
    assert IndexSpec("compact", nprobe=7).nprobe_for(1680) == 7
    assert IndexSpec.from_dict(IndexSpec("IVF16,Flat", nprobe=4).to_dict()) == IndexSpec(
        "IVF16,Flat", nprobe=4
    )
    with pytest.raises(ConfigError, match="presets|preset"):
        FaissIndex.build(vectors, IndexSpec("NotAnIndex"))
    with pytest.raises(ConfigError, match="rerank"):
        IndexSpec("flat", rerank=-1)
    with pytest.raises(ConfigError, match="training vectors"):
        FaissIndex.build(vectors[:10], IndexSpec("ivfpq"))
    index = FaissIndex.build(vectors[:50], IndexSpec("flat"))
    with pytest.raises(IndexMismatchError, match="dim 32"):
        index.search(queries[:, :16], K)
    with pytest.raises(IndexNotFoundError, match="index.json"):
        load_index(str(tmp_path / "nothing"))
    index.save(str(tmp_path / "flat"))
    with pytest.raises(IndexMismatchError, match="not a ShardedIndex"):
        ShardedIndex.load(str(tmp_path / "flat"))
    (tmp_path / "flat" / "shard-00000.faiss").unlink()
    with pytest.raises(IndexNotFoundError, match="shard-00000.faiss"):
        load_index(str(tmp_path / "flat"))


def test_bytes_per_entity_orders_storage(data):
    vectors, _ = data
    flat = FaissIndex.build(vectors, IndexSpec("flat")).bytes_per_entity()
    fp16 = FaissIndex.build(vectors, IndexSpec("flat-fp16")).bytes_per_entity()
    pq = FaissIndex.build(vectors, IndexSpec("ivfpq")).bytes_per_entity()
    assert flat == pytest.approx(4 * DIM, rel=0.05)
    assert pq < fp16 < flat


def test_compact_size_estimate_matches_faiss():
    """The budget rule's size estimate is faiss' serialized size, here with a rotation padding 8 -> 9 dims
    (8 dims keep the OPQ training to seconds)."""
    rng = np.random.default_rng(3)
    dim = 8
    vectors = rng.standard_normal((10_000, dim)).astype(np.float32)
    spec = IndexSpec("compact", pq_m=3)
    layout = spec.ivfpq_layout(dim, len(vectors))
    assert spec.factory_string(dim, len(vectors)) == f"OPQ3_9,IVF{layout.nlist},PQ3x8"
    index = FaissIndex.build(vectors, spec)
    estimate = compact_bytes_per_entity(dim, len(vectors), layout.nlist, layout.m, layout.rotated_dim)
    assert abs(index.bytes_per_entity() - estimate) < 1.0
    queries = rng.standard_normal((100, dim)).astype(np.float32)
    nearest = exact_search(vectors, queries, 1).ids[:, 0]
    assert (index.search(queries, 10).ids == nearest[:, None]).any(axis=1).mean() > 0.8
