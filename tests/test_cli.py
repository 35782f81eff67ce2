"""CLI round trips on a tiny linker: text arguments, interactive mode, jsonl files with a bad line."""

import json

import pytest
from typer.testing import CliRunner

from elcore.encoding import encode_entities
from elcore.index import FaissIndex, IndexSpec
from elcore.linker import Linker
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture()
def linker_dir(tiny_model, small_catalogue, tmp_path):
    tiny_model.config = tiny_model.config.replace(threshold=-50.0)
    vectors = encode_entities(
        tiny_model, small_catalogue.entity_inputs(range(len(small_catalogue))), progress=False
    )
    Linker(tiny_model, small_catalogue, FaissIndex.build(vectors, IndexSpec())).save_pretrained(
        str(tmp_path / "l")
    )
    return str(tmp_path / "l")


def test_link_text_prints_json(linker_dir):
    result = runner.invoke(app, ["link", "--model", linker_dir, "paris is the capital of france"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["text"] == "paris is the capital of france"
    link = record["links"][0]
    assert {"start", "end", "mention", "qid", "title", "score", "mention_score", "entity_score"} <= set(link)


def test_threshold_option_overrides_the_model(linker_dir):
    result = runner.invoke(app, ["link", "--model", linker_dir, "--threshold", "100", "paris"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["links"] == []


def test_interactive_mode_prints_a_table(linker_dir):
    result = runner.invoke(app, ["link", "-i", "--model", linker_dir], input="paris is in france\n\n")
    assert result.exit_code == 0, result.output
    assert "->" in result.output and "score" in result.output


def test_jsonl_round_trip_keeps_every_line(linker_dir, tmp_path):
    lines = [
        json.dumps({"id": "q1", "text": "who is betty white?"}),
        "{not json",
        json.dumps({"id": "q3", "body": "no text field"}),
        json.dumps({"id": "q4", "text": ""}),
        json.dumps({"id": 5, "text": "albert einstein"}),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app,
        [
            "link",
            "--model",
            linker_dir,
            "--input",
            str(tmp_path / "in.jsonl"),
            "--output",
            str(tmp_path / "out.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == ["q1", "2", "q3", "q4", "5"]
    assert [o["status"] for o in out] == ["linked", "failed", "failed", "no_links", "linked"]
    assert "invalid JSON" in out[1]["error"] and out[1]["line"] == 2
    assert "'text'" in out[2]["error"] and "q3" in out[2]["error"]


def test_missing_default_linker_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ELQ_DEFAULT_MODEL", str(tmp_path / "nothing"))
    result = runner.invoke(app, ["link", "hello"])
    assert result.exit_code != 0
    assert "elq build-default" in str(result.exception)


def test_evaluate_writes_report_and_sweep_plot(linker_dir, tmp_path):
    gold = {
        "id": "g1",
        "text": "paris is the capital of france",
        "mentions": [[0, 5], None],
        "wikidata_id": ["Q90", "Q142"],
        "entity": ["Paris", "France"],
    }
    (tmp_path / "dev.jsonl").write_text(json.dumps(gold) + "\n")
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp_path / "dev.jsonl"),
            "--model",
            linker_dir,
            "--output",
            str(tmp_path / "report.json"),
            "--sweep-thresholds",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())[str(tmp_path / "dev.jsonl")]
    assert {"strong", "weak", "entity", "counts"} <= set(report["metrics"])
    assert report["metrics"]["counts"]["gold_with_span"] == 1
    assert sum(report["errors"].values()) == 1  # the one spanned gold mention, accounted for
    assert "best_threshold" in report and report["timing"]["load_seconds"] >= 0
    assert list(tmp_path.glob("report-*.png"))


def test_recipes_lists_every_recipe():
    from elcore.recipes import RECIPES

    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.strip().splitlines()] == list(RECIPES)


def test_kb_build_takes_the_same_option_style_and_refuses_a_non_dump(tmp_path):
    from elcore.errors import ConfigError

    help_text = runner.invoke(app, ["kb", "build", "--help"]).output
    for option in ("--dump", "--output", "--index", "--wikidata-map", "--no-parallel", "--no-progress"):
        assert option in help_text
    assert "[default: 600]" in help_text and "python -m" not in help_text
    (tmp_path / "notes.txt").write_text("hello, not a dump\n")
    result = runner.invoke(
        app, ["kb", "build", "--dump", str(tmp_path / "notes.txt"), "--output", str(tmp_path / "kb")]
    )
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
    assert "not a MediaWiki XML dump" in str(result.exception)


def _options(command: list[str]) -> dict[str, str]:
    """Option name -> its help text, from the parameters of an `elq` command."""
    import typer.main

    click_command = typer.main.get_command(app)
    for name in command:
        click_command = click_command.commands[name]
    return {p.opts[0]: p.help for p in click_command.params if p.opts[0].startswith("--")}


def test_link_and_link_corpus_take_the_same_inference_options():
    from elcore.overrides import InferenceOverrides

    names = [f"--{f.replace('_', '-')}" for f in InferenceOverrides.__dataclass_fields__]
    single, corpus = _options(["link"]), _options(["link-corpus"])
    assert {n: single[n] for n in names} == {n: corpus[n] for n in names}
    assert InferenceOverrides(window=256, stride=128, threshold=None).config_values() == {
        "max_context_length": 256,
        "context_stride": 128,
    }


def test_stage_options_are_the_nested_specs_fields():
    from pipelines.build_index import BuildIndexConfig
    from pipelines.common import ActorResources
    from pipelines.options import build_config

    index = _options(["build-index"])
    assert {"--kind", "--nprobe", "--hnsw-m", "--num-shards"} <= set(index) and index[
        "--hnsw-m"
    ] == "HNSW graph degree"
    for stage in ("embed-entities", "link-corpus"):
        assert {"--num-actors", "--cpus-per-actor", "--use-gpu", "--torch-threads"} <= set(_options([stage]))
    config = build_config(BuildIndexConfig, {"embeddings": "e", "output": "o", "kind": "hnsw", "nprobe": 8})
    assert (config.index.kind.value, config.index.nprobe, config.index.hnsw_m) == ("hnsw", 8, 32)
    assert isinstance(BuildIndexConfig("e", "o").index, IndexSpec) and ActorResources().use_gpu is False


def test_nested_options_take_their_fields_prefix():
    from dataclasses import dataclass, field

    from pipelines.options import build_config, config_options

    @dataclass
    class Inner:
        size: int = 3

    @dataclass
    class Outer:
        name: str = "x"
        inner: Inner = field(default_factory=lambda: Inner(5), metadata={"prefix": "inner_"})

    options = {o.name: o.default for o in config_options(Outer)}
    assert options == {"name": "x", "inner_size": 5}
    assert build_config(Outer, {"inner_size": 9}) == Outer(inner=Inner(9))

    @dataclass
    class Clash:
        size: int = 1
        inner: Inner = field(default_factory=Inner)

    with pytest.raises(ValueError, match="size"):
        config_options(Clash)
