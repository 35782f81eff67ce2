"""Knowledge base from a Wikipedia dump: a small dump written here, outputs checked exactly."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from elcore.errors import ConfigError, InputRecordError
from elcore.wikipedia import (
    CATALOGUE_SCHEMA,
    DumpReader,
    KbBuildConfig,
    PageError,
    RawPage,
    build_kb,
    load_wikidata_map,
    write_dump,
)
from elcore.wikipedia import wikitext as wikitext_module
from elcore.wikipedia.config import resolve_tokenizer
from elcore.wikipedia.dump import ByteRange, plan_ranges, read_multistream_index
from elcore.wikipedia.passages import Windower, in_sample, load_tokenizer
from elcore.wikipedia.wikitext import LinkClassifier, cut_description, normalize_title, parse_article

PARIS = """{{Infobox settlement
| name = Paris
| image_skyline = [[File:Paris skyline.jpg|250px|The [[Seine]] at dusk]]
| country = [[France]]
}}
'''Paris''' ({{IPA-fr|paʁi}}) is the capital of [[France]].<ref>{{cite web|url=https://example.org|title=Paris \
facts}}</ref> It lies on the [[Seine|river Seine]] in [[Île-de-France]].<ref name="a"/><!-- a comment with [[Berlin]] -->

[[File:Eiffel Tower.jpg|thumb|The [[Eiffel Tower]] at night]]
Its museums include the [[Louvre]] and [[Le Louvre|the old palace]]. See [[Paris]] itself, [[Mercury]] and the \
[[Paris Métro|''métro'']].

{| class="wikitable"
! Year !! Population
|-
| 2019 || [[Demographics of Paris|2.1 million]]
|}
== History ==
The [[Parisii (Gaul)|Parisii]] settled here. [[Zurich|Zürich]] is [[Louvre Museum|[[Zürich]] nested]] elsewhere.

== References ==
{{reflist}}
[[Category:Capitals in Europe]]
"""

PAGES = [
    RawPage(10, "Paris", 0, PARIS),
    RawPage(
        11,
        "France",
        0,
        "{{Short description|Country in Europe}}\n'''France''' is a country whose capital is [[Paris]]. "
        "It borders [[Zürich|Switzerland]]{{citation needed}}.",
    ),
    RawPage(12, "Île-de-France", 0, "'''Île-de-France''' is the region around [[Paris]] in [[france]]."),
    RawPage(13, "Zürich", 0, "'''Zürich''' is the largest city in Switzerland. It is not [[Paris]]."),
    RawPage(14, "Louvre Museum", 0, "The '''Louvre''' is an art museum in [[Paris]]. It was a royal palace."),
    RawPage(15, "Louvre", 0, "#REDIRECT [[Louvre Museum]]", redirect="Louvre Museum"),
    RawPage(16, "Le Louvre", 0, "#REDIRECT [[Louvre]]", redirect="Louvre"),
    RawPage(17, "Seine", 0, "The '''Seine''' is a river that flows through [[Paris]] and [[Île-de-France]]."),
    RawPage(
        18,
        "Mercury",
        0,
        "'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n* [[Mercury (element)]]\n{{disambiguation}}",
    ),
    RawPage(19, "Talk:Paris", 1, "Talk about [[Paris]]."),
    RawPage(20, "Zurich", 0, "#REDIRECT [[Zürich]]", redirect="Zürich"),
    RawPage(
        21,
        "Eiffel Tower",
        0,
        "The '''Eiffel Tower''' is {{convert|330|m}} tall and stands in [[Paris]].<ref>Height.</ref> "
        "It was built for the [[Exposition Universelle (1889)|1889 World's Fair]].",
    ),
]

PAGE_PROPS_SQL = """-- MySQL dump 10.16  Distrib 10.1.38-MariaDB
INSERT INTO `page_props` VALUES (10,'wikibase_item','Q90',NULL),(10,'page_image_free','Paris.jpg',NULL),\
(11,'wikibase_item','Q142',NULL),(12,'defaultsort','Ile-de-France',NULL),(12,'wikibase_item','Q13917',NULL);
INSERT INTO `page_props` VALUES (13,'wikibase_item','Q72',NULL),(14,'wikibase_item','Q19675',NULL),\
(18,'disambiguation','',NULL),(18,'wikibase_item','Q201',NULL),(21,'wikibase_item','Q243',NULL);
"""

EXPECTED_CATALOGUE = [
    {
        "id": "Q90",
        "qid": "Q90",
        "title": "Paris",
        "text": "Paris is the capital of France. It lies on the river Seine in Île-de-France.",
        "aliases": [],
        "page_id": 10,
    },
    {
        "id": "Q142",
        "qid": "Q142",
        "title": "France",
        "text": "France is a country whose capital is Paris. It borders Switzerland.",
        "aliases": [],
        "page_id": 11,
    },
    {
        "id": "Q13917",
        "qid": "Q13917",
        "title": "Île-de-France",
        "text": "Île-de-France is the region around Paris in france.",
        "aliases": [],
        "page_id": 12,
    },
    {
        "id": "Q72",
        "qid": "Q72",
        "title": "Zürich",
        "text": "Zürich is the largest city in Switzerland. It is not Paris.",
        "aliases": ["Zurich"],
        "page_id": 13,
    },
    {
        "id": "Q19675",
        "qid": "Q19675",
        "title": "Louvre Museum",
        "text": "The Louvre is an art museum in Paris. It was a royal palace.",
        "aliases": ["Le Louvre", "Louvre"],
        "page_id": 14,
    },
    {
        "id": "enwiki:17",
        "qid": None,
        "title": "Seine",
        "text": "The Seine is a river that flows through Paris and Île-de-France.",
        "aliases": [],
        "page_id": 17,
    },
    {
        "id": "Q243",
        "qid": "Q243",
        "title": "Eiffel Tower",
        "text": "The Eiffel Tower is 330 m tall and stands in Paris. It was built for the 1889 World's Fair.",
        "aliases": [],
        "page_id": 21,
    },
]


def _passage(pid: str, text: str, mentions: list[tuple[int, int, str]]) -> dict:
    ids = {"France": "Q142", "Seine": None, "Île-de-France": "Q13917", "Paris": "Q90", "Zürich": "Q72"}
    ids |= {"Louvre Museum": "Q19675"}
    return {
        "id": pid,
        "text": text,
        "mentions": [[s, e] for s, e, _ in mentions],
        "wikidata_id": [ids[t] for _, _, t in mentions],
        "entity": [t for _, _, t in mentions],
        "entity_id": [ids[t] or "enwiki:17" for _, _, t in mentions],
        "span_source": ["anchor"] * len(mentions),
    }


# Passages of at most 32 wordpieces, ELQ's default filter: every link must resolve.
EXPECTED_PASSAGES = [
    _passage(
        "10-0",
        "Paris is the capital of France. It lies on the river Seine in Île-de-France.",
        [(24, 30, "France"), (47, 58, "Seine"), (62, 75, "Île-de-France")],
    ),
    _passage(
        "11-0",
        "France is a country whose capital is Paris. It borders Switzerland.",
        [(37, 42, "Paris"), (55, 66, "Zürich")],
    ),
    _passage(
        "12-0", "Île-de-France is the region around Paris in france.", [(35, 40, "Paris"), (44, 50, "France")]
    ),
    _passage("13-0", "Zürich is the largest city in Switzerland. It is not Paris.", [(53, 58, "Paris")]),
    _passage("14-0", "The Louvre is an art museum in Paris. It was a royal palace.", [(31, 36, "Paris")]),
    _passage(
        "17-0",
        "The Seine is a river that flows through Paris and Île-de-France.",
        [(40, 45, "Paris"), (50, 63, "Île-de-France")],
    ),
]
# With keep_partial_passages the two Paris passages with unresolvable links stay, without those links
# (Mercury: a disambiguation page; Paris Métro, Parisii (Gaul): missing) or the self-link to Paris.
PARTIAL_EXTRA = {
    "10-1": _passage(
        "10-1",
        "Its museums include the Louvre and the old palace. See Paris itself, Mercury and the métro.",
        [(24, 30, "Louvre Museum"), (35, 49, "Louvre Museum")],
    ),
    "10-2": _passage(
        "10-2",
        "The Parisii settled here. Zürich is Zürich nested elsewhere.",
        [(26, 32, "Zürich"), (36, 49, "Louvre Museum")],
    ),
    "21-0": _passage(
        "21-0",
        "The Eiffel Tower is 330 m tall and stands in Paris. It was built for the 1889 World's Fair.",
        [(45, 50, "Paris")],
    ),
}

COUNTS = {
    "pages_seen": 12,
    "article_pages": 7,
    "redirects": 3,
    "disambiguations": 1,
    "skipped": {"other_namespace": 1},
    "links_found": 21,
    "links_resolved": 16,
    "links_via_redirect": 3,
    "links_self": 1,
    "links_unresolved": {"disambiguation": 1, "missing": 3},
    "catalogue_rows": 7,
    "rows_with_qid": 6,
    "aliases": 3,
    "passages_made": 9,
    "passages_written": 6,
    "passages_dropped": {"unresolved_link": 3},
}


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict[str, str]:
    """The dump in its three forms, plus the page_props map."""
    root = tmp_path_factory.mktemp("dumps")
    paths = {
        "xml": str(root / "pages.xml"),
        "bz2": str(root / "pages.xml.bz2"),
        "multistream": str(root / "pages-multistream.xml.bz2"),
        "index": str(root / "pages-multistream-index.txt.bz2"),
        "page_props": str(root / "page_props.sql.gz"),
    }
    write_dump(paths["xml"], PAGES, form="xml")
    write_dump(paths["bz2"], PAGES, form="bz2")
    write_dump(paths["multistream"], PAGES, form="multistream", index_url=paths["index"], pages_per_stream=2)
    Path(paths["page_props"]).write_bytes(gzip.compress(PAGE_PROPS_SQL.encode("utf-8")))
    return paths


def _config(dump: str, out: Path | str, **kw) -> KbBuildConfig:
    kw.setdefault("passage_max_wordpieces", 32)
    return KbBuildConfig(dump=dump, output=str(out), progress=False, **kw)


def _read(out: Path) -> tuple[list[dict], list[dict]]:
    catalogue = pq.read_table(out / "catalogue.parquet").to_pylist()
    passages = [json.loads(line) for line in (out / "passages.jsonl").read_text("utf-8").splitlines()]
    return catalogue, passages


def _counts(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k not in ("mode", "num_blocks", "seconds", "pages_per_second")}


# -- the whole build ---------------------------------------------------------------------------------


def test_catalogue_and_passages_exact(dumps, tmp_path):
    stats = build_kb(_config(dumps["multistream"], tmp_path, wikidata_map=dumps["page_props"]))
    catalogue, passages = _read(tmp_path)
    assert catalogue == EXPECTED_CATALOGUE
    assert passages == EXPECTED_PASSAGES
    assert pq.read_schema(tmp_path / "catalogue.parquet").remove_metadata() == CATALOGUE_SCHEMA
    counts = stats.to_dict()
    assert {k: counts[k] for k in COUNTS} == COUNTS
    assert json.loads((tmp_path / "stats.json").read_text())["catalogue_rows"] == 7
    assert not (tmp_path / "_work").exists()
    for passage in passages:  # kit format: aligned lists, spans inside the text, sorted
        n = len(passage["mentions"])
        assert all(len(passage[k]) == n for k in ("wikidata_id", "entity", "entity_id", "span_source"))
        assert passage["mentions"] == sorted(passage["mentions"])
    # Every resolved link's anchor text is counted (kept passages or not), ready for the prior table.
    anchors = pq.read_table(tmp_path / "anchors.parquet")
    assert sum(anchors.column("count").to_pylist()) == counts["links_resolved"]
    kept = {
        (p["text"][s:e], i) for p in passages for (s, e), i in zip(p["mentions"], p["entity_id"], strict=True)
    }
    assert kept <= set(
        zip(anchors.column("surface").to_pylist(), anchors.column("entity").to_pylist(), strict=True)
    )
    from elcore.catalogue import EntityCatalogue
    from elcore.priors import PriorTable

    catalogue_table = EntityCatalogue.load(str(tmp_path / "catalogue.parquet"))
    priors = PriorTable.build(catalogue_table, anchor_counts=anchors)
    assert priors.counts.sum() == counts["links_resolved"]  # every anchor's entity is in the catalogue


def test_keep_partial_passages(dumps, tmp_path):
    config = _config(dumps["xml"], tmp_path, wikidata_map=dumps["page_props"], keep_partial_passages=True)
    build_kb(config)
    _, passages = _read(tmp_path)
    expected = sorted(
        EXPECTED_PASSAGES + list(PARTIAL_EXTRA.values()), key=lambda p: tuple(map(int, p["id"].split("-")))
    )
    assert passages == expected


def test_forms_give_identical_output(dumps, tmp_path):
    outputs = []
    for form in ("xml", "bz2", "multistream"):
        out = tmp_path / form
        stats = build_kb(_config(dumps[form], out))
        outputs.append(((out / "catalogue.parquet").read_bytes(), (out / "passages.jsonl").read_bytes()))
        assert stats.pages_seen == 12 and stats.catalogue_rows == 7
    assert outputs[0] == outputs[1] == outputs[2]


def test_gzip_members_and_own_work_dir(tmp_path):
    xml = tmp_path / "d.xml"
    write_dump(str(xml), PAGES)
    data = xml.read_bytes()
    half = data.index(b"  <page>", len(data) // 2)
    (tmp_path / "d.xml.gz").write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("not ours")
    stats = build_kb(_config(str(tmp_path / "d.xml.gz"), tmp_path / "out", work_dir=str(work)))
    assert stats.catalogue_rows == 7 and stats.errors_total == 0
    assert sorted(p.name for p in work.iterdir()) == ["keep.txt"]


def test_fsspec_urls_in_and_out(dumps, tmp_path):
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe("/wiki/pages.xml.bz2", Path(dumps["bz2"]).read_bytes())
    build_kb(_config("memory://wiki/pages.xml.bz2", "memory://wiki/out"))
    build_kb(_config(dumps["bz2"], tmp_path))
    for name in ("catalogue.parquet", "passages.jsonl"):
        assert memory.cat(f"/wiki/out/{name}") == (tmp_path / name).read_bytes()
    memory.rm("/wiki", recursive=True)


def test_catalogue_loads_in_elcore(dumps, tmp_path):
    catalogue_module = pytest.importorskip("elcore.catalogue")
    build_kb(_config(dumps["xml"], tmp_path, wikidata_map=dumps["page_props"]))
    catalogue = catalogue_module.EntityCatalogue.load(str(tmp_path / "catalogue.parquet"))
    assert len(catalogue) == 7


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_parallel_matches_single_pass(dumps, tmp_path, ray_local):
    from pipelines.wikipedia import run

    broken = b"  <page>\n    <title>Broken</title>\n    <ns>0</ns>\n    <id>30</id>\n    <text>a & b</text>\n  </page>\n"
    dump, index = str(tmp_path / "m.xml.bz2"), str(tmp_path / "m-index.txt")
    write_dump(
        dump, [*PAGES[:5], broken, *PAGES[5:]], form="multistream", index_url=index, pages_per_stream=2
    )
    kw = {"wikidata_map": dumps["page_props"], "keep_partial_passages": True}
    single = run(_config(dump, tmp_path / "single", index=index, parallel=False, **kw))
    parallel = run(_config(dump, tmp_path / "parallel", index=index, num_blocks=3, num_workers=2, **kw))
    assert (single.mode, parallel.mode, parallel.num_blocks) == ("single", "parallel", 3)
    for name in ("catalogue.parquet", "passages.jsonl"):
        assert (tmp_path / "single" / name).read_bytes() == (tmp_path / "parallel" / name).read_bytes()
    assert _counts(single.to_dict()) == _counts(parallel.to_dict())
    assert parallel.skipped["invalid_xml"] == 1 and parallel.errors[0]["page_id"] == 30


def test_cli_entry_single_pass(dumps, tmp_path, capsys):
    from pipelines.wikipedia import main

    summary = main(["--dump", dumps["bz2"], "--output", str(tmp_path), "--no-progress", "--seed", "3"])
    assert summary["catalogue_rows"] == 7 and summary["mode"] == "single"
    assert json.loads(capsys.readouterr().out)["catalogue_rows"] == 7


# -- bad input ---------------------------------------------------------------------------------------


def test_invalid_xml_and_unparsable_wikitext_are_reported(tmp_path, monkeypatch):
    broken = b"  <page>\n    <title>Broken</title>\n    <ns>0</ns>\n    <id>30</id>\n    <text>a & b</text>\n  </page>\n"
    poison = RawPage(31, "Poison", 0, "POISON [[Paris]]")
    dump = str(tmp_path / "d.xml")
    write_dump(dump, [PAGES[0], broken, poison, *PAGES[1:]])
    real_parse = wikitext_module.mwparserfromhell.parse

    def parse(text, *args, **kwargs):
        if text.startswith("POISON"):
            raise ValueError("tokenizer gave up")
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(wikitext_module.mwparserfromhell, "parse", parse)
    stats = build_kb(_config(dump, tmp_path / "out"))
    assert stats.pages_seen == 14 and stats.catalogue_rows == 7
    assert stats.skipped == {"other_namespace": 1, "invalid_xml": 1, "parse_error": 1}
    assert stats.errors_total == 2
    assert [(e["page_id"], e["title"]) for e in stats.errors] == [(30, "Broken"), (31, "Poison")]
    assert stats.errors[0]["reason"].startswith("invalid XML")
    assert stats.errors[1]["reason"] == "wikitext: ValueError: tokenizer gave up"


def test_truncated_bz2_stream_is_reported(tmp_path):
    dump = tmp_path / "m.xml.bz2"
    index = str(tmp_path / "i.txt")
    write_dump(str(dump), PAGES, form="multistream", index_url=index, pages_per_stream=4)
    offsets = read_multistream_index(index)
    data = dump.read_bytes()
    dump.write_bytes(data[: offsets[2] + 40])  # cut inside the third (last) page stream
    stats = build_kb(_config(str(dump), tmp_path / "out"))
    assert stats.pages_seen == 8  # the pages of the first two streams
    assert stats.skipped["truncated"] == 1
    assert "truncated bz2 stream" in stats.errors[0]["reason"]
    catalogue, _ = _read(tmp_path / "out")
    assert [r["page_id"] for r in catalogue] == [10, 11, 12, 13, 14, 17]


def test_plain_dump_ending_inside_a_page(tmp_path):
    dump = tmp_path / "d.xml"
    write_dump(str(dump), PAGES[:3])
    data = dump.read_bytes()
    dump.write_bytes(data[: data.rfind(b"<revision>")])
    items = list(DumpReader(str(dump)))
    assert [type(i) for i in items] == [RawPage, RawPage, PageError]
    assert items[2].kind == "truncated" and items[2].page_id == 12


def test_corrupt_bz2_stream_skips_to_next_stream(tmp_path):
    dump = tmp_path / "m.xml.bz2"
    index = str(tmp_path / "i.txt")
    write_dump(str(dump), PAGES, form="multistream", index_url=index, pages_per_stream=4)
    offsets = read_multistream_index(index)
    data = bytearray(dump.read_bytes())
    data[offsets[1] + 40 : offsets[1] + 60] = bytes(20)  # damage the second page stream
    dump.write_bytes(bytes(data))
    items = list(DumpReader(str(dump)))
    pages = [i.page_id for i in items if isinstance(i, RawPage)]
    assert pages == [10, 11, 12, 13, 18, 19, 20, 21]
    assert [i.kind for i in items if isinstance(i, PageError)] == ["bz2_error"]


# -- Wikidata maps -----------------------------------------------------------------------------------


def test_wikidata_map_forms(dumps, tmp_path):
    sql = load_wikidata_map(dumps["page_props"])
    assert sql.by_page_id == {
        10: "Q90",
        11: "Q142",
        12: "Q13917",
        13: "Q72",
        14: "Q19675",
        18: "Q201",
        21: "Q243",
    }
    assert sql.disambiguation_ids == {18}
    (tmp_path / "m.tsv").write_text("page\tqid\n10\tQ90\nzürich\tQ72\n")
    tsv = load_wikidata_map(str(tmp_path / "m.tsv"))
    assert tsv.qid(10, "x") == "Q90" and tsv.qid(99, "Zürich") == "Q72"
    (tmp_path / "m.csv").write_text('"Louvre_Museum",Q19675\n11,Q142\n')
    csv_map = load_wikidata_map(str(tmp_path / "m.csv"))
    assert csv_map.by_title == {"Louvre Museum": "Q19675"} and csv_map.by_page_id == {11: "Q142"}
    (tmp_path / "bad.csv").write_text("10,Q90\n11,France\n")
    with pytest.raises(InputRecordError, match="record 2"):
        load_wikidata_map(str(tmp_path / "bad.csv"))


def test_title_map_duplicate_qid_and_page_props_disambiguation(dumps, tmp_path):
    (tmp_path / "m.csv").write_text("Paris,Q90\nSeine,Q90\n")
    stats = build_kb(_config(dumps["xml"], tmp_path / "a", wikidata_map=str(tmp_path / "m.csv")))
    rows = {r["title"]: r for r in _read(tmp_path / "a")[0]}
    assert (rows["Paris"]["id"], rows["Seine"]["id"], rows["Seine"]["qid"]) == ("Q90", "enwiki:17", "Q90")
    assert stats.duplicate_qids == 1
    sql = "INSERT INTO `page_props` VALUES (17,'disambiguation','',NULL);\n"
    (tmp_path / "pp.sql").write_text("-- dump\n" + sql)
    stats = build_kb(_config(dumps["xml"], tmp_path / "b", wikidata_map=str(tmp_path / "pp.sql")))
    assert "Seine" not in {r["title"] for r in _read(tmp_path / "b")[0]}
    assert stats.disambiguations == 2 and stats.catalogue_rows == 6


# -- passages ----------------------------------------------------------------------------------------

LONG = " ".join(
    f"Sentence {i} mentions [[Paris]] and the [[Louvre Museum|great museum]] near the [[Seine|river]]."
    for i in range(30)
)


def test_windows_fit_and_keep_links_whole():
    tokenizer = load_tokenizer(resolve_tokenizer(None))
    article = parse_article(LONG + "\n\nA short second paragraph about [[France]].", LinkClassifier())
    windows, lost = Windower(resolve_tokenizer(None), 24).windows(article.paragraphs)
    assert lost == 0 and len(windows) > 5
    for window in windows:
        assert len(tokenizer.encode(window.text).tokens) <= 24  # with [CLS] and [SEP]
        assert window.text.endswith(".")  # cut at sentence ends
        for link in window.links:
            assert window.text[link.start : link.end] in ("Paris", "great museum", "river", "France")
    assert " ".join(w.text for w in windows).replace("\n", " ") == " ".join(
        p.text for p in article.paragraphs
    )


def test_long_sentence_is_cut_at_word_boundaries_outside_links():
    text = "Words " * 40 + "[[Louvre Museum|the very long museum name]] " + "more " * 40
    article = parse_article(text, LinkClassifier())
    windows, lost = Windower(resolve_tokenizer(None), 16).windows(article.paragraphs)
    assert lost == 0
    assert sum(len(w.links) for w in windows) == 1
    assert " ".join(w.text for w in windows) == article.paragraphs[0].text


def test_cap_and_seeded_sample(tmp_path):
    pages = [
        RawPage(1, "Paris", 0, LONG),
        RawPage(2, "Louvre Museum", 0, "Museum."),
        RawPage(3, "Seine", 0, "River."),
    ]
    dump = str(tmp_path / "d.xml")
    write_dump(dump, pages)
    build_kb(_config(dump, tmp_path / "all"))
    all_ids = [p["id"] for p in _read(tmp_path / "all")[1]]
    assert len(all_ids) > 10
    build_kb(_config(dump, tmp_path / "cap", max_passages_per_article=2))
    assert [p["id"] for p in _read(tmp_path / "cap")[1]] == ["1-0", "1-1"]
    samples = []
    for seed in (1, 2):
        stats = build_kb(_config(dump, tmp_path / f"s{seed}", sample_fraction=0.5, seed=seed))
        ids = [p["id"] for p in _read(tmp_path / f"s{seed}")[1]]
        assert ids == [i for i in all_ids if in_sample(seed, i, 0.5)]
        assert stats.passages_dropped["sample"] == len(all_ids) - len(ids)
        samples.append(ids)
    assert samples[0] != samples[1]


def test_redirect_loops_and_chains(tmp_path):
    pages = [
        RawPage(1, "A", 0, "'''A''' links [[B]], [[C]], [[D]] and [[E]]."),
        RawPage(2, "B", 0, None, redirect="C"),
        RawPage(3, "C", 0, None, redirect="B"),
        RawPage(4, "D", 0, None, redirect="A"),
        RawPage(5, "E", 0, None, redirect="Nowhere"),
    ]
    dump = str(tmp_path / "d.xml")
    write_dump(dump, pages)
    stats = build_kb(_config(dump, tmp_path / "o", keep_partial_passages=True, min_mentions_per_passage=0))
    assert stats.links_unresolved == {"broken_redirect": 1, "redirect_loop": 2}
    assert stats.links_self == 1
    assert _read(tmp_path / "o")[0][0]["aliases"] == ["D"]


# -- small pieces ------------------------------------------------------------------------------------


def test_wikitext_cleaning():
    text = (
        "{{About|the city|other uses|Paris (disambiguation)}}\n"
        "'''Paris''' ({{IPAc-en|p|ær|ɪ|s}}; {{IPA-fr|paʁi}}) had a GDP of ${{formatnum:808}} billion,"
        "{{efn|A note on [[Money]].}}{{sfn|Smith|2001}} see [[Paris, Texas|]] and [[apple]]s "
        "in {{lang|fr|[[Île-de-France]]}}.\n<gallery>\nFile:A.jpg|[[A]]\n</gallery>\n"
        "<blockquote>A [[quote]].</blockquote>\n;Term\n:Definition with [[wikt:word|a word]].\n"
        "[[fr:Paris]] __NOTOC__"
    )
    article = parse_article(text, LinkClassifier())
    shown = [
        (p.text, p.prose, [(p.text[k.start : k.end], k.target) for k in p.links]) for p in article.paragraphs
    ]
    assert shown == [
        (
            "Paris had a GDP of $808 billion, see Paris and apples in Île-de-France.",
            True,
            [("Paris", "Paris, Texas"), ("apples", "Apple"), ("Île-de-France", "Île-de-France")],
        ),
        ("A quote.", True, [("quote", "Quote")]),
        ("Term", False, []),
        ("Definition with a word.", False, []),
    ]
    assert not article.is_disambiguation
    dab = parse_article("'''X''' may refer to:\n* [[Y]]\n{{Hndis|name=X}}", LinkClassifier())
    assert dab.is_disambiguation


def test_description_cut_and_titles():
    assert cut_description("One. Two three. Four", 16) == "One. Two three."
    assert cut_description("No sentence end here at all", 12) == "No sentence"
    assert cut_description("Short.", 600) == "Short."
    assert normalize_title("  united_States#History") == "United States"
    assert normalize_title("île-de-France") == "Île-de-France"
    classify = LinkClassifier().classify
    assert classify("File:X.jpg") == ("file", "")
    assert classify("image:X.jpg") == ("file", "")
    assert classify("Category:Y") == ("category", "")
    assert classify(":Category:Y") == ("other", "")
    assert classify("de:Paris") == ("interlanguage", "")
    assert classify("wikt:paris") == ("other", "")
    assert classify("#History") == ("none", "")
    assert classify("Star Wars: Episode IV") == ("article", "Star Wars: Episode IV")
    assert classify("paris%20hilton") == ("article", "Paris hilton")


def test_plan_ranges_and_config_checks():
    assert plan_ranges([600, 1000, 1400, 1800], 2200, 2) == [
        ByteRange(0, 600, 1400),
        ByteRange(1, 1400, 2200),
    ]
    assert plan_ranges([600], 900, 4) == [ByteRange(0, 600, 900)]
    with pytest.raises(ConfigError, match="sample_fraction"):
        KbBuildConfig("d", "o", sample_fraction=0.0).validate()
    with pytest.raises(ConfigError, match="passage_max_wordpieces"):
        KbBuildConfig("d", "o", passage_max_wordpieces=2).validate()


def test_index_and_dump_roundtrip(dumps):
    offsets = read_multistream_index(dumps["index"])
    assert len(offsets) == 6  # 11 pages, 2 per stream
    assert bz2.decompress(Path(dumps["index"]).read_bytes()).decode().splitlines()[0].endswith(":10:Paris")
    pages = [p for p in DumpReader(dumps["multistream"]) if isinstance(p, RawPage)]
    assert pages == PAGES


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_file_that_is_not_a_dump_is_refused(tmp_path):
    from elcore.errors import ConfigError

    (tmp_path / "notes.txt").write_text("hello, not a dump\n")
    with pytest.raises(ConfigError, match="not a MediaWiki XML dump"):
        build_kb(_config(str(tmp_path / "notes.txt"), tmp_path / "out"))
    assert not (tmp_path / "out" / "catalogue.parquet").exists() and not (tmp_path / "out" / "_work").exists()
