"""Split an article's paragraphs into passages of at most N wordpieces, keeping links whole.

A passage is one or more whole paragraphs joined by "\\n" when they fit, else a piece of a long
paragraph cut at the last sentence end that fits (else the last word boundary); a cut never falls
inside a link's anchor text unless one anchor alone is longer than a passage. Counting assumes a
BERT WordPiece tokenizer (whitespace and punctuation pre-split), whose counts add up over pieces.

    >>> windower = Windower(resolve_tokenizer(None), max_wordpieces=128)
    >>> windows, cut = windower.windows(article.paragraphs)   # [Window(text, links)], links lost
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elcore.errors import ModelNotFoundError
from elcore.wikipedia.wikitext import Link, Paragraph

_SENTENCE_END = frozenset(".!?")


@dataclass(frozen=True)
class Window:
    """A passage: text, and its links (char spans into `text`, sorted by start)."""

    text: str
    links: tuple[Link, ...]


def load_tokenizer(spec: str):  # -> tokenizers.Tokenizer
    """A `tokenizers.Tokenizer` from a `tokenizer.json` path or a cached model name, with truncation
    and padding switched off (the shipped MiniLM file turns both on).

    Raises:
        ModelNotFoundError: no fast tokenizer can be loaded from `spec`.
    """
    from tokenizers import Tokenizer

    if Path(spec).is_file():
        tokenizer = Tokenizer.from_file(spec)
    else:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(spec).backend_tokenizer
        except (OSError, ValueError, AttributeError) as error:
            raise ModelNotFoundError(
                f"no fast tokenizer at {spec!r} ({error}); pass a folder with tokenizer.json, "
                "or leave the tokenizer unset for the shipped MiniLM one"
            ) from error
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def in_sample(seed: int, passage_id: str, fraction: float) -> bool:
    """A passage's place in the seeded sample, independent of processing order."""
    if fraction >= 1.0:
        return True
    digest = hashlib.blake2b(f"{seed}:{passage_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < fraction


@dataclass
class _Piece:
    text: str
    links: list[Link]
    n_tokens: int
    hard_cut: bool


class Windower:
    """Make passages of at most `max_wordpieces` tokens including `[CLS]` and `[SEP]`.

    Args:
        tokenizer: a `tokenizer.json` path or model name (see `load_tokenizer`).
        max_wordpieces: the model window the passages must fit.
    """

    def __init__(self, tokenizer: str, max_wordpieces: int) -> None:
        self.tokenizer = load_tokenizer(tokenizer)
        self.budget = max_wordpieces - 2

    def windows(self, paragraphs: Sequence[Paragraph]) -> tuple[list[Window], int]:
        """Passages of the paragraphs, in order, and the number of links lost to forced cuts."""
        if not paragraphs:
            return [], 0
        encodings = self.tokenizer.encode_batch([p.text for p in paragraphs], add_special_tokens=False)
        pieces: list[_Piece] = []
        cut = 0
        for paragraph, encoding in zip(paragraphs, encodings, strict=True):
            if encoding.tokens:
                cut += self._split(paragraph, encoding.tokens, encoding.offsets, pieces)
        windows: list[Window] = []
        group: list[_Piece] = []
        size = 0
        for piece in pieces:
            if group and size + piece.n_tokens > self.budget:
                windows.append(self._join(group))
                group, size = [], 0
            group.append(piece)
            size += piece.n_tokens
        if group:
            windows.append(self._join(group))
        return windows, cut

    def _split(
        self, paragraph: Paragraph, tokens: list[str], offsets: list[tuple[int, int]], out: list[_Piece]
    ) -> int:
        n, budget, links = len(tokens), self.budget, paragraph.links
        if n <= budget:
            out.append(_Piece(paragraph.text, list(links), n, False))
            return 0

        def crosses(i: int) -> bool:  # would a cut before token i split a link?
            c = offsets[i][0]
            return any(link.start < c < link.end for link in links)

        lost, start = 0, 0
        while n - start > budget:
            best_sentence = best_word = best_any = -1
            for i in range(start + budget, start, -1):
                if crosses(i):
                    continue
                if best_any < 0:
                    best_any = i
                word = not tokens[i].startswith("##") and offsets[i][0] > offsets[i - 1][1]
                if word and best_word < 0:
                    best_word = i
                if word and tokens[i - 1] in _SENTENCE_END and i - start >= budget // 2:
                    best_sentence = i
                    break
                if i - start < budget // 2 and best_word >= 0:
                    break
            end = next(i for i in (best_sentence, best_word, best_any, start + budget) if i > 0)
            lost += self._piece(paragraph, offsets, start, end, end not in (best_sentence, best_word), out)
            start = end
        lost += self._piece(paragraph, offsets, start, n, False, out)
        return lost

    def _piece(
        self,
        paragraph: Paragraph,
        offsets: list[tuple[int, int]],
        start: int,
        end: int,
        hard: bool,
        out: list[_Piece],
    ) -> int:
        lo, hi = offsets[start][0], offsets[end - 1][1]
        inside = [
            Link(k.start - lo, k.end - lo, k.target) for k in paragraph.links if lo <= k.start and k.end <= hi
        ]
        crossing = sum(1 for k in paragraph.links if lo <= k.start < hi < k.end)
        out.append(_Piece(paragraph.text[lo:hi], inside, end - start, hard))
        return crossing

    def _join(self, group: list[_Piece]) -> Window:
        texts, links, offset = [], [], 0
        for piece in group:
            texts.append(piece.text)
            links.extend(Link(k.start + offset, k.end + offset, k.target) for k in piece.links)
            offset += len(piece.text) + 1
        window = Window("\n".join(texts), tuple(links))
        if any(p.hard_cut for p in group):
            window = self._fit(window)
        return window

    def _fit(self, window: Window) -> Window:
        """After a cut inside a word the re-tokenised count can differ: trim until it fits."""
        text = window.text
        while True:
            encoding = self.tokenizer.encode(text, add_special_tokens=False)
            if len(encoding.tokens) <= self.budget:
                break
            text = text[: encoding.offsets[self.budget][0]].rstrip()
        return Window(text, tuple(k for k in window.links if k.end <= len(text)))
