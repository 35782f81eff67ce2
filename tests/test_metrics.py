"""elcore.metrics on hand-computed cases: strong/weak/entity P/R/F1, null-span gold, text split, sweeps."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import fsspec
import pytest

from elcore.data import Example, GoldMention
from elcore.errors import ConfigError, EvaluationInputError
from elcore.metrics import (
    Prediction,
    best_threshold,
    evaluate,
    format_table,
    merge_reports,
    plot_sweep,
    predictions_from_links,
    sweep_thresholds,
)

TEXT = "x" * 40


def gold(start, end, entity):
    return GoldMention(start, end, entity, None, "gold" if start is not None else None)


def P(start, end, entity, score=0.5):
    return Prediction(start, end, entity, score)


def prf(part):
    return pytest.approx((part["precision"], part["recall"], part["f1"]))


def tpfpfn(part):
    return (part["tp"], part["fp"], part["fn"])


# Gold: Q1 at [8, 19), Q2 at [25, 30), Q3 without span.
MIXED = Example("a", TEXT, (gold(8, 19, "Q1"), gold(25, 30, "Q2"), gold(None, None, "Q3")))
MIXED_PREDS = [
    P(8, 19, "Q1", 0.9),  # exact: strong and weak hit
    P(24, 30, "Q2", 0.8),  # overlaps Q2's span: weak hit, strong miss (fp)
    P(0, 3, "Q3", 0.5),  # Q3 is null-span gold: ignored, not a false positive
    P(0, 3, "Q4", 0.4),  # wrong entity: fp everywhere
]


def test_strong_weak_entity_and_null_span_gold():
    m = evaluate([MIXED], [MIXED_PREDS])
    assert m["counts"] == {
        "examples": 1,
        "gold_mentions": 3,
        "gold_with_span": 2,
        "gold_without_span": 1,
        "predictions": 4,
    }
    # strong: tp 1, fp 2 (Q2 inexact, Q4), fn 1 (Q2); P = 1/3, R = 1/2, F1 = 2PR/(P+R) = 0.4
    assert tpfpfn(m["strong"]) == (1, 2, 1) and m["strong"]["ignored"] == 1
    assert prf(m["strong"]) == (1 / 3, 1 / 2, 0.4)
    # weak: tp 2, fp 1 (Q4), fn 0; P = 2/3, R = 1, F1 = 0.8
    assert tpfpfn(m["weak"]) == (2, 1, 0) and m["weak"]["ignored"] == 1
    assert prf(m["weak"]) == (2 / 3, 1.0, 0.8)
    # entity: gold {Q1, Q2, Q3}, predicted {Q1, Q2, Q3, Q4}; P = 3/4, R = 1, F1 = 6/7
    assert tpfpfn(m["entity"]) == (3, 1, 0) and "ignored" not in m["entity"]
    assert prf(m["entity"]) == (3 / 4, 1.0, 6 / 7)
    assert json.loads(json.dumps(m)) == m


def test_merged_reports_equal_one_evaluation_of_all():
    other = Example("b", TEXT, (gold(0, 5, "Q7"),))
    other_preds = [P(0, 5, "Q7"), P(10, 12, "Q8")]
    has_text = {"Q1", "Q7"}.__contains__
    whole = evaluate([MIXED, other], [MIXED_PREDS, other_preds], has_text)
    parts = [evaluate([MIXED], [MIXED_PREDS], has_text), evaluate([other], [other_preds], has_text)]
    merged = merge_reports(parts)
    assert merged["counts"] == whole["counts"]
    for kind in ("strong", "weak", "entity"):
        assert merged[kind] == pytest.approx(whole[kind])
        for split in ("with_text", "without_text"):
            assert merged[split][kind] == pytest.approx(whole[split][kind])


def test_duplicate_predictions_count_one_gold_once():
    ex = Example("d", TEXT, (gold(0, 5, "Q1"),))
    m = evaluate([ex], [[P(0, 5, "Q1", 0.9), P(0, 5, "Q1", 0.8), P(1, 4, "Q1", 0.7)]])
    assert tpfpfn(m["strong"]) == (1, 2, 0)
    assert tpfpfn(m["weak"]) == (1, 2, 0)
    assert tpfpfn(m["entity"]) == (1, 0, 0)


def test_greedy_by_score():
    ex = Example("g", TEXT, (gold(0, 5, "Q1"),))
    # The higher-scored inexact prediction takes the gold under weak match; strong still finds the exact one.
    m = evaluate([ex], [[P(0, 4, "Q1", 0.9), P(0, 5, "Q1", 0.5)]])
    assert tpfpfn(m["strong"]) == (1, 1, 0)
    assert tpfpfn(m["weak"]) == (1, 1, 0)


def test_weak_prefers_largest_overlap():
    # Q1 mentioned twice; [2, 10) overlaps [0, 4) by 2 and [6, 10) by 4, so it takes [6, 10),
    # leaving [0, 4) for the lower-scored [0, 3).
    ex = Example("o", TEXT, (gold(0, 4, "Q1"), gold(6, 10, "Q1")))
    m = evaluate([ex], [[P(2, 10, "Q1", 0.9), P(0, 3, "Q1", 0.1)]])
    assert tpfpfn(m["weak"]) == (2, 0, 0)
    assert tpfpfn(m["strong"]) == (0, 2, 2)
    assert tpfpfn(m["entity"]) == (1, 0, 0)


def test_wrong_entity_on_right_span_is_no_match():
    ex = Example("w", TEXT, (gold(0, 5, "Q1"),))
    m = evaluate([ex], [[P(0, 5, "Q2")]])
    assert tpfpfn(m["strong"]) == tpfpfn(m["weak"]) == tpfpfn(m["entity"]) == (0, 1, 1)


def test_only_null_span_gold():
    ex = Example("n", TEXT, (gold(None, None, "Q3"),))
    m = evaluate([ex], [[P(0, 3, "Q3"), P(5, 9, "Q3")]])
    # No spanned gold and no false positive: span P/R/F1 have empty denominators and are 0, not NaN.
    assert tpfpfn(m["strong"]) == (0, 0, 0) and m["strong"]["ignored"] == 2
    assert prf(m["strong"]) == (0.0, 0.0, 0.0)
    assert prf(m["entity"]) == (1.0, 1.0, 1.0)


def test_entity_level_is_a_set_per_example_micro_over_examples():
    e1 = Example("1", TEXT, (gold(0, 5, "Q1"), gold(6, 9, "Q1"), gold(None, None, "Q2")))
    e2 = Example("2", TEXT, (gold(0, 5, "Q1"),))
    # e1: {Q1, Q5} vs {Q1, Q2}: tp 1, fp 1, fn 1.  e2: {Q1} vs {Q1}: tp 1.  Total 2/1/1: P = R = F1 = 2/3.
    m = evaluate([e1, e2], [[P(0, 5, "Q1"), P(6, 9, "Q1"), P(10, 12, "Q5")], [P(0, 5, "Q1")]])
    assert tpfpfn(m["entity"]) == (2, 1, 1)
    assert prf(m["entity"]) == (2 / 3, 2 / 3, 2 / 3)


def test_empty_inputs_give_zeros():
    m = evaluate([], [])
    assert m["counts"]["examples"] == 0
    for kind in ("strong", "weak", "entity"):
        assert prf(m[kind]) == (0.0, 0.0, 0.0) and tpfpfn(m[kind]) == (0, 0, 0)

    no_gold = Example("e", TEXT, ())
    m = evaluate([no_gold], [[P(0, 3, "Q1")]])
    assert tpfpfn(m["strong"]) == (0, 1, 0) and prf(m["strong"]) == (0.0, 0.0, 0.0)

    no_preds = evaluate([MIXED], [[]])
    assert tpfpfn(no_preds["weak"]) == (0, 0, 2) and prf(no_preds["weak"]) == (0.0, 0.0, 0.0)
    assert tpfpfn(no_preds["entity"]) == (0, 0, 3)

    nothing = evaluate([no_gold], [[]])
    assert prf(nothing["entity"]) == (0.0, 0.0, 0.0)


def test_with_and_without_text_split():
    calls = []

    def has_text(entity):
        calls.append(entity)
        return entity in {"Q1", "Q3"}

    m = evaluate([MIXED, MIXED], [MIXED_PREDS, MIXED_PREDS], entity_has_text=has_text)
    wt, wo = m["with_text"], m["without_text"]
    # with text: gold Q1 (span) + Q3 (null); predictions Q1 exact, Q3 ignored; all correct.
    assert wt["counts"] == {
        "examples": 2,
        "gold_mentions": 4,
        "gold_with_span": 2,
        "gold_without_span": 2,
        "predictions": 4,
    }
    assert tpfpfn(wt["strong"]) == (2, 0, 0) and wt["strong"]["ignored"] == 2
    assert prf(wt["entity"]) == (1.0, 1.0, 1.0)
    # without text: gold Q2; predictions Q2 (overlapping) and Q4.
    assert tpfpfn(wo["strong"]) == (0, 4, 2) and wo["strong"]["ignored"] == 0
    assert tpfpfn(wo["weak"]) == (2, 2, 0)
    assert prf(wo["weak"]) == (0.5, 1.0, 2 / 3)
    assert tpfpfn(wo["entity"]) == (2, 2, 0)
    # The parts add up to the whole.
    for kind in ("strong", "weak", "entity"):
        assert [a + b for a, b in zip(tpfpfn(wt[kind]), tpfpfn(wo[kind]), strict=True)] == list(
            tpfpfn(m[kind])
        )
    assert sorted(set(calls)) == sorted(calls)  # looked up once per entity
    table = format_table(m)
    assert "with text" in table and "without text" in table and "0.667" in table


def test_duck_typed_predictions_and_links():
    ex = Example("l", TEXT, (gold(0, 5, "Q1"), gold(6, 9, "enwiki:hive")))
    links = [
        SimpleNamespace(start=0, end=5, qid="Q1", entity_id="Q1", score=-0.1),
        SimpleNamespace(start=6, end=9, qid=None, entity_id="enwiki:hive", score=-0.5),
    ]
    preds = predictions_from_links(links)
    assert preds == [Prediction(0, 5, "Q1", -0.1), Prediction(6, 9, "enwiki:hive", -0.5)]
    assert evaluate([ex], [preds])["strong"]["f1"] == 1.0
    # Any object with start/end/entity/score works directly.
    direct = [SimpleNamespace(start=0, end=5, entity="Q1", score=1.0)]
    assert evaluate([ex], [direct])["strong"]["precision"] == 1.0
    with pytest.raises(EvaluationInputError, match="no entity key"):
        predictions_from_links([SimpleNamespace(start=0, end=1, qid=None, entity_id=None, score=0.0)])


def test_mismatched_inputs_raise():
    with pytest.raises(EvaluationInputError, match="1 examples but 2"):
        evaluate([MIXED], [[], []])
    with pytest.raises(EvaluationInputError, match="no span"):
        evaluate([MIXED], [[SimpleNamespace(start=None, end=None, entity="Q1", score=0.0)]])


SWEEP_GOLD = [Example("s", TEXT, (gold(0, 5, "Q1"), gold(10, 15, "Q2")))]
SWEEP_CANDIDATES = [[P(0, 5, "Q1", 0.9), P(10, 15, "Q2", 0.6), P(20, 25, "Q3", 0.7), P(0, 4, "Q1", 0.3)]]


def resolve(cands, threshold):
    kept = []
    for c in sorted(cands, key=lambda c: -c.score):
        if c.score >= threshold and all(c.end <= k.start or k.end <= c.start for k in kept):
            kept.append(c)
    return kept


def test_sweep_and_best_threshold():
    rows = sweep_thresholds(SWEEP_GOLD, SWEEP_CANDIDATES, [0.2, 0.5, 0.65, 0.8, 0.95], resolve)
    assert [r["threshold"] for r in rows] == [0.2, 0.5, 0.65, 0.8, 0.95]
    assert [r["predictions"] for r in rows] == [3, 3, 2, 1, 0]
    # 0.2 and 0.5: Q1, Q3, Q2 -> P 2/3, R 1, F1 0.8; 0.65: P 1/2, R 1/2; 0.8: P 1, R 1/2, F1 2/3; 0.95: nothing.
    assert [r["weak_f1"] for r in rows] == pytest.approx([0.8, 0.8, 0.5, 2 / 3, 0.0])
    assert [r["strong_precision"] for r in rows] == pytest.approx([2 / 3, 2 / 3, 0.5, 1.0, 0.0])
    assert [r["entity_recall"] for r in rows] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])
    assert best_threshold(rows, "weak_f1") == 0.5  # a tie goes to the higher threshold
    assert best_threshold(rows, "strong_precision") == 0.8
    with pytest.raises(ConfigError, match="weak_f1"):
        best_threshold(rows, "f1")
    with pytest.raises(ConfigError):
        best_threshold([], "weak_f1")


def test_plot_sweep_writes_png(tmp_path):
    rows = sweep_thresholds(SWEEP_GOLD, SWEEP_CANDIDATES, [0.2, 0.5, 0.8], resolve)
    local = tmp_path / "plots" / "sweep.png"
    plot_sweep(rows, str(local), title="dev sweep")
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    url = f"memory://elq-tests-metrics/{uuid.uuid4().hex}/sweep.png"
    plot_sweep(rows, url)
    fs = fsspec.filesystem("memory")
    try:
        assert fs.cat_file(url.removeprefix("memory://"))[:4] == b"\x89PNG"
    finally:
        fs.rm(url.rsplit("/", 1)[0].removeprefix("memory://"), recursive=True)
