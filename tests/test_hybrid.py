import pytest

from elcore.data import Example, GoldMention, write_examples
from elcore.fusion import FusionConfig
from elcore.hybrid import HybridConfig, calibrate_unknown_surfaces, collect_training_rows, fit_hybrid
from elcore.linker import Linker

TEXTS = ["who is betty white's husband?", "Paris is the capital of France.", "", "the city of light"]
TRAIN = [
    Example("1", "where is paris", (GoldMention(9, 14, "Q90"),)),
    Example("2", "who is betty white", (GoldMention(7, 18, "Q373895"),)),
    Example("3", "berlin and germany", (GoldMention(0, 6, "Q64"), GoldMention(11, 18, "Q183"))),
    Example("4", "films of stanley kubrick", (GoldMention(9, 24, "Q2001"),)),
    Example(
        "5", "what did albert einstein find", (GoldMention(9, 24, "Q937"), GoldMention(None, None, "Q142"))
    ),
    Example("6", "london is in england", (GoldMention(0, 6, "Q84"),)),
]


def _tuples(links):
    return [[(x.start, x.end, x.entity_id, round(x.score, 4)) for x in doc] for doc in links]


@pytest.fixture()
def dense(tiny_linker):
    return tiny_linker


@pytest.fixture()
def hybrid(dense, tmp_path):
    before = _tuples(dense.link(TEXTS))
    url = str(tmp_path / "train.jsonl")
    write_examples(url, TRAIN)
    config = HybridConfig(
        prior_data=[url], head_data=[(url, 0)], fusion=FusionConfig(hidden_size=4), epochs=5
    )
    summary = fit_hybrid(dense, config, dev=TRAIN[:3])
    assert summary["surfaces"] >= len(dense.catalogue) and summary["head_positives"] > 0
    return dense, before


def test_training_rows_label_exact_gold_spans(dense, tmp_path):
    from elcore.priors import PriorTable

    dense.priors, dense.use_priors = PriorTable.build(dense.catalogue, TRAIN), True
    features, labels = collect_training_rows(dense, TRAIN)
    assert features.shape[0] == labels.shape[0] > 0
    # Every spanned gold is proposed (each is a catalogue title) and labelled once.
    assert int(labels.sum()) == sum(m.has_span for e in TRAIN for m in e.mentions)


def test_fused_links_use_prior_candidates(hybrid):
    linker, _ = hybrid
    assert linker.fused and linker.threshold == linker.fusion.config.threshold
    links = linker.link(["the city of light"])[0]
    # "city of light" is an alias of Paris: it is a candidate span even if the mention head never proposed it.
    linker.num_candidates = 10
    hits = linker.link_candidates(["the city of light"])[0]
    city = [h for h in hits if h.mention == "city of light"]
    assert city and "Q90" in [c.entity_id for c in city[0].candidates]
    for link in links:
        assert link.score <= 0.0 and link.candidates[0].entity_row == link.entity_row


def test_unknown_surfaces_are_searched_only_where_the_head_could_link_them(hybrid):
    from elcore.linker import LinkTimings

    linker, _ = hybrid
    texts = [e.text for e in TRAIN]
    linker.threshold = -1e9  # every candidate links: unknown-surface spans do too
    assert calibrate_unknown_surfaces(linker, TRAIN)["search_unknown_surfaces"] is True
    linker.threshold = 0.0  # a log-probability no candidate reaches
    report = calibrate_unknown_surfaces(linker, TRAIN)
    assert report["search_unknown_surfaces"] is False and report["unknown_surface_candidates"] > 0
    linker.threshold = report["unknown_surface_best_log_prob"] + 1e-3  # just above the best unknown span
    calibrate_unknown_surfaces(linker, TRAIN)
    searched = {}
    links = {}
    for flag in (True, False):
        linker.fusion.config.search_unknown_surfaces = flag
        linker.timings = LinkTimings()
        links[flag] = _tuples(linker.link(texts))
        searched[flag] = linker.timings.spans_searched
    assert searched[False] < searched[True]
    assert links[False] == links[True]  # no unknown span of these texts reaches the threshold: none lost


def test_switch_off_gives_the_dense_links(hybrid, tmp_path):
    linker, before = hybrid
    linker.save_pretrained(str(tmp_path / "hybrid"))
    dense = Linker.from_pretrained(str(tmp_path / "hybrid"), num_candidates=3, use_priors=False)
    assert not dense.fused and _tuples(dense.link(TEXTS)) == before
    fused = Linker.from_pretrained(str(tmp_path / "hybrid"), num_candidates=3)
    assert fused.fused and _tuples(fused.link(TEXTS)) == _tuples(linker.link(TEXTS))
    assert fused.threshold == pytest.approx(linker.threshold)
    lowered = Linker.from_pretrained(str(tmp_path / "hybrid"), threshold=-9.0)
    assert lowered.threshold == -9.0 and lowered.config.threshold == -50.0


def test_cli_switch_and_threshold(hybrid, tmp_path):
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    linker, before = hybrid
    linker.save_pretrained(str(tmp_path / "h"))
    runner = CliRunner()
    dense = runner.invoke(app, ["link", "--model", str(tmp_path / "h"), "--no-use-priors", TEXTS[1]])
    assert dense.exit_code == 0, dense.output
    spans = [
        (x["start"], x["end"], x["entity_id"])
        for x in json.loads(dense.output.strip().splitlines()[-1])["links"]
    ]
    assert spans == [(s, e, i) for s, e, i, _ in before[1]]
    none = runner.invoke(app, ["link", "--model", str(tmp_path / "h"), "--threshold", "0.0", TEXTS[1]])
    assert none.exit_code == 0 and json.loads(none.output.strip().splitlines()[-1])["links"] == []


def test_partial_annotation_drops_spans_away_from_golds(dense):
    from elcore.priors import PriorTable

    dense.priors, dense.use_priors = PriorTable.build(dense.catalogue, TRAIN), True
    full, _ = collect_training_rows(dense, TRAIN)
    partial, labels = collect_training_rows(dense, TRAIN, partial=[True] * len(TRAIN))
    assert 0 < len(partial) < len(full) and int(labels.sum()) == sum(
        m.has_span for e in TRAIN for m in e.mentions
    )


def test_training_run_with_a_hybrid_stage_writes_a_fused_linker(tiny_base_dir, small_catalogue, tmp_path):
    from elcore.hybrid import train_hybrid_linker
    from elcore.training import train
    from tests.training_data import tiny_config, write_tiny_data

    data = write_tiny_data(tmp_path / "data", small_catalogue)
    hybrid = {"head_data": [[data["train"], 0, "complete"]], "fusion": {"hidden_size": 4}, "epochs": 3}
    config = tiny_config(tiny_base_dir, data, tmp_path / "run", epochs=1, hybrid=hybrid)
    train(config)
    summary = train_hybrid_linker(config)
    linker = Linker.from_pretrained(summary["linker"])
    assert linker.fused and linker.threshold == pytest.approx(summary["threshold"])
    assert linker.priors.metadata["example_sources"] == [data["train"]]


def test_hybrid_options_are_checked():
    from elcore.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown fields"):
        HybridConfig.from_dict({"head": []})
    with pytest.raises(ConfigError, match="'complete' or 'partial'"):
        HybridConfig.from_dict({"head_data": [["x.jsonl", 0, "some"]]})


def test_cased_copies_change_case_only():
    import random

    from elcore.hybrid import _cased_copies

    examples = [
        Example(
            "1", "who is betty white's husband?", (GoldMention(7, 18, "Q1"), GoldMention(None, None, "Q2"))
        ),
        Example("2", "films of kubrick", (GoldMention(9, 16, "Q3"),)),  # the title is longer: left alone
    ]
    copies = _cased_copies(examples, ["Betty White", "Marriage", "Stanley Kubrick"], 1.0, random.Random(0))
    assert [c.text for c in copies] == ["Who is Betty White's husband?"]
    assert copies[0].mentions == examples[0].mentions and copies[0].id == "1/cased"


def test_a_new_fit_proposes_no_span_with_edge_punctuation_and_an_older_head_still_does(hybrid):
    linker, _ = hybrid
    assert linker.fusion.config.edge_punctuation_spans is False
    text = ["Paris is the capital of France."]
    assert not [h for h in linker.link_candidates(text)[0] if not h.mention[-1:].isalnum()]
    linker.fusion.config.edge_punctuation_spans = True  # a head fitted before the setting existed
    assert "France." in {h.mention for h in linker.link_candidates(text)[0]}


def test_gold_spans_ending_in_a_stop_give_their_positive_row(dense):
    from elcore.priors import PriorTable

    examples = [Example("a", "I moved to Paris.", (GoldMention(11, 17, "Q90"),))]  # the gold keeps its stop
    dense.priors, dense.use_priors = PriorTable.build(dense.catalogue, examples), True
    assert int(collect_training_rows(dense, examples)[1].sum()) == 1  # "Paris" is the positive row


@pytest.mark.parametrize(("annotation", "fitted"), [("complete", 7), ("partial", 6)])
def test_texts_without_golds_are_fitted_from_complete_files_only(dense, tmp_path, annotation, fitted):
    url = str(tmp_path / "train.jsonl")
    write_examples(url, [*TRAIN, Example("7", "the weather is nice", ())])
    config = HybridConfig(
        prior_data=[url], head_data=[(url, 0, annotation)], fusion=FusionConfig(hidden_size=4), epochs=1
    )
    assert fit_hybrid(dense, config)["head_examples"] == fitted


def test_unseen_surfaces_are_fitted_as_names_the_table_does_not_know(dense):
    from elcore.fusion import FEATURES
    from elcore.priors import PriorTable

    # "paris" is a title (known whatever is held out), "city of light" only an alias of Paris.
    examples = [
        Example("a", "paris, the city of light", (GoldMention(0, 5, "Q90"), GoldMention(11, 24, "Q90")))
    ]
    dense.priors, dense.use_priors = PriorTable.build(dense.catalogue, examples), True
    known = FEATURES.index("surface_known")

    def known_positives(share: float) -> int:
        features, labels = collect_training_rows(dense, examples, unseen_surfaces=share)
        return int(((features[:, known] == 1) & (labels == 1)).sum())

    assert known_positives(0.0) == 2 and known_positives(1.0) == 1


def test_dev_tuning_keeps_the_threshold_and_unknown_search_that_score_best_together(hybrid):
    from elcore.evaluation import evaluate_linker
    from elcore.hybrid import tune_on_dev

    linker, _ = hybrid
    sweep = [-6.0, -3.0, -1.0, -0.3]
    chosen = tune_on_dev(linker, TRAIN, sweep)
    assert chosen["threshold"] in sweep and linker.threshold == chosen["threshold"]
    assert linker.fusion.config.search_unknown_surfaces is chosen["search_unknown_surfaces"]
    best = {}
    for search in (False, True):
        linker.fusion.config.search_unknown_surfaces = search
        best[search] = max(r["weak_f1"] for r in evaluate_linker(linker, TRAIN, sweep=sweep)["sweep"])
    assert chosen["dev_weak_f1"] == pytest.approx(max(best.values()), abs=1e-4)
    if best[False] >= best[True]:
        assert chosen["search_unknown_surfaces"] is False  # the cheaper setting on a tie
