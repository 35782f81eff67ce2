"""elcore.encoding: catalogue vectors through the cache, resumed part by part."""

from __future__ import annotations

import numpy as np
import pytest

from elcore import encoding, fs
from elcore.embeddings import MANIFEST, cache_url, read_manifest


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ELQ_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture()
def counted(monkeypatch):
    """Rows encoded by each `encode_entities` call the cache makes."""
    calls: list[int] = []
    real = encoding.encode_entities

    def encode(model, entities, **kwargs):
        calls.append(len(entities))
        return real(model, entities, **kwargs)

    monkeypatch.setattr(encoding, "encode_entities", encode)
    return calls


def _expected(model, catalogue):
    return encoding.encode_entities(model, catalogue.entity_inputs(np.arange(len(catalogue))), progress=False)


def test_cache_round_trip_and_reuse(cache, tiny_model, small_catalogue, counted):
    first = encoding.catalogue_vectors(tiny_model, small_catalogue, part_size=4, progress=False)
    assert counted == [4, 4, 2]
    np.testing.assert_allclose(first, _expected(tiny_model, small_catalogue), atol=1e-6)
    counted.clear()
    again = encoding.catalogue_vectors(tiny_model, small_catalogue, part_size=4, progress=False)
    np.testing.assert_array_equal(again, first)
    assert counted == []  # read from the cache


def test_an_interrupted_cache_resumes_with_the_missing_and_damaged_parts(
    cache, tiny_model, small_catalogue, counted
):
    first = encoding.catalogue_vectors(tiny_model, small_catalogue, part_size=4, progress=False)
    url = cache_url(tiny_model.entity_fingerprint(), small_catalogue.fingerprint)
    parts = read_manifest(url).parts
    fs.filesystem(url)[0].rm(fs.filesystem(fs.join(url, MANIFEST))[1])  # as if killed before the end
    fs.filesystem(url)[0].rm(fs.filesystem(fs.join(url, parts[0]))[1])
    damaged = fs.join(url, parts[2])
    fs.write_bytes_atomic(damaged, fs.read_bytes(damaged)[:50])
    counted.clear()
    resumed = encoding.catalogue_vectors(tiny_model, small_catalogue, part_size=4, progress=False)
    assert counted == [4, 2]  # parts 0 and 2 again, part 1 kept
    np.testing.assert_allclose(resumed, first, atol=1e-6)


def test_stored_vectors_are_what_the_cache_returns(cache, tiny_model, small_catalogue, counted):
    vectors = np.random.default_rng(0).standard_normal((len(small_catalogue), 32)).astype(np.float32)
    encoding.store_catalogue_vectors(tiny_model, small_catalogue, vectors, part_size=3)
    np.testing.assert_array_equal(encoding.catalogue_vectors(tiny_model, small_catalogue), vectors)
    assert counted == []
