import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elcore import fs
from elcore.embeddings import (
    MANIFEST,
    EmbeddingsManifest,
    cache_url,
    embeddings_to_table,
    read_embeddings,
    read_manifest,
    table_to_vectors,
    write_embeddings_part,
    write_manifest,
    written_parts,
)
from elcore.errors import ConfigError, EmbeddingsNotFoundError, IndexMismatchError

COUNT, DIM = 10, 6


@pytest.fixture
def vectors():
    return np.random.default_rng(0).standard_normal((COUNT, DIM)).astype(np.float32)


@pytest.fixture(params=["local", "memory"])
def url_dir(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "emb")
        return
    url = f"memory://test-embeddings-{uuid.uuid4().hex[:8]}"
    yield url
    fs.remove(url)


def write_parts(url_dir, vectors, dtype, splits=((7, 8, 9), (0, 1, 2, 3, 4, 5, 6))):
    """Parts hold rows out of order, as pipeline tasks finishing in any order would write them."""
    parts = []
    for number, rows in enumerate(splits):
        rows = np.array(rows)
        ids = [f"Q{r}" for r in rows]
        qids = [None if r % 3 == 0 else f"Q{r}" for r in rows]
        parts.append(
            write_embeddings_part(url_dir, f"part-{number:05d}", rows, ids, qids, vectors[rows], dtype)
        )
    return parts


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip(url_dir, vectors, dtype):
    parts = write_parts(url_dir, vectors, dtype)
    assert parts == ["vectors/part-00000.parquet", "vectors/part-00001.parquet"]
    assert written_parts(url_dir) == {"part-00000", "part-00001"}
    manifest = EmbeddingsManifest("model-fp", "cat-fp", DIM, dtype, COUNT, parts)
    write_manifest(url_dir, manifest)
    loaded, read_back = read_embeddings(url_dir)
    assert read_back == manifest == read_manifest(url_dir)
    assert loaded.dtype == np.float32 and loaded.shape == (COUNT, DIM)
    np.testing.assert_array_equal(loaded, vectors.astype(dtype).astype(np.float32))
    assert [p for p in fs.filesystem(url_dir)[0].ls(fs.filesystem(url_dir)[1]) if ".tmp-" in p] == []


def test_readable_with_plain_pyarrow(tmp_path, vectors):
    write_parts(str(tmp_path), vectors, "float16")
    table = pq.read_table(tmp_path / "vectors" / "part-00000.parquet")
    assert table.schema.names == ["row", "id", "qid", "vector"]
    assert table.schema.field("vector").type == pa.list_(pa.float16(), DIM)
    assert table.column("row").to_pylist() == [7, 8, 9]
    assert table.column("qid").to_pylist() == ["Q7", "Q8", None]
    first = np.array(table.column("vector")[0].as_py(), dtype=np.float32)
    np.testing.assert_array_equal(first, vectors[7].astype(np.float16).astype(np.float32))


def test_table_vector_conversion(vectors):
    table = embeddings_to_table(
        np.arange(COUNT), [f"Q{i}" for i in range(COUNT)], [None] * COUNT, vectors, "float32"
    )
    np.testing.assert_array_equal(table_to_vectors(table), vectors)
    chunked = pa.concat_tables([table.slice(0, 3), table.slice(3)])
    np.testing.assert_array_equal(table_to_vectors(chunked.column("vector")), vectors)
    np.testing.assert_array_equal(table_to_vectors(table.slice(4, 2)), vectors[4:6])  # sliced offsets
    assert table_to_vectors(table.slice(0, 0)).shape == (0, DIM)
    with pytest.raises(IndexMismatchError, match="length"):
        embeddings_to_table([0, 1], ["a"], ["a"], vectors[:2])
    with pytest.raises(ConfigError, match="float16"):
        embeddings_to_table([0], ["a"], ["a"], vectors[:1], "int8")


def test_missing_part_and_rows_detected(url_dir, vectors):
    parts = write_parts(url_dir, vectors, "float16")
    write_manifest(url_dir, EmbeddingsManifest("m", "c", DIM, "float16", COUNT, parts[1:]))
    with pytest.raises(IndexMismatchError, match=r"3 rows missing \(7, 8, 9\)"):
        read_embeddings(url_dir)
    write_manifest(url_dir, EmbeddingsManifest("m", "c", DIM, "float16", COUNT, parts))
    fs.filesystem(url_dir)[0].rm(fs.filesystem(fs.join(url_dir, parts[0]))[1])
    with pytest.raises(EmbeddingsNotFoundError, match="part-00000.parquet"):
        read_embeddings(url_dir)


def test_repeated_rows_and_bad_manifest(url_dir, vectors):
    parts = write_parts(url_dir, vectors, "float32", splits=((0, 1, 2, 3, 4), (4, 5, 6, 7, 8, 9)))
    write_manifest(url_dir, EmbeddingsManifest("m", "c", DIM, "float32", COUNT, parts))
    with pytest.raises(IndexMismatchError, match=r"1 rows repeated \(4\)"):
        read_embeddings(url_dir)
    write_manifest(url_dir, EmbeddingsManifest("m", "c", DIM, "float16", COUNT, parts))
    with pytest.raises(IndexMismatchError, match="manifest says"):
        read_embeddings(url_dir)
    with pytest.raises(EmbeddingsNotFoundError, match=MANIFEST):
        read_embeddings(fs.join(url_dir, "nothing"))
    with pytest.raises(EmbeddingsNotFoundError, match="write every part"):
        write_manifest(url_dir, EmbeddingsManifest("m", "c", DIM, "float32", COUNT, ["part-00009.parquet"]))
    with pytest.raises(ConfigError, match="lacks"):
        EmbeddingsManifest.from_dict({"dim": 3})


def test_a_damaged_part_is_not_written(tmp_path, vectors):
    parts = write_parts(str(tmp_path), vectors, "float16")
    cut = tmp_path / parts[0]
    cut.write_bytes(cut.read_bytes()[:-10])
    assert written_parts(str(tmp_path)) == {"part-00001"}  # a resumed writer writes part-00000 again


def test_folders_written_before_the_parts_store_still_read(tmp_path, vectors):
    table = embeddings_to_table(
        np.arange(COUNT), [f"Q{i}" for i in range(COUNT)], [None] * COUNT, vectors, "float32"
    )
    pq.write_table(table, tmp_path / "part-00000.parquet")  # parts at the top level, no records
    write_manifest(str(tmp_path), EmbeddingsManifest("m", "c", DIM, "float32", COUNT, ["part-00000.parquet"]))
    np.testing.assert_array_equal(read_embeddings(str(tmp_path))[0], vectors)


def test_cache_url(monkeypatch, tmp_path):
    monkeypatch.setenv("ELQ_CACHE_DIR", str(tmp_path))
    assert cache_url("abc", "def") == f"{tmp_path}/embeddings/abc-def"
