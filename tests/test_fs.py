"""elcore.fs: the same calls on local paths and memory:// (standing in for s3:// and gs://)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from elcore import fs


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    return str(tmp_path) if request.param == "local" else f"memory://fs-{tmp_path.name}"


def test_join_strips_slashes():
    assert fs.join("s3://b/out/", "/parts/", "x.json") == "s3://b/out/parts/x.json"


def test_json_and_bytes_round_trip_atomically(root):
    url = fs.join(root, "deep", "folder", "record.json")
    fs.write_json_atomic(url, {"b": 1, "a": [1, 2]})
    assert fs.read_json(url) == {"a": [1, 2], "b": 1} and fs.exists(url)
    filesystem, path = fs.filesystem(fs.join(root, "deep", "folder"))
    assert [p.rsplit("/", 1)[-1] for p in filesystem.ls(path, detail=False)] == [
        "record.json"
    ]  # no temp left


def test_a_failed_write_leaves_nothing(root):
    url = fs.join(root, "part.bin")
    with pytest.raises(RuntimeError), fs.atomic_writer(url) as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    filesystem, path = fs.filesystem(root)
    assert not fs.exists(url) and not [p for p in filesystem.ls(path, detail=False) if "tmp" in p]


def test_remove_deletes_a_folder_or_a_file_and_says_when_none_was_there(root):
    fs.write_json_atomic(fs.join(root, "out", "a", "x.json"), {})
    fs.write_json_atomic(fs.join(root, "out", "y.json"), {})
    assert fs.remove(fs.join(root, "out", "y.json")) and fs.exists(fs.join(root, "out", "a", "x.json"))
    assert fs.remove(fs.join(root, "out")) and not fs.exists(fs.join(root, "out", "a", "x.json"))
    assert fs.remove(fs.join(root, "out")) is False


def test_fingerprint_is_stable_and_separates_parts():
    assert fs.fingerprint("ab", "c") == fs.fingerprint("ab", "c") != fs.fingerprint("a", "bc")
    assert len(fs.fingerprint(b"x")) == 16


def test_is_local():
    assert fs.is_local("/tmp/x") and fs.is_local("file:///tmp/x") and not fs.is_local("memory://x")


def test_localize_copies_a_remote_folder_and_notices_a_new_version(tmp_path, monkeypatch):
    monkeypatch.setenv("ELQ_CACHE_DIR", str(tmp_path / "cache"))
    url = f"memory://model-{tmp_path.name}"
    fs.write_bytes_atomic(fs.join(url, "weights.bin"), b"v1")
    first = fs.localize(url)
    assert open(f"{first}/weights.bin", "rb").read() == b"v1" and fs.localize(url) == first
    fs.write_bytes_atomic(fs.join(url, "weights.bin"), b"v2 longer")
    second = fs.localize(url)
    assert second != first and open(f"{second}/weights.bin", "rb").read() == b"v2 longer"


def test_local_staging_uploads_on_success(tmp_path):
    url = f"memory://staged-{tmp_path.name}"
    with fs.local_staging(url) as local:
        open(f"{local}/a.txt", "w").write("hello")
    assert fs.read_bytes(fs.join(url, "a.txt")) == b"hello"


def test_arrow_filesystem_reads_what_fsspec_wrote(root):
    import pyarrow as pa

    url = fs.join(root, "t.parquet")
    with fs.atomic_writer(url) as f:
        pq.write_table(pa.table({"x": [1, 2]}), f)
    filesystem, path = fs.arrow_filesystem(url)
    assert pq.read_table(path, filesystem=filesystem).column("x").to_pylist() == [1, 2]
