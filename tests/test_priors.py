import dataclasses

import numpy as np
import pytest

from elcore.catalogue import EntityCatalogue
from elcore.data import Example, GoldMention
from elcore.errors import IndexMismatchError
from elcore.priors import (
    MentionCounts,
    PriorTable,
    example_rows,
    ngram_keys,
    normalize_surface,
    surface_keys,
)

TRAIN = [
    Example("t1", "who is paris hilton?", (GoldMention(7, 19, "Q47899"),)),
    Example("t2", "flights to Paris", (GoldMention(11, 16, "Q90"),)),
    Example("t3", "PARIS weather", (GoldMention(0, 5, "Q90"),)),
    Example("t4", "no span here", (GoldMention(None, None, "Q90"),)),
]


@pytest.fixture()
def catalogue():
    return EntityCatalogue.from_records(
        [
            {"id": "Q90", "qid": "Q90", "title": "Paris", "text": "city", "aliases": ["City of Light"]},
            {"id": "Q47899", "qid": "Q47899", "title": "Paris Hilton", "text": "", "aliases": []},
            {"id": "Q167646", "qid": "Q167646", "title": "Paris (mythology)", "text": "", "aliases": []},
            {"id": "Q142", "qid": "Q142", "title": "France", "text": "", "aliases": []},
        ]
    )


def test_normalisation_ignores_case_accents_and_punctuation():
    assert normalize_surface("  Beyoncé   Knowles-Carter ") == "beyonce knowles carter"
    assert normalize_surface("U.S.") == normalize_surface("u s") == "u s"
    assert normalize_surface("...") == ""
    keys = surface_keys(["Paris", "PARIS", "paris!", "Pâris", "Berlin", ""])
    assert len(set(keys[:4].tolist())) == 1 and keys[4] != keys[0] and keys[5] == 0


def test_build_counts_names_and_training_spans(catalogue):
    table = PriorTable.build(catalogue, TRAIN)
    paris = table.candidates(int(table.find(["paris"])[0]))
    # "paris" is Paris's title, the bare title of Paris (mythology), and two training mentions of Q90.
    assert paris.rows.tolist() == [0, 2] and paris.counts.tolist() == [2, 0]
    assert paris.is_title.tolist() == [True, False] and paris.is_alias.tolist() == [False, True]
    assert table.surface_totals[table.find(["Paris"])[0]] == 2
    assert table.candidates(int(table.find(["city of light"])[0])).rows.tolist() == [0]
    assert table.find(["Paris Hilton", "nowhere", ""]).tolist()[1:] == [-1, -1]
    assert table.entity_counts.tolist() == [2, 1, 0, 0]


@pytest.mark.parametrize("where", ["local", "memory"])
def test_save_and_load_round_trip(catalogue, tmp_path, where):
    url = str(tmp_path / "priors.parquet") if where == "local" else "memory://priors/p.parquet"
    table = PriorTable.build(catalogue, TRAIN, sources=["train.jsonl"])
    table.save(url)
    loaded = PriorTable.load(url, with_surfaces=True)
    names = ("surface_keys", "offsets", "rows", "counts", "is_title", "is_alias", "entity_counts")
    for name in (*names, "surface_occurrences"):
        assert np.array_equal(getattr(loaded, name), getattr(table, name)), name
    assert loaded.metadata["example_sources"] == ["train.jsonl"]
    assert "paris hilton" in loaded.surfaces.to_pylist()
    loaded.check_catalogue(catalogue)


def test_a_table_refuses_another_catalogue(catalogue):
    table = PriorTable.build(catalogue, TRAIN)
    other = EntityCatalogue.from_records([{"id": "Q1", "title": "Universe"}])
    with pytest.raises(IndexMismatchError, match="prior table was built for a catalogue of 4"):
        table.check_catalogue(other)


def test_a_table_follows_its_catalogue_when_rows_are_appended(catalogue):
    table = PriorTable.build(catalogue, TRAIN)
    records = catalogue.table.to_pylist() + [
        {"id": "Q64", "qid": "Q64", "title": "Berlin", "text": "", "aliases": []}
    ]
    longer = EntityCatalogue.from_records(records)
    extended = table.extended_to(longer, catalogue)
    extended.check_catalogue(longer)
    assert extended.num_entities == 5 and extended.entity_counts.tolist() == [2, 1, 0, 0, 0]
    assert extended.candidates(int(extended.find(["paris"])[0])).rows.tolist() == [0, 2]
    with pytest.raises(IndexMismatchError, match="does not start with"):
        table.extended_to(EntityCatalogue.from_records(records[::-1]), catalogue)


def test_catalogue_without_aliases_or_training_data(catalogue):
    bare = EntityCatalogue.from_records([{"id": "Q142", "title": "France"}, {"id": "Q64", "title": "Berlin"}])
    table = PriorTable.build(bare)
    assert len(table) == 2 and table.counts.sum() == 0
    assert table.candidates(int(table.find(["berlin"])[0])).rows.tolist() == [1]


def test_leave_one_out_counts_are_what_an_example_contributed(catalogue):
    rows = example_rows(catalogue, TRAIN)
    own = [MentionCounts.of(e, r) for e, r in zip(TRAIN, rows, strict=True)]
    key = int(surface_keys(["paris"])[0])
    assert own[1].pairs == {(key, 0): 1} and own[2].pairs == {(key, 0): 1}
    assert own[3].pairs == {}  # a gold without a span contributed nothing


def test_leave_one_out_forgets_what_only_the_text_itself_put_in_the_table(catalogue):
    train = [
        Example("a", "is lutece paris?", (GoldMention(3, 9, "Q90"), GoldMention(10, 15, "Q47899"))),
        Example("b", "paris hilton", (GoldMention(0, 5, "Q47899"),)),
    ]
    table = PriorTable.build(catalogue, train)
    own = MentionCounts.of(train[0], example_rows(catalogue, train[:1])[0])
    keys = surface_keys(["lutece", "paris", "city of light"])
    positions = table.find_keys(keys)
    assert (positions >= 0).all() and own.links == {int(keys[0]): 1, int(keys[1]): 1}
    # "lutece" is in the table only through text "a": without it, it is as unknown as a new name;
    # "paris" is a title and "city of light" an alias, whatever was counted.
    left = table.left_out_positions(positions, keys, [own] * 3)
    assert left.tolist() == [-1, positions[1], positions[2]]
    assert table.left_out_positions(positions, keys, [None] * 3).tolist() == positions.tolist()
    paris = table.candidates(int(positions[1]))
    assert paris.rows.tolist()[:2] == [1, 0] and paris.counts.tolist()[:2] == [2, 0]  # Hilton twice
    without = paris.left_out(int(keys[1]), own)
    assert without.counts.tolist()[:2] == [1, 0] and without.rows.tolist()[:2] == [1, 0]
    lutece = table.candidates(int(positions[0])).left_out(int(keys[0]), own)
    assert lutece.rows.tolist() == []  # the pair only "a" recorded is gone, not kept at count 0
    # Surfaces fitted as unseen drop out of the table too, unless they are some entity's title.
    hidden = dataclasses.replace(own, unseen=frozenset(int(k) for k in keys))
    assert table.left_out_positions(positions, keys, [hidden] * 3).tolist() == [-1, positions[1], -1]


def test_occurrences_count_each_surface_in_the_training_texts_linked_or_not(catalogue):
    texts = [
        Example("a", "Paris in spring, Paris in autumn", (GoldMention(0, 5, "Q90"),)),
        Example("b", "paris hilton and france", ()),
    ]
    table = PriorTable.build(catalogue, texts)
    occurrences = dict(
        zip(
            ["paris", "paris hilton", "france", "city of light"],
            table.find(["Paris", "Paris Hilton", "France", "City of Light"]).tolist(),
            strict=True,
        )
    )
    counted = {name: int(table.surface_occurrences[pos]) for name, pos in occurrences.items()}
    assert counted == {"paris": 3, "paris hilton": 1, "france": 1, "city of light": 0}
    assert table.surface_totals[occurrences["paris"]] == 1  # one of its three occurrences is a link
    own = MentionCounts.of(texts[0], example_rows(catalogue, texts[:1])[0])
    assert own.occurrences[int(surface_keys(["paris"])[0])] == 2  # what leave-one-out takes away
    assert ngram_keys("New York", max_words=1) == {int(k): 1 for k in surface_keys(["new", "york"])}


def test_a_table_written_before_occurrences_loads_with_none_counted(catalogue, tmp_path):
    import pyarrow.parquet as pq

    url = str(tmp_path / "priors.parquet")
    PriorTable.build(catalogue, TRAIN).save(url)
    older = pq.read_table(url)
    pq.write_table(older.drop_columns(["surface_occurrences"]), url)
    loaded = PriorTable.load(url)
    assert len(loaded) == len(PriorTable.build(catalogue, TRAIN)) and not loaded.surface_occurrences.any()
