import gzip
import json
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elcore import fs, settings
from elcore.catalogue import CATALOGUE_SCHEMA, EntityCatalogue
from elcore.errors import CatalogueNotFoundError, ElqError, InputRecordError

RECORDS = [
    {"id": "Q90", "qid": "Q90", "title": "Paris", "text": "capital of France", "aliases": ["City of Light"]},
    {"id": "Q64", "qid": "Q64", "title": "Berlin", "text": "", "aliases": [], "sources": ["fb15k"]},
    {"id": "enwiki:paris hilton", "qid": None, "title": "Paris Hilton", "text": "American media personality"},
    {"id": "local:1", "qid": "Q1", "title": "universe", "aliases": ["cosmos", "all"]},
]


def write_jsonl(path, records, gz=False):
    lines = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(lines)
    return str(path)


@pytest.fixture
def memory_dir():
    url = f"memory://test-catalogue-{uuid.uuid4().hex[:8]}"
    yield url
    fs.remove(url)


def test_defaults_and_extra_columns_dropped():
    cat = EntityCatalogue.from_records(RECORDS)
    assert len(cat) == 4
    assert cat.table.schema.equals(CATALOGUE_SCHEMA)
    assert cat.row(2) == {
        "id": "enwiki:paris hilton",
        "qid": None,
        "title": "Paris Hilton",
        "text": "American media personality",
        "aliases": [],
    }
    assert cat.row(3)["text"] == ""
    assert cat.titles([1, 0]) == ["Berlin", "Paris"]
    assert cat.entity_inputs([0, 1]) == [("Paris", "capital of France"), ("Berlin", "")]
    assert cat.has_text([0, 1, 2, 3]).tolist() == [True, False, True, False]
    assert [r["id"] for r in cat.rows(np.array([3, 0]))] == ["local:1", "Q90"]
    with pytest.raises(IndexError, match="out of range"):
        cat.row(4)


def test_lookup_by_id_then_qid():
    cat = EntityCatalogue.from_records(RECORDS)
    rows = cat.lookup(["Q64", "enwiki:paris hilton", "Q1", "local:1", "Q404", ""])
    assert rows.dtype == np.int64
    assert rows.tolist() == [1, 2, 3, 3, -1, -1]
    assert cat.lookup([]).tolist() == []


@pytest.mark.parametrize("gz", [False, True])
def test_jsonl_parquet_round_trip_local(tmp_path, gz):
    source = write_jsonl(tmp_path / ("e.jsonl.gz" if gz else "e.jsonl"), RECORDS, gz=gz)
    from_jsonl = EntityCatalogue.load(source)
    from_jsonl.save(str(tmp_path / "e.parquet"))
    from_parquet = EntityCatalogue.load(str(tmp_path / "e.parquet"))
    assert from_parquet.table.equals(from_jsonl.table)
    assert (
        from_parquet.fingerprint
        == from_jsonl.fingerprint
        == EntityCatalogue.from_records(RECORDS).fingerprint
    )
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 4  # plain pyarrow reads it


def test_round_trip_memory_and_parquet_directory(memory_dir):
    fs.write_bytes_atomic(f"{memory_dir}/e.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS).encode())
    cat = EntityCatalogue.load(f"{memory_dir}/e.jsonl")
    EntityCatalogue.from_records(RECORDS[:2]).save(f"{memory_dir}/parts/part-0.parquet")
    EntityCatalogue.from_records(RECORDS[2:]).save(f"{memory_dir}/parts/part-1.parquet")
    from_dir = EntityCatalogue.load(f"{memory_dir}/parts")
    assert from_dir.table.to_pylist() == cat.table.to_pylist()
    assert from_dir.fingerprint == cat.fingerprint
    assert from_dir.lookup(["Q1"]).tolist() == [3]


def test_fingerprint_depends_on_content_not_chunking():
    cat = EntityCatalogue.from_records(RECORDS)
    rechunked = EntityCatalogue(
        pa.concat_tables([cat.table.slice(0, 1), cat.table.slice(1, 2), cat.table.slice(3)])
    )
    assert rechunked.table.column("id").num_chunks == 3
    assert rechunked.fingerprint == cat.fingerprint
    changed = [dict(r) for r in RECORDS]
    changed[1]["aliases"] = ["Berlin, Germany"]
    assert EntityCatalogue.from_records(changed).fingerprint != cat.fingerprint
    assert len(cat.fingerprint) == 16 and int(cat.fingerprint, 16) >= 0


@pytest.mark.parametrize(
    "line, field, reason",
    [
        ("not json", "<line>", "not valid JSON"),
        ('{"id": "Q2"}', "title", "missing"),
        ('{"id": "", "title": "x"}', "id", "empty"),
        ('{"id": "Q2", "title": 5}', "title", "expected a string"),
        ('{"id": "Q2", "title": "x", "aliases": "y"}', "aliases", "list of strings"),
        ('{"id": "Q2", "title": "x", "aliases": ["y", null]}', "aliases", "list of strings"),
        ('{"id": "Q90", "title": "again"}', "id", "duplicate id 'Q90'"),
        ("[1, 2]", "<record>", "JSON object"),
    ],
)
def test_bad_jsonl_record_names_line_and_field(tmp_path, line, field, reason):
    path = tmp_path / "bad.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in RECORDS[:2])
    path.write_text(good + "\n" + line + "\n" + json.dumps(RECORDS[3]) + "\n")
    with pytest.raises(InputRecordError, match=reason) as info:
        EntityCatalogue.load(str(path))
    assert (info.value.source, info.value.record, info.value.field) == (str(path), 4, field)


def test_bad_records_and_parquet_columns(tmp_path):
    with pytest.raises(InputRecordError) as info:
        EntityCatalogue.from_records([RECORDS[0], {"id": "Q2", "title": "x", "text": 3}])
    assert (info.value.record, info.value.field) == (2, "text")
    with pytest.raises(InputRecordError, match="duplicate id 'Q90'"):
        EntityCatalogue.from_table(pa.Table.from_pylist([RECORDS[0], RECORDS[0]]))
    pq.write_table(pa.table({"id": [1, 2], "title": ["a", "b"]}), tmp_path / "ints.parquet")
    with pytest.raises(InputRecordError, match="expected string") as info:
        EntityCatalogue.load(str(tmp_path / "ints.parquet"))
    assert info.value.field == "id"
    pq.write_table(pa.table({"id": ["a", "b"], "title": ["x", ""]}), tmp_path / "empty.parquet")
    with pytest.raises(InputRecordError, match="empty") as info:
        EntityCatalogue.load(str(tmp_path / "empty.parquet"))
    assert (info.value.record, info.value.field) == ("b", "title")


def test_missing_file(tmp_path, memory_dir):
    for url in (str(tmp_path / "nope.jsonl"), f"{memory_dir}/nope.parquet"):
        with pytest.raises(CatalogueNotFoundError, match="nope") as info:
            EntityCatalogue.load(url)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ElqError)


@pytest.mark.kit
def test_kit_catalogue_loads():
    path = settings.kit_dir() / "catalogue" / "entities.jsonl"
    if not path.exists():
        pytest.skip(f"benchmark kit not found at {path} (set ELQ_KIT_DIR)")
    cat = EntityCatalogue.load(str(path))
    assert len(cat) == 126_534
    assert cat.table.schema.equals(CATALOGUE_SCHEMA)
    paris = cat.lookup(["Q90"])[0]
    assert cat.row(int(paris))["title"] == "Paris"
    assert len(cat.fingerprint) == 16


def test_a_saved_catalogue_loads_without_validating_or_hashing_again(tmp_path, monkeypatch):
    import elcore.catalogue as catalogue_module

    records = [
        {"id": "Q90", "title": "Paris", "aliases": ["City of Light"]},
        {"id": "Q142", "title": "France"},
    ]
    catalogue = EntityCatalogue.from_records(records)
    catalogue.save(str(tmp_path / "c.parquet"))
    with monkeypatch.context() as patched:  # neither may run for a file `save` wrote
        patched.setattr(catalogue_module, "_first_problem", lambda table: pytest.fail("validated again"))
        patched.setattr(catalogue_module, "_content_fingerprint", lambda table: pytest.fail("hashed again"))
        loaded = EntityCatalogue.load(str(tmp_path / "c.parquet"))
        assert loaded.fingerprint == catalogue.fingerprint and loaded.table.equals(catalogue.table)
    # a file rewritten with other rows under the same record is checked like any other file
    table = pq.read_table(str(tmp_path / "c.parquet"))
    doubled = pa.concat_tables([table, table]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(doubled, str(tmp_path / "d.parquet"))
    with pytest.raises(InputRecordError, match="Q90"):
        EntityCatalogue.load(str(tmp_path / "d.parquet"))
