"""PartStore: parts round-trip (local and memory://), and a damaged part is never done nor read."""

from __future__ import annotations

import pyarrow as pa
import pytest

from elcore import fs
from elcore.parts import PartStore


def table(n: int, offset: int = 0) -> pa.Table:
    return pa.table({"row": list(range(offset, offset + n)), "text": [f"t{i}" for i in range(n)]})


@pytest.fixture(params=["local", "memory"])
def url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out")
    return f"memory://parts-{tmp_path.name}"


def test_parts_round_trip_in_part_order_with_counts(url):
    store = PartStore(url, ("links", "status"))
    store.write("part-00001", {"links": table(2, 10), "status": table(1)}, counts={"docs": 1, "links": 2})
    store.write("part-00000", {"links": table(3), "status": table(2)}, counts={"docs": 2, "links": 3})
    assert list(store.done()) == ["part-00000", "part-00001"]
    assert store.read("links").column("row").to_pylist() == [0, 1, 2, 10, 11]
    assert PartStore.totals(store.records()) == {"docs": 3, "links": 5}
    record = store.records()["part-00000"]["files"]["links"]
    assert record["rows"] == 3 and record["bytes"] > 0 and len(record["sha256"]) == 64


@pytest.mark.parametrize("damage", ["truncated", "same size, other bytes", "missing"])
def test_a_damaged_part_is_neither_done_nor_read(url, damage):
    store = PartStore(url, ("links",))
    store.write("part-00000", {"links": table(3)}, counts={})
    store.write("part-00001", {"links": table(4, 100)}, counts={})
    path = fs.join(url, "links", "part-00001.parquet")
    data = fs.read_bytes(path)
    filesystem, local = fs.filesystem(path)
    if damage == "missing":
        filesystem.rm(local)
    else:
        broken = data[:-5] if damage == "truncated" else data[:-5] + b"xxxxx"
        with filesystem.open(local, "wb") as f:
            f.write(broken)
    assert list(store.done()) == ["part-00000"]
    assert store.read("links").column("row").to_pylist() == [0, 1, 2]
    store.write("part-00001", {"links": table(4, 100)}, counts={})  # what a re-run does
    assert list(store.done()) == ["part-00000", "part-00001"]


def test_raw_bytes_under_named_files(tmp_path):
    store = PartStore(str(tmp_path), ("faiss",), names={"faiss": "shard-{part}.faiss"})
    store.write("00002", {"faiss": b"\x00\x01index"}, counts={"ntotal": 7})
    assert (tmp_path / "shard-00002.faiss").read_bytes() == b"\x00\x01index"
    assert store.done()["00002"]["counts"] == {"ntotal": 7}
