import pytest

from elcore.encoding import encode_entities
from elcore.errors import IndexMismatchError
from elcore.index import FaissIndex, IndexSpec
from elcore.linker import Linker, name_end

TEXTS = [
    "who is betty white's husband?",
    "Paris is the capital of France and Berlin is the capital of Germany.",
    "",
    "albert einstein played football in london",
]


@pytest.fixture()
def linker(tiny_linker):
    return tiny_linker


def _as_tuples(links):
    return [[(x.start, x.end, x.entity_id, round(x.score, 4)) for x in doc] for doc in links]


def test_links_point_into_the_text_and_do_not_overlap(linker):
    results = linker.link(TEXTS)
    assert len(results) == len(TEXTS) and results[2] == []
    for text, links in zip(TEXTS, results, strict=True):
        for a, b in zip(links, links[1:], strict=False):
            assert a.end <= b.start
        for link in links:
            assert link.mention == text[link.start : link.end] and link.mention.strip() == link.mention
            assert link.score > -50.0 and link.score <= link.mention_score
            assert link.candidates[0].entity_row == link.entity_row
            assert list(c.score for c in link.candidates) == sorted(
                (c.score for c in link.candidates), reverse=True
            )
    assert any(results[1])


def test_save_and_load_give_identical_links(linker, tmp_path):
    linker.save_pretrained(str(tmp_path / "linker"))
    loaded = Linker.from_pretrained(str(tmp_path / "linker"), num_candidates=3)
    assert _as_tuples(loaded.link(TEXTS)) == _as_tuples(linker.link(TEXTS))
    assert loaded.config.threshold == -50.0


def test_linker_directory_on_memory_filesystem(linker):
    linker.save_pretrained("memory://linkers/tiny")
    loaded = Linker.from_pretrained("memory://linkers/tiny")
    assert _as_tuples(loaded.link(TEXTS[:2])) == _as_tuples(linker.link(TEXTS[:2]))


def test_bare_model_with_catalogue_builds_an_exact_index(linker, tmp_path):
    linker.model.save_pretrained(str(tmp_path / "model"))
    linker.catalogue.save(str(tmp_path / "entities.parquet"))
    loaded = Linker.from_pretrained(str(tmp_path / "model"), catalogue=str(tmp_path / "entities.parquet"))
    assert _as_tuples(loaded.link(TEXTS)) == _as_tuples(linker.link(TEXTS))


def test_short_text_links_the_same_with_and_without_windowing(linker):
    wide = linker.link(TEXTS)
    linker.model.config = linker.config.replace(max_context_length=16, context_stride=6)
    narrow = linker.link([TEXTS[0]])
    # TEXTS[0] has 10 wordpieces: it fits one 16-piece window too, so nothing may change.
    assert _as_tuples(narrow) == _as_tuples(wide[:1])


def test_a_text_split_into_windows_maps_spans_back_and_merges_them(linker):
    text = "Paris is the capital of France and albert einstein was born in Germany. " * 4
    # every span of every window kept (no top-k cut), so both ways see the same spans
    linker.model.config = linker.config.replace(
        max_context_length=16, context_stride=6, top_k_mentions=10_000
    )
    spans = linker.link_candidates([text])[0]
    assert len({span.window for span in spans}) > 3  # the text really was split
    assert all(span.mention == text[span.start : span.end] for span in spans)  # text offsets, not window's
    assert len({(s.start, s.end) for s in spans}) == len(spans)  # one candidate per span
    # ELQ's way scores a span in every window holding it and keeps the best: the same spans come out,
    # each span's score at least what its central window gave it.
    linker.model.config = linker.config.replace(central_spans=False)
    every = {(s.start, s.end): s.score for s in linker.link_candidates([text])[0]}
    assert {(s.start, s.end) for s in spans} == set(every)
    assert all(every[(s.start, s.end)] >= s.score - 1e-5 for s in spans)


def test_long_text_is_linked_end_to_end_with_document_offsets(linker):
    sentence = "Paris is the capital of France and albert einstein was born in Germany. "
    text = sentence * 160  # ~2,000 words, dozens of 32-wordpiece windows
    (links,) = linker.link([text])
    assert links, "no links in a 2,000-word text"
    assert max(link.start for link in links) > len(text) * 0.9  # the end of the text is reached
    assert max(link.window for link in links) > 10  # found in later windows, numbered in text order
    for link in links:
        assert link.mention == text[link.start : link.end]
    for a, b in zip(links, links[1:], strict=False):
        assert a.end <= b.start


def test_candidates_resolve_to_the_same_links(linker):
    candidates = linker.link_candidates(TEXTS)
    direct = linker.link(TEXTS)
    resolved = [Linker.resolve(c, linker.config.threshold) for c in candidates]
    assert _as_tuples(resolved) == _as_tuples(direct)
    assert sum(map(len, candidates)) >= sum(map(len, direct))


def test_index_and_catalogue_must_match(linker, small_catalogue):
    vectors = encode_entities(linker.model, small_catalogue.entity_inputs(range(3)), progress=False)
    with pytest.raises(IndexMismatchError, match="catalogue has 10"):
        Linker(linker.model, small_catalogue, FaissIndex.build(vectors, IndexSpec()))


def test_index_of_another_model_or_catalogue_is_refused(linker, tiny_base_dir, small_catalogue):
    from elcore.linker import index_metadata
    from elcore.model import ElqModel

    vectors = linker.index.index.reconstruct_n(0, linker.index.ntotal)
    stamped = FaissIndex.build(vectors, IndexSpec(), index_metadata(linker.model, small_catalogue))
    Linker(linker.model, small_catalogue, stamped)  # matching fingerprints: accepted
    other = ElqModel.from_base(
        str(tiny_base_dir), max_context_length=32, context_stride=12, max_entity_length=16
    )
    other.head_trained = True
    with pytest.raises(IndexMismatchError, match="entity encoder") as raised:
        Linker(other, small_catalogue, stamped)
    assert "elq encode-entities" in str(raised.value)
    renamed = small_catalogue.from_records(
        [{"id": f"Q{i}", "title": f"E{i}"} for i in range(len(small_catalogue))]
    )
    with pytest.raises(IndexMismatchError, match="catalogue"):
        Linker(linker.model, renamed, stamped)
    Linker(other, small_catalogue, stamped, check_fingerprints=False)  # the expert's override


def test_a_fresh_base_model_warns_that_its_head_is_untrained(tiny_base_dir, small_catalogue, linker):
    from elcore.linker import UntrainedModelWarning
    from elcore.model import ElqModel

    fresh = ElqModel.from_base(str(tiny_base_dir), max_context_length=32, context_stride=12)
    with pytest.warns(UntrainedModelWarning, match="untrained"):
        Linker(fresh, small_catalogue, linker.index, check_fingerprints=False)


@pytest.mark.parametrize(
    ("text", "start", "end", "title", "expected"),
    [
        (
            "Martin Luther King Jr. spoke.",
            0,
            21,
            "Martin Luther King Jr.",
            22,
        ),  # the stop of "Jr." is the name's
        ("a speech in Washington, D.C.", 12, 27, "Washington, D.C.", 28),
        ("King Jr. spoke", 0, 7, "Martin Luther King Jr.", 8),  # an alias ending in the same word
        ("He met Jordan.", 7, 13, "Michael Jordan", 13),  # a sentence stop is not the name's
        ("Born in St. Louis.", 8, 10, "Saint Louis", 10),
        ("Washington, D.C. is", 0, 16, "Washington, D.C.", 16),  # already has it
        ("Lived in D.C.", 9, 12, "Washington, D.C.", 13),
    ],
)
def test_name_end_takes_the_stop_of_an_abbreviation_that_ends_the_name(text, start, end, title, expected):
    assert name_end(text, start, end, title) == expected
