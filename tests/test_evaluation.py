"""elcore.evaluation.error_breakdown on hand-made links: one gold mention per outcome."""

from __future__ import annotations

from elcore.catalogue import EntityCatalogue
from elcore.data import Example, GoldMention
from elcore.evaluation import error_breakdown
from elcore.linker import EntityCandidate, Link

CATALOGUE = EntityCatalogue.from_records(
    [
        {"id": "Q90", "qid": "Q90", "title": "Paris", "text": "capital of france"},
        {"id": "Q142", "qid": "Q142", "title": "France", "text": ""},
        {"id": "Q64", "qid": "Q64", "title": "Berlin", "text": "capital of germany"},
    ]
)


def link(start: int, end: int, row: int, candidates: tuple[int, ...] = ()) -> Link:
    entity = CATALOGUE.rows([row])[0]
    return Link(
        start, end, "m", row, entity["id"], entity["qid"], entity["title"], 0.0, 0.0, 0.0,
        tuple(EntityCandidate(r, "", None, "", 0.0, 0.0) for r in candidates),
    )  # fmt: skip


def test_error_breakdown_names_each_outcome():
    golds = [
        (0, 5, "Q90"),
        (10, 16, "Q142"),
        (20, 26, "Q64"),
        (30, 35, "Q90"),
        (40, 45, "Q64"),
        (50, 55, "Q90"),
    ]
    example = Example(
        "e1",
        "x" * 80,
        (*(GoldMention(s, e, q, None, "gold") for s, e, q in golds),
         GoldMention(60, 65, "Q999", None, "gold"), GoldMention(None, None, "Q64", None, None)),
    )  # fmt: skip
    links = [
        link(0, 5, 0),  # correct
        link(10, 14, 1),  # the right entity on a shorter span
        link(20, 26, 0, candidates=(0, 2)),  # wrong entity, gold among the candidates
        link(30, 35, 2, candidates=(2, 1)),  # wrong entity, gold not retrieved
        link(40, 45, 0),  # wrong entity, no candidates attached
        # nothing overlaps 50-55: missed
    ]
    assert error_breakdown([example], [links], CATALOGUE) == {
        "correct/with_text": 1,
        "gold_not_in_catalogue": 1,
        "gold_not_retrieved/with_text": 1,
        "mention_missed/with_text": 1,
        "span_boundary_wrong/without_text": 1,
        "wrong_entity/with_text": 1,
        "wrong_entity_gold_in_top_k/with_text": 1,
    }
