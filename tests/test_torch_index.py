import numpy as np
import pytest

from elcore.errors import ConfigError
from elcore.index import FaissIndex, IndexSpec, build_index, load_index
from elcore.torch_index import TorchFlatIndex


@pytest.fixture()
def vectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16).astype(np.float32)


def test_gpu_flat_finds_what_exact_faiss_finds(vectors, monkeypatch):
    import elcore.torch_index as torch_index

    monkeypatch.setattr(torch_index, "_BLOCK_ROWS", 128)  # several blocks merged
    queries = vectors[:40] + 0.05
    index = build_index(vectors, IndexSpec("gpu-flat"))
    assert isinstance(index, TorchFlatIndex) and index.ntotal == 500 and index.dim == 16
    exact = FaissIndex.build(vectors).search(queries, 5)
    found = index.search(queries, 5)
    assert (found.ids == exact.ids).mean() > 0.99
    np.testing.assert_allclose(found.scores, exact.scores, atol=2e-3)


def test_gpu_flat_scores_ids_saves_and_loads(vectors, tmp_path):
    index = TorchFlatIndex.build(vectors, {"catalogue_fingerprint": "abc"}, device="cpu")
    ids = np.array([[3, -1], [7, 499]])
    scores = index.score_ids(vectors[:2], ids)
    assert scores[0, 1] == -np.inf
    np.testing.assert_allclose(scores[1], [vectors[1] @ vectors[7], vectors[1] @ vectors[499]], atol=2e-3)
    index.save(str(tmp_path / "index"))
    loaded = load_index(str(tmp_path / "index"))
    assert isinstance(loaded, TorchFlatIndex) and loaded.metadata == {"catalogue_fingerprint": "abc"}
    np.testing.assert_array_equal(loaded.search(vectors[:3], 4).ids, index.search(vectors[:3], 4).ids)
    assert loaded.bytes_per_entity() == 32  # 16 float16 dims


def test_more_neighbours_than_entities_are_padded(vectors):
    found = TorchFlatIndex.build(vectors[:3], device="cpu").search(vectors[:2], 5)
    assert (found.ids[:, 3:] == -1).all() and np.isinf(found.scores[:, 3:]).all()


def test_gpu_flat_is_not_a_faiss_kind(vectors):
    with pytest.raises(ConfigError, match="build_index"):
        FaissIndex.build(vectors, IndexSpec("gpu-flat"))


def test_a_linker_over_gpu_flat_links_like_the_exact_faiss_linker(tiny_linker):
    from elcore.linker import Linker

    texts = ["paris is the capital of france", "albert einstein was born in germany"]
    vectors = np.stack([tiny_linker.index.index.reconstruct(i) for i in range(tiny_linker.index.ntotal)])
    vectors = vectors.astype(np.float16).astype(np.float32)  # what gpu-flat stores
    model, catalogue = tiny_linker.model, tiny_linker.catalogue
    torch_linker = Linker(model, catalogue, TorchFlatIndex.build(vectors, device="cpu"))
    faiss_linker = Linker(model, catalogue, FaissIndex.build(vectors))
    got = [[(k.start, k.end, k.entity_id) for k in links] for links in torch_linker.link(texts)]
    want = [[(k.start, k.end, k.entity_id) for k in links] for links in faiss_linker.link(texts)]
    assert got == want
