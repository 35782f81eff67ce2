"""Writes `everyday.jsonl`: hand-written everyday sentences and questions with gold links into the
embedded default's catalogue (Wikipedia vital articles; ids `enwiki:` + lower-cased title).

Written by hand for the newcomer issue, not drawn from any benchmark: famous people, places and works
by full name, by surname and in lower case; ambiguous names that the context decides; sentences
that name no entity at all. Only entities of that catalogue are golds (a name outside it, such as
"Chicago Bulls", is left unannotated). Each gold is `(surface as written, catalogue title)`; the span is the
first occurrence of the surface at or after the previous gold's end.

A second set, `elcore/calibration/everyday_dev.jsonl` (45 sentences, other entities, written the same
way), is the one to make design choices on, and the default's build tunes its link threshold on it;
`everyday.jsonl` only reports them.

    python benchmarks/data/make_everyday.py      # rewrites both .jsonl files
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from elcore.default_model import EVERYDAY_DEV  # noqa: E402

SENTENCES: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Fyodor Dostoevsky wrote Crime and Punishment in Saint Petersburg.",
        [
            ("Fyodor Dostoevsky", "Fyodor Dostoevsky"),
            ("Crime and Punishment", "Crime and Punishment"),
            ("Saint Petersburg", "Saint Petersburg"),
        ],
    ),
    ("who wrote the old man and the sea", [("the old man and the sea", "The Old Man and the Sea")]),
    ("Barack Obama", [("Barack Obama", "Barack Obama")]),
    ("how tall is mount everest", [("mount everest", "Mount Everest")]),
    ("when did the berlin wall fall", [("berlin wall", "Berlin Wall")]),
    ("Jordan scored 40 points for the Chicago Bulls.", [("Jordan", "Michael Jordan")]),
    (
        "Angela Merkel was the chancellor of Germany.",
        [("Angela Merkel", "Angela Merkel"), ("Germany", "Germany")],
    ),
    ("Newton described gravity in the Principia.", [("Newton", "Isaac Newton"), ("gravity", "Gravity")]),
    ("Who painted the Mona Lisa, and where does it hang?", [("Mona Lisa", "Mona Lisa")]),
    (
        "Albert Einstein developed the theory of relativity.",
        [("Albert Einstein", "Albert Einstein"), ("theory of relativity", "Theory of relativity")],
    ),
    (
        "The Amazon River flows through Brazil into the Atlantic Ocean.",
        [("Amazon River", "Amazon River"), ("Brazil", "Brazil"), ("Atlantic Ocean", "Atlantic Ocean")],
    ),
    ("I drank a cup of tea this morning.", []),
    ("She put the cup on the table and went to work.", []),
    ("We had a long meeting about the budget today.", []),
    ("My brother bought a new car last week.", []),
    ("The weather was nice, so we walked to the park.", []),
    ("Can you send me the report by Friday?", []),
    ("Einstein was born in Ulm.", [("Einstein", "Albert Einstein")]),
    ("what did einstein discover", [("einstein", "Albert Einstein")]),
    (
        "Shakespeare wrote Hamlet and Romeo and Juliet.",
        [
            ("Shakespeare", "William Shakespeare"),
            ("Hamlet", "Hamlet"),
            ("Romeo and Juliet", "Romeo and Juliet"),
        ],
    ),
    ("who wrote hamlet", [("hamlet", "Hamlet")]),
    (
        "Leonardo da Vinci painted the Mona Lisa, which hangs in the Louvre.",
        [("Leonardo da Vinci", "Leonardo da Vinci"), ("Mona Lisa", "Mona Lisa"), ("Louvre", "Louvre")],
    ),
    ("Tokyo is the capital of Japan.", [("Tokyo", "Tokyo"), ("Japan", "Japan")]),
    ("what is the capital of japan", [("japan", "Japan")]),
    ("The Nile flows through Egypt.", [("Nile", "Nile"), ("Egypt", "Egypt")]),
    (
        "Charles Darwin wrote On the Origin of Species.",
        [("Charles Darwin", "Charles Darwin"), ("On the Origin of Species", "On the Origin of Species")],
    ),
    ("darwin sailed on the beagle", [("darwin", "Charles Darwin")]),
    ("Marie Curie was born in Poland.", [("Marie Curie", "Marie Curie"), ("Poland", "Poland")]),
    ("Curie won two Nobel Prizes.", [("Curie", "Marie Curie"), ("Nobel Prize", "Nobel Prize")]),
    (
        "Mozart and Beethoven both lived in Vienna.",
        [("Mozart", "Wolfgang Amadeus Mozart"), ("Beethoven", "Ludwig van Beethoven"), ("Vienna", "Vienna")],
    ),
    (
        "Winston Churchill led the United Kingdom during World War II.",
        [
            ("Winston Churchill", "Winston Churchill"),
            ("United Kingdom", "United Kingdom"),
            ("World War II", "World War II"),
        ],
    ),
    ("churchill was prime minister twice", [("churchill", "Winston Churchill")]),
    (
        "Leo Tolstoy wrote War and Peace.",
        [("Leo Tolstoy", "Leo Tolstoy"), ("War and Peace", "War and Peace")],
    ),
    ("who wrote war and peace", [("war and peace", "War and Peace")]),
    ("Pablo Picasso was born in Spain.", [("Pablo Picasso", "Pablo Picasso"), ("Spain", "Spain")]),
    ("Picasso moved to Paris in 1904.", [("Picasso", "Pablo Picasso"), ("Paris", "Paris")]),
    (
        "Galileo Galilei observed the moons of Jupiter.",
        [("Galileo Galilei", "Galileo Galilei"), ("Jupiter", "Jupiter")],
    ),
    ("The Colosseum is in Rome.", [("Colosseum", "Colosseum"), ("Rome", "Rome")]),
    (
        "Julius Caesar met Cleopatra in Egypt.",
        [("Julius Caesar", "Julius Caesar"), ("Cleopatra", "Cleopatra"), ("Egypt", "Egypt")],
    ),
    (
        "Abraham Lincoln was the 16th president of the United States.",
        [("Abraham Lincoln", "Abraham Lincoln"), ("United States", "United States")],
    ),
    ("lincoln gave the gettysburg address", [("lincoln", "Abraham Lincoln")]),
    (
        "The Statue of Liberty stands in New York City.",
        [("Statue of Liberty", "Statue of Liberty"), ("New York City", "New York City")],
    ),
    ("Mercury is the closest planet to the Sun.", [("Mercury", "Mercury (planet)"), ("Sun", "Sun")]),
    ("Mercury is a metal that is liquid at room temperature.", [("Mercury", "Mercury (element)")]),
    (
        "George Washington was the first president of the United States.",
        [("George Washington", "George Washington"), ("United States", "United States")],
    ),
    ("The White House is in Washington, D.C.", [("Washington, D.C.", "Washington, D.C.")]),
    (
        "Nelson Mandela became president of South Africa in 1994.",
        [("Nelson Mandela", "Nelson Mandela"), ("South Africa", "South Africa")],
    ),
    ("mandela spent 27 years in prison", [("mandela", "Nelson Mandela")]),
    ("The Beatles came from Liverpool.", [("The Beatles", "The Beatles"), ("Liverpool", "Liverpool")]),
    ("John Lennon wrote Imagine.", [("John Lennon", "John Lennon")]),
    (
        "Steve Jobs founded Apple with Steve Wozniak.",
        [("Steve Jobs", "Steve Jobs"), ("Apple", "Apple Inc."), ("Steve Wozniak", "Steve Wozniak")],
    ),
    ("I ate an apple and a banana for lunch.", [("apple", "Apple"), ("banana", "Banana")]),
    ("Bill Gates founded Microsoft.", [("Bill Gates", "Bill Gates"), ("Microsoft", "Microsoft")]),
    (
        "The Great Wall of China is visible from the mountains near Beijing.",
        [("Great Wall of China", "Great Wall of China"), ("Beijing", "Beijing")],
    ),
    ("Mahatma Gandhi led India to independence.", [("Mahatma Gandhi", "Mahatma Gandhi"), ("India", "India")]),
    ("gandhi was born in porbandar", [("gandhi", "Mahatma Gandhi")]),
    ("The Taj Mahal is in Agra.", [("Taj Mahal", "Taj Mahal"), ("Agra", "Agra")]),
    (
        "The Eiffel Tower was built for a world's fair in Paris.",
        [("Eiffel Tower", "Eiffel Tower"), ("Paris", "Paris")],
    ),
    (
        "Vincent van Gogh painted The Starry Night.",
        [("Vincent van Gogh", "Vincent van Gogh"), ("The Starry Night", "The Starry Night")],
    ),
    (
        "Van Gogh lived in the Netherlands and France.",
        [("Van Gogh", "Vincent van Gogh"), ("Netherlands", "Netherlands"), ("France", "France")],
    ),
    ("Aristotle was a student of Plato.", [("Aristotle", "Aristotle"), ("Plato", "Plato")]),
    ("Homer wrote the Iliad.", [("Homer", "Homer"), ("Iliad", "Iliad")]),
    (
        "Miguel de Cervantes wrote Don Quixote.",
        [("Miguel de Cervantes", "Miguel de Cervantes"), ("Don Quixote", "Don Quixote")],
    ),
    ("Dante wrote the Divine Comedy.", [("Dante", "Dante Alighieri"), ("Divine Comedy", "Divine Comedy")]),
    (
        "Karl Marx and Sigmund Freud were both born in the 19th century.",
        [("Karl Marx", "Karl Marx"), ("Sigmund Freud", "Sigmund Freud")],
    ),
    (
        "Mount Kilimanjaro is the highest mountain in Africa.",
        [("Mount Kilimanjaro", "Mount Kilimanjaro"), ("Africa", "Africa")],
    ),
    ("The Sahara is the largest hot desert.", [("Sahara", "Sahara")]),
    ("Sydney is the largest city in Australia.", [("Sydney", "Sydney"), ("Australia", "Australia")]),
    ("how many people live in canada", [("canada", "Canada")]),
    ("Elvis Presley was born in Tupelo, Mississippi.", [("Elvis Presley", "Elvis Presley")]),
    ("Charlie Chaplin starred in silent films.", [("Charlie Chaplin", "Charlie Chaplin")]),
    ("Walt Disney created Mickey Mouse.", [("Walt Disney", "Walt Disney"), ("Mickey Mouse", "Mickey Mouse")]),
    (
        "Martin Luther King Jr. gave a speech in Washington, D.C.",
        [("Martin Luther King Jr.", "Martin Luther King Jr."), ("Washington, D.C.", "Washington, D.C.")],
    ),
    ("Napoleon was defeated at Waterloo.", [("Napoleon", "Napoleon")]),
    ("Confucius was a Chinese philosopher.", [("Confucius", "Confucius")]),
    ("who was the first man on the moon", [("moon", "Moon")]),
    ("The children played football in the garden.", [("football", "Association football")]),
    ("Please remember to buy milk and bread.", []),
    ("It took us three hours to get home.", []),
]


# Written after the set above, with other entities, to make design choices on (`everyday_dev.jsonl`):
# the set above only reports them.
DEV_SENTENCES = [
    (
        "Ludwig van Beethoven composed nine symphonies in Vienna.",
        [("Ludwig van Beethoven", "Ludwig van Beethoven"), ("Vienna", "Vienna")],
    ),
    ("who wrote pride and prejudice", [("pride and prejudice", "Pride and Prejudice")]),
    ("Nelson Mandela", [("Nelson Mandela", "Nelson Mandela")]),
    ("how deep is the pacific ocean", [("pacific ocean", "Pacific Ocean")]),
    ("when was the eiffel tower built", [("eiffel tower", "Eiffel Tower")]),
    (
        "Picasso painted Guernica in Paris.",
        [("Picasso", "Pablo Picasso"), ("Guernica", "Guernica (Picasso)"), ("Paris", "Paris")],
    ),
    (
        "Winston Churchill led the United Kingdom during World War II.",
        [
            ("Winston Churchill", "Winston Churchill"),
            ("United Kingdom", "United Kingdom"),
            ("World War II", "World War II"),
        ],
    ),
    ("Mozart was born in Austria.", [("Mozart", "Wolfgang Amadeus Mozart"), ("Austria", "Austria")]),
    ("what did galileo discover", [("galileo", "Galileo Galilei")]),
    ("Napoleon was crowned emperor of France.", [("Napoleon", "Napoleon"), ("France", "France")]),
    (
        "The Nile flows into the Mediterranean Sea.",
        [("Nile", "Nile"), ("Mediterranean Sea", "Mediterranean Sea")],
    ),
    ("Jane Austen was born in England.", [("Jane Austen", "Jane Austen"), ("England", "England")]),
    ("The Colosseum is in Rome.", [("Colosseum", "Colosseum"), ("Rome", "Rome")]),
    (
        "Marie Curie studied radioactivity in Paris.",
        [("Marie Curie", "Marie Curie"), ("radioactivity", "Radioactive decay"), ("Paris", "Paris")],
    ),
    (
        "Homer wrote the Iliad and the Odyssey.",
        [("Homer", "Homer"), ("Iliad", "Iliad"), ("Odyssey", "Odyssey")],
    ),
    ("We ordered pizza and watched a movie.", []),
    ("The meeting was moved to Tuesday afternoon.", []),
    ("He fixed the chair in the kitchen.", []),
    ("Our flight was delayed by two hours.", []),
    ("She bought flowers for her mother.", []),
    (
        "Lincoln was the sixteenth president of the United States.",
        [("Lincoln", "Abraham Lincoln"), ("United States", "United States")],
    ),
    ("who painted the starry night", [("the starry night", "The Starry Night")]),
    ("Tokyo is the capital of Japan.", [("Tokyo", "Tokyo"), ("Japan", "Japan")]),
    ("Charles Dickens lived in London.", [("Charles Dickens", "Charles Dickens"), ("London", "London")]),
    ("freud founded psychoanalysis", [("freud", "Sigmund Freud"), ("psychoanalysis", "Psychoanalysis")]),
    (
        "Christopher Columbus crossed the Atlantic Ocean in 1492.",
        [("Christopher Columbus", "Christopher Columbus"), ("Atlantic Ocean", "Atlantic Ocean")],
    ),
    ("Cleopatra ruled Egypt.", [("Cleopatra", "Cleopatra"), ("Egypt", "Egypt")]),
    ("The Louvre is the most visited museum in the world.", [("Louvre", "Louvre")]),
    ("Mount Fuji is the highest mountain in Japan.", [("Mount Fuji", "Mount Fuji"), ("Japan", "Japan")]),
    ("Isaac Newton was born in England.", [("Isaac Newton", "Isaac Newton"), ("England", "England")]),
    ("Venus is the second planet from the Sun.", [("Venus", "Venus"), ("Sun", "Sun")]),
    ("Aristotle was a student of Plato.", [("Aristotle", "Aristotle"), ("Plato", "Plato")]),
    ("The Berlin Wall fell in 1989.", [("Berlin Wall", "Berlin Wall")]),
    ("Tolstoy wrote Anna Karenina.", [("Tolstoy", "Leo Tolstoy"), ("Anna Karenina", "Anna Karenina")]),
    ("I need to buy a new phone charger.", []),
    ("The kids built a snowman in the yard.", []),
    ("Beethoven lost his hearing.", [("Beethoven", "Ludwig van Beethoven")]),
    (
        "The Golden Gate Bridge is in San Francisco.",
        [("Golden Gate Bridge", "Golden Gate Bridge"), ("San Francisco", "San Francisco")],
    ),
    ("Mahatma Gandhi led India to independence.", [("Mahatma Gandhi", "Mahatma Gandhi"), ("India", "India")]),
    ("darwin developed the theory of evolution", [("darwin", "Charles Darwin"), ("evolution", "Evolution")]),
    (
        "The Great Pyramid of Giza is in Egypt.",
        [("Great Pyramid of Giza", "Great Pyramid of Giza"), ("Egypt", "Egypt")],
    ),
    (
        "Queen Victoria ruled the British Empire.",
        [("Queen Victoria", "Queen Victoria"), ("British Empire", "British Empire")],
    ),
    ("She drank a glass of water after the run.", []),
    (
        "The Mississippi River flows into the Gulf of Mexico.",
        [("Mississippi River", "Mississippi River"), ("Gulf of Mexico", "Gulf of Mexico")],
    ),
    (
        "Leonardo da Vinci painted The Last Supper in Milan.",
        [
            ("Leonardo da Vinci", "Leonardo da Vinci"),
            ("The Last Supper", "The Last Supper (Leonardo)"),
            ("Milan", "Milan"),
        ],
    ),
]


def write(sentences: list[tuple[str, list[tuple[str, str]]]], out: Path, prefix: str) -> None:
    lines = []
    for n, (text, golds) in enumerate(sentences, start=1):
        mentions, ids, titles, cursor = [], [], [], 0
        for surface, title in golds:
            start = text.index(surface, cursor)
            cursor = start + len(surface)
            mentions.append([start, cursor])
            ids.append("enwiki:" + " ".join(title.lower().replace("_", " ").split()))
            titles.append(title)
        record = {
            "id": f"{prefix}-{n:03d}",
            "text": text,
            "mentions": mentions,
            "wikidata_id": ids,
            "entity": titles,
            "span_source": ["gold"] * len(ids),
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} examples -> {out}")


def main() -> None:
    write(SENTENCES, Path(__file__).with_name("everyday.jsonl"), "everyday")
    write(DEV_SENTENCES, EVERYDAY_DEV, "everyday-dev")


if __name__ == "__main__":
    main()
