import numpy as np
import pytest

from elcore.catalogue import EntityCatalogue
from elcore.data import Example, GoldMention
from elcore.fusion import (
    FEATURES,
    EntityFacts,
    FusionConfig,
    FusionHead,
    SpanFacts,
    candidate_features,
    fuse_candidates,
    nesting,
    train_head,
)
from elcore.priors import MentionCounts, PriorTable, example_rows, surface_keys


@pytest.fixture()
def table_and_catalogue():
    catalogue = EntityCatalogue.from_records(
        [
            {"id": f"Q{i}", "qid": f"Q{i + 1}" if i < 2 else None, "title": t}
            for i, t in enumerate(["Paris", "Paris (mythology)", "Berlin", "France"])
        ]
    )
    train = [
        Example("a", "in Paris", (GoldMention(3, 8, "Q0"),)),
        Example("b", "Paris myth", (GoldMention(0, 5, "Q1"),)),
        Example("c", "paris", (GoldMention(0, 5, "Q0"),)),
    ]
    return PriorTable.build(catalogue, train), catalogue, train


def test_fused_candidates_hold_dense_and_prior_rows(table_and_catalogue):
    table, _, _ = table_and_catalogue
    keys = surface_keys(["paris", "nothing known"])
    dense_rows = np.array([[3, 2], [2, -1]])
    dense_scores = np.array([[0.9, 0.5], [0.4, -np.inf]], dtype=np.float32)
    fused = fuse_candidates(dense_rows, dense_scores, table.find_keys(keys), keys, table, top=2)
    assert fused.rows[0].tolist()[:4] == [3, 2, 0, 1]  # dense first, then the surface's prior rows
    assert fused.in_dense[0].tolist()[:4] == [True, True, False, False]
    assert fused.counts[0].tolist()[:4] == [0, 0, 2, 1] and fused.surface_totals[0] == 3
    assert fused.rows[1].tolist() == [2, -1, -1, -1] and fused.surface_totals[1] == 0


def test_leave_one_out_removes_the_texts_own_counts(table_and_catalogue):
    table, catalogue, train = table_and_catalogue
    own = MentionCounts.of(train[0], example_rows(catalogue, train[:1])[0])
    keys = surface_keys(["Paris"])
    positions = table.find_keys(keys)
    empty = np.full((1, 1), -1)
    without = fuse_candidates(empty, np.full((1, 1), -np.inf, np.float32), positions, keys, table, 2, [own])
    assert without.rows[0].tolist()[:2] == [0, 1]
    assert without.counts[0].tolist()[:2] == [1, 1] and without.surface_totals[0] == 2
    assert without.entity_discount[0].tolist()[:2] == [1, 0]
    no = np.zeros(1, dtype=bool)
    spans = SpanFacts(
        np.zeros(1), np.ones(1), np.ones(1), positions >= 0, no, no, np.zeros(without.rows.shape)
    )
    entities = EntityFacts.of(catalogue)
    features = candidate_features(without, spans, entities, table)
    assert features[0, 0, FEATURES.index("has_qid")] == 1
    assert features[0, 1, FEATURES.index("log_qid_number")] == pytest.approx(np.log1p(2))
    log_prior = features[0, :2, FEATURES.index("log_prior")]
    assert np.allclose(np.exp(log_prior) - 1e-3, [0.5, 0.5])  # 1 of 2 each once "a" is left out
    assert features[0, 0, FEATURES.index("log_entity_count")] == pytest.approx(np.log1p(1))
    # "paris" occurs in all three texts, two of which are left once "a" is out: both links (2 / (2 + 1)).
    assert without.surface_occurrences[0] == 2
    assert features[0, 0, FEATURES.index("link_rate")] == pytest.approx(2 / 3)


def test_head_learns_a_separable_feature_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, len(FEATURES))).astype(np.float32)
    labels = (features[:, FEATURES.index("log_prior")] > 0.5).astype(np.float32)
    head = train_head(features, labels, FusionConfig(hidden_size=8), epochs=40)
    predicted = np.exp(head.log_probs(features)) > 0.5
    assert (predicted == labels.astype(bool)).mean() > 0.95
    for url in (str(tmp_path / "fusion"), "memory://fusion/head"):
        head.save(url)
        loaded = FusionHead.load(url)
        assert np.allclose(loaded.log_probs(features[:50]), head.log_probs(features[:50]))
        assert loaded.config.training["positives"] == int(labels.sum())


def test_nesting_marks_spans_inside_and_around_known_spans():
    groups = np.array([0, 0, 0, 1])
    first, last = np.array([2, 2, 3, 2]), np.array([4, 3, 3, 3])
    known = np.array([True, False, True, True])
    inside, contains = nesting(groups, first, last, known)
    assert inside.tolist() == [False, True, True, False]  # span 3 sits in another window
    assert contains.tolist() == [True, True, False, False]


def test_a_head_fitted_on_fewer_features_keeps_working_and_an_unknown_one_is_refused(tmp_path):
    import json

    from elcore.errors import ConfigError

    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, len(FEATURES))).astype(np.float32)
    labels = (features[:, FEATURES.index("log_prior")] > 0).astype(np.float32)
    older = FusionConfig(hidden_size=4, features=[f for f in FEATURES if f != "link_rate"])
    head = train_head(features, labels, older, epochs=5)
    head.save(str(tmp_path / "fusion"))
    loaded = FusionHead.load(str(tmp_path / "fusion"))
    assert np.allclose(loaded.log_probs(features[:20]), head.log_probs(features[:20]))
    shifted = features[:20].copy()
    shifted[:, FEATURES.index("link_rate")] += 5.0  # a column it was not fitted on changes nothing
    assert np.allclose(loaded.log_probs(shifted), head.log_probs(features[:20]))
    config = json.loads((tmp_path / "fusion" / "config.json").read_text())
    config["features"][-1] = "a_feature_of_a_later_elq"
    (tmp_path / "fusion" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="refit it"):
        FusionHead.load(str(tmp_path / "fusion"))
