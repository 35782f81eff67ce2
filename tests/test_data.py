"""elcore.data: parsing, validation with line + field, round trips, and the kit's webqsp/dev counts."""

from __future__ import annotations

import gzip
import json
import uuid

import fsspec
import pytest

from elcore import settings
from elcore.data import Example, GoldMention, iter_examples, read_examples, write_examples
from elcore.errors import InputRecordError

KIT_LINE = {
    "id": "WebQTrn-2987",
    "text": "who are betty white's husbands?",
    "mentions": [[8, 19], None],
    "wikidata_id": ["Q373895", "Q8445"],
    "entity": ["Betty White", "Marriage"],
    "span_source": ["gold", None],
}


@pytest.fixture
def mem_dir():
    base = f"memory://elq-tests-data/{uuid.uuid4().hex}"
    yield base
    fs = fsspec.filesystem("memory")
    if fs.exists(base):
        fs.rm(base, recursive=True)


def _write_lines(url: str, lines: list[str]) -> None:
    with fsspec.open(url, "wb") as f:
        f.write("".join(line + "\n" for line in lines).encode("utf-8"))


def test_kit_line_with_null_span():
    ex = Example.from_dict(KIT_LINE)
    assert ex.id == "WebQTrn-2987"
    assert ex.mentions == (
        GoldMention(8, 19, "Q373895", "Betty White", "gold"),
        GoldMention(None, None, "Q8445", "Marriage", None),
    )
    assert [m.has_span for m in ex.mentions] == [True, False]
    assert ex.text[8:19] == "betty white"
    assert ex.to_dict() == KIT_LINE


def test_el4qa_line_extra_fields_ignored():
    line = {
        "id": "WebQTest-0",
        "text": "what does jamaican people speak?",
        "mentions": [[10, 18]],
        "wikidata_id": ["Q766"],
        "entity": ["Jamaica"],
        "label_id": [12345],
        "label": ["Jamaica is a country ..."],
        "tokenized_text_ids": [101, 2054, 2515, 102],
        "tokenized_mention_idxs": [[3, 4]],
    }
    ex = Example.from_dict(line)
    assert ex.mentions == (GoldMention(10, 18, "Q766", "Jamaica", None),)


def test_entity_id_preferred_over_wikidata_id():
    line = {"id": "z1", "text": "the hive", "mentions": [[4, 8]], "entity_id": ["enwiki:hive"]}
    assert Example.from_dict(line).mentions[0].entity == "enwiki:hive"
    both = {**line, "wikidata_id": ["Q1"]}
    assert Example.from_dict(both).mentions[0].entity == "enwiki:hive"
    null_entity_id = {**both, "entity_id": None}
    assert Example.from_dict(null_entity_id).mentions[0].entity == "Q1"


def test_example_without_gold_is_kept():
    ex = Example.from_dict({"id": "e", "text": "hello", "mentions": [], "wikidata_id": []})
    assert ex.mentions == ()


BAD = [
    ("{not json", "<line>", "invalid JSON"),
    ('["a list"]', "<record>", "JSON object"),
    (json.dumps({"text": "x", "mentions": [], "wikidata_id": []}), "id", "missing"),
    (json.dumps({"id": 7, "text": "x", "mentions": [], "wikidata_id": []}), "id", "non-empty string"),
    (json.dumps({"id": "a", "mentions": [], "wikidata_id": []}), "text", "missing"),
    (json.dumps({"id": "a", "text": 3, "mentions": [], "wikidata_id": []}), "text", "string"),
    (json.dumps({"id": "a", "text": "x", "wikidata_id": []}), "mentions", "missing"),
    (json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]]}), "wikidata_id", "entity_id"),
    (json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": "Q1"}), "wikidata_id", "list"),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": ["Q1", "Q2"]}),
        "wikidata_id",
        "align",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": ["Q1"], "entity": []}),
        "entity",
        "align",
    ),
    (
        json.dumps(
            {"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": ["Q1"], "span_source": ["g", 1]}
        ),
        "span_source",
        "align",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 3]], "wikidata_id": ["Q1"]}),
        "mentions",
        "len(text)",
    ),
    (json.dumps({"id": "a", "text": "xy", "mentions": [[-1, 1]], "wikidata_id": ["Q1"]}), "mentions", "0 <="),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[1, 1]], "wikidata_id": ["Q1"]}),
        "mentions",
        "start < end",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [["0", 1]], "wikidata_id": ["Q1"]}),
        "mentions",
        "integers",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1, 2]], "wikidata_id": ["Q1"]}),
        "mentions",
        "integers",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[True, 1]], "wikidata_id": ["Q1"]}),
        "mentions",
        "integers",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": [5]}),
        "wikidata_id",
        "id string",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": [""]}),
        "wikidata_id",
        "id string",
    ),
    (
        json.dumps({"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": ["Q1"], "entity": [3]}),
        "entity",
        "string or null",
    ),
    (
        json.dumps(
            {"id": "a", "text": "xy", "mentions": [[0, 1]], "wikidata_id": ["Q1"], "span_source": [{}]}
        ),
        "span_source",
        "string or null",
    ),
]


@pytest.mark.parametrize(("line", "field", "reason"), BAD)
def test_bad_record_names_line_and_field(mem_dir, line, field, reason):
    url = f"{mem_dir}/bad.jsonl"
    good = json.dumps(KIT_LINE)
    _write_lines(url, [good, "", line, good])  # the bad record is on line 3 (a blank line 2 is skipped)

    with pytest.raises(InputRecordError) as info:
        read_examples(url)
    err = info.value
    assert (err.source, err.record, err.field) == (url, 3, field)
    assert reason in err.reason
    assert f"record 3: field {field!r}" in str(err)

    streamed = iter_examples(url)
    assert isinstance(next(streamed), Example)  # the good line before it streams
    with pytest.raises(InputRecordError):
        next(streamed)


def test_error_names_the_id_when_known(mem_dir):
    url = f"{mem_dir}/bad.jsonl"
    _write_lines(url, [json.dumps({**KIT_LINE, "mentions": [[8, 99], None]})])
    with pytest.raises(InputRecordError, match="WebQTrn-2987"):
        read_examples(url)
    # Without a line number, the record is named by its id.
    with pytest.raises(InputRecordError) as info:
        Example.from_dict({**KIT_LINE, "mentions": [[8, 99], None]})
    assert info.value.record == "WebQTrn-2987"


def test_invalid_utf8_is_a_record_error(mem_dir):
    url = f"{mem_dir}/bin.jsonl"
    with fsspec.open(url, "wb") as f:
        f.write(json.dumps(KIT_LINE).encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(InputRecordError) as info:
        read_examples(url)
    assert (info.value.record, info.value.field) == (2, "<line>") and "UTF-8" in info.value.reason


@pytest.mark.parametrize("name", ["ex.jsonl", "ex.jsonl.gz"])
def test_memory_round_trip(mem_dir, name):
    url = f"{mem_dir}/{name}"
    examples = [
        Example.from_dict(KIT_LINE),
        Example("e2", "no gold here", ()),
        Example("e3", "the hive ünïcode", (GoldMention(4, 8, "enwiki:hive", None, "string_match"),)),
    ]
    assert write_examples(url, examples) == 3
    assert read_examples(url) == examples
    assert read_examples(url, limit=2) == examples[:2]
    if name.endswith(".gz"):
        with fsspec.open(url, "rb") as f:
            assert gzip.decompress(f.read()).startswith(b'{"id": "WebQTrn-2987"')


def test_local_file_round_trip(tmp_path):
    url = str(tmp_path / "sub" / "ex.jsonl")
    examples = [Example.from_dict(KIT_LINE)]
    write_examples(url, examples)
    assert read_examples(url) == examples
    assert json.loads((tmp_path / "sub" / "ex.jsonl").read_text()) == KIT_LINE


WEBQSP_DEV = settings.kit_dir() / "data" / "webqsp" / "dev.jsonl"


@pytest.mark.kit
@pytest.mark.skipif(not WEBQSP_DEV.exists(), reason=f"kit file not found: {WEBQSP_DEV} (set ELQ_KIT_DIR)")
def test_kit_webqsp_dev_counts():
    examples = read_examples(str(WEBQSP_DEV))
    mentions = [m for ex in examples for m in ex.mentions]
    assert len(examples) == 619
    assert len(mentions) == 664
    assert sum(m.has_span for m in mentions) == 591
    assert all(m.span_source == "gold" for m in mentions if m.has_span)
