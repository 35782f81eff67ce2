"""elcore.embedding_rows: an embeddings folder read by row, only the parts that hold the rows asked for."""

from __future__ import annotations

import numpy as np
import pytest

from elcore import embedding_rows, fs
from elcore.embedding_rows import EmbeddingRows
from elcore.embeddings import EmbeddingsManifest, write_embeddings_part, write_manifest
from elcore.errors import EmbeddingsNotFoundError, IndexMismatchError

COUNT, DIM = 12, 4
SPLITS = ((8, 9, 10, 11), (3, 1, 0, 2), (4, 5, 6, 7))  # rows out of order within and across parts


@pytest.fixture(params=["local", "memory"])
def folder(request, tmp_path):
    url = str(tmp_path / "emb") if request.param == "local" else f"memory://rows-{tmp_path.name}"
    vectors = np.random.default_rng(1).standard_normal((COUNT, DIM)).astype(np.float32)
    parts = [
        write_embeddings_part(
            url,
            f"part-{n:05d}",
            np.array(rows),
            [f"Q{r}" for r in rows],
            [None] * 4,
            vectors[list(rows)],
            "float16",
        )
        for n, rows in enumerate(SPLITS)
    ]
    write_manifest(url, EmbeddingsManifest("m", "c", DIM, "float16", COUNT, parts))
    return url, vectors.astype(np.float16).astype(np.float32)


def test_reads_rows_in_the_order_asked(folder):
    url, vectors = folder
    rows = EmbeddingRows.open(url)
    assert rows.shape == (COUNT, DIM) and len(rows) == COUNT and rows.dtype is np.float16
    assert sorted((first, last) for _, first, last in rows.part_rows) == [(0, 3), (4, 7), (8, 11)]
    wanted = np.array([9, 2, 5, 0])
    np.testing.assert_array_equal(rows.read(wanted), vectors[wanted])
    np.testing.assert_array_equal(rows[3:6], vectors[3:6])
    np.testing.assert_array_equal(np.asarray(rows), vectors)


def test_only_parts_holding_the_rows_are_read(folder, monkeypatch):
    url, vectors = folder
    rows = EmbeddingRows.open(url)
    read = []
    original = embedding_rows.read_part
    monkeypatch.setattr(
        embedding_rows, "read_part", lambda u, part, columns: read.append(part) or original(u, part, columns)
    )
    np.testing.assert_array_equal(rows.read(np.array([5, 6])), vectors[[5, 6]])
    assert read == ["vectors/part-00002.parquet"]


def test_missing_rows_and_parts_are_named(folder):
    url, _ = folder
    rows = EmbeddingRows.open(url)
    short = EmbeddingRows(url, rows.manifest, [r for r in rows.part_rows if r[1] != 4])
    with pytest.raises(IndexMismatchError, match=r"rows \[4, 5\] are in no part"):
        short.read(np.array([4, 5, 0]))
    fs.remove(fs.join(url, "vectors/part-00001.parquet"))
    with pytest.raises(EmbeddingsNotFoundError, match="part-00001.parquet is missing"):
        EmbeddingRows.open(url)
