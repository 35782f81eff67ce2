"""`elcore.corpus`: every input line accounted for, ids by line number, output checked first."""

import json

import pytest

from elcore.corpus import check_output, link_jsonl, read_jsonl_records
from elcore.errors import ConfigError, InputRecordError


@pytest.fixture()
def linker(tiny_linker):
    return tiny_linker


def test_invalid_utf8_fails_its_line_only(linker, tmp_path):
    good = json.dumps({"id": "a", "text": "paris"}).encode()
    (tmp_path / "in.jsonl").write_bytes(
        good + b"\n" + b'{"id": "b", "text": "caf\xe9"}\n' + good.replace(b'"a"', b'"c"') + b"\n"
    )
    counts = link_jsonl(linker, str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"))
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["status"] for o in out] == ["linked", "failed", "linked"] and counts["failed"] == 1
    assert "not valid UTF-8" in out[1]["error"] and "byte 24" in out[1]["error"] and out[1]["line"] == 2


def test_records_without_ids_are_numbered_by_line_across_chunks(linker, tmp_path):
    lines = [json.dumps({"text": "paris" if i % 2 else ""}) for i in range(300)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    link_jsonl(linker, str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), chunk_size=64)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == [str(i) for i in range(1, 301)]
    assert [o["line"] for o in out] == list(range(1, 301))


def test_output_is_checked_before_any_linking(linker, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "in.jsonl").write_text('{"text": "paris"}\n')
    with pytest.raises(ConfigError, match="is a file"):
        link_jsonl(linker, str(tmp_path / "in.jsonl"), str(tmp_path / "file" / "out.jsonl"))
    with pytest.raises(ConfigError, match="is a directory"):
        check_output(str(tmp_path))
    check_output(str(tmp_path / "new" / "dir" / "out.jsonl"))  # parents that do not exist yet are fine


def test_reader_yields_errors_in_place(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"text": "a"}\n\n{bad\n\xff\xfe\n')
    records = list(read_jsonl_records(str(tmp_path / "in.jsonl")))
    assert [n for n, _ in records] == [1, 3, 4]
    assert isinstance(records[1][1], InputRecordError) and isinstance(records[2][1], InputRecordError)
    with pytest.raises(IsADirectoryError):
        list(read_jsonl_records(str(tmp_path)))


def test_one_reader_for_jsonl_parquet_and_text_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from elcore.corpus import read_documents

    (tmp_path / "a.jsonl").write_bytes(
        b'{"id": "x", "text": "paris"}\n\n{"text": 3}\nnot json\n{"text": "ok"}\n'
    )
    docs = list(read_documents(str(tmp_path / "a.jsonl")))
    assert [(d.line, d.id, d.text) for d in docs] == [
        (1, "x", "paris"),
        (3, "3", None),
        (4, "4", None),
        (5, "5", "ok"),
    ]
    assert "'text'" in docs[1].error and "record 4" in docs[2].error and "invalid JSON" in docs[2].error
    pq.write_table(pa.table({"doc": ["p", "q"], "body": ["berlin", None]}), str(tmp_path / "b.parquet"))
    rows = list(read_documents(str(tmp_path / "b.parquet"), id_field="doc", text_field="body"))
    assert [(r.line, r.id, r.text, r.error is None) for r in rows] == [
        (1, "p", "berlin", True),
        (2, "q", None, False),
    ]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_bytes("caf\xe9".encode("latin-1"))
    (text,) = read_documents(str(tmp_path / "sub" / "c.txt"), root=str(tmp_path))
    assert text.id == "sub/c" and text.text is None and "UTF-8" in text.error
    with pytest.raises(ConfigError, match="cannot tell its format"):
        list(read_documents(str(tmp_path / "d.csv")))


def test_a_document_the_linker_cannot_take_fails_alone(linker):
    from elcore.corpus import Document, link_read

    real = linker.link

    def fragile(texts):
        if any("boom" in t for t in texts):
            raise RuntimeError("boom")
        return real(texts)

    linker.link = fragile
    docs = [
        Document("s", 1, "a", "paris"),
        Document("s", 2, "b", "boom"),
        Document("s", 3, "c", None, "bad line"),
    ]
    results = link_read(linker, docs)
    assert [r.status.value for r in results][1:] == ["failed", "failed"]
    assert results[0].status.value in ("linked", "no_links")
    assert "RuntimeError: boom" in results[1].error and results[2].error == "bad line"
