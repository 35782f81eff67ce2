"""Tokenisation with character offsets, and overlapping windows over long texts.

A text is tokenised once (no special tokens) into WordPiece ids with character offsets. A text
longer than one window is split into overlapping windows of at most `window_size` wordpieces
(`[CLS]` and `[SEP]` included), each starting on a word boundary; spans found in a window are
mapped back to character offsets of the original text, so nothing is silently cut.

    >>> docs = tokenize(tokenizer, ["who is betty white?"])
    >>> [w.token_start for w in make_windows(docs, window_size=128, stride=64)]
    [0]
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError


@dataclass(frozen=True)
class TokenizedText:
    """WordPiece tokens of one text, without special tokens.

    Attributes:
        input_ids: token ids.
        char_starts / char_ends: character offsets of each token in the text (end exclusive).
        word_starts: whether each token begins a word (is not a `##` continuation).
    """

    input_ids: np.ndarray
    char_starts: np.ndarray
    char_ends: np.ndarray
    word_starts: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class Window:
    """A slice of one tokenised text, framed as `[CLS] tokens [SEP]`.

    Content token `t` of the window sits at model position `t + 1`; it is token
    `token_start + t` of the text. Overlapping windows split the text between them at the middle of
    each overlap: the window owns the span centres in `[own_start, own_end)` (see `central_span_mask`);
    `prev_end` / `next_start` are where its neighbours end and start.
    """

    text_index: int
    token_start: int
    token_end: int
    number: int = 0  # which window of its text (0-based, in text order)
    own_start: int = 0
    own_end: int = sys.maxsize
    prev_end: int = 0
    next_start: int = sys.maxsize

    @property
    def num_tokens(self) -> int:
        return self.token_end - self.token_start


@dataclass(frozen=True)
class WindowBatch:
    """Padded model inputs for a list of windows, plus the per-position masks spans need."""

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    content_mask: torch.Tensor  # [B, L] True on text tokens (never [CLS]/[SEP]/padding)
    word_start_mask: torch.Tensor  # [B, L] True where a token begins a word
    word_end_mask: torch.Tensor  # [B, L] True where a token ends a word
    windows: list[Window]


def tokenize(tokenizer, texts: Sequence[str]) -> list[TokenizedText]:
    """Tokenise texts with a fast (Rust) tokenizer, keeping character offsets and word starts."""
    if not texts:
        return []
    result = []
    for encoding in tokenizer.encode_texts(texts):
        ids = encoding.ids
        offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        word_ids = encoding.word_ids
        word_starts = np.array(
            [j == 0 or word_ids[j] != word_ids[j - 1] for j in range(len(ids))], dtype=bool
        )
        result.append(
            TokenizedText(np.asarray(ids, dtype=np.int64), offsets[:, 0], offsets[:, 1], word_starts)
        )
    return result


def check_window(window_size: int, stride: int, max_positions: int = 512) -> None:
    """Raise `ConfigError` unless the window settings are usable."""
    if not 8 <= window_size <= max_positions:
        raise ConfigError(f"window size must be in [8, {max_positions}], got {window_size}")
    if not 1 <= stride <= window_size - 2:
        raise ConfigError(f"window stride must be in [1, window_size - 2 = {window_size - 2}], got {stride}")


def make_windows(docs: Sequence[TokenizedText], window_size: int, stride: int) -> list[Window]:
    """Cover every token of every text with windows of at most `window_size - 2` content tokens.

    Successive windows advance by about `stride` tokens; a window never starts inside a word
    (unless a single word is longer than a window). An empty text gets no window.
    """
    check_window(window_size, stride)
    capacity = window_size - 2
    windows = []
    for text_index, doc in enumerate(docs):
        n = len(doc)
        start = number = 0
        own = []
        while start < n:
            end = min(n, start + capacity)
            own.append(Window(text_index, start, end, number))
            number += 1
            if end == n:
                break
            start = _word_start_at_or_before(doc.word_starts, start + stride, floor=start + 1)
        windows += _share_overlaps(own)
    return windows


def _share_overlaps(windows: list[Window]) -> list[Window]:
    """Give each of one text's windows its neighbours' extents and the centres it owns: the overlap
    with a neighbour is cut in the middle."""
    out = []
    for k, w in enumerate(windows):
        before = windows[k - 1] if k > 0 else None
        after = windows[k + 1] if k + 1 < len(windows) else None
        out.append(
            dataclasses.replace(
                w,
                own_start=0 if before is None else (w.token_start + before.token_end + 1) // 2,
                own_end=sys.maxsize if after is None else (after.token_start + w.token_end + 1) // 2,
                prev_end=0 if before is None else before.token_end,
                next_start=sys.maxsize if after is None else after.token_start,
            )
        )
    return out


def central_span_mask(windows: Sequence[Window], length: int, max_width: int) -> torch.Tensor:
    """`[B, L, K]` True where span `(i, w)` of window b is that window's to score, so overlapping windows
    score each span once: its centre lies in the window's own range, or the neighbour that owns the
    centre cannot hold the whole span."""

    def field(name: str) -> torch.Tensor:
        return torch.tensor([getattr(w, name) for w in windows], dtype=torch.long).view(-1, 1, 1)

    first = field("token_start") + torch.arange(length).view(1, -1, 1) - 1  # text token of position i
    last = first + torch.arange(max_width).view(1, 1, -1)
    centre2 = first + last  # twice the centre, so centres between tokens compare exactly
    own_start, own_end = 2 * field("own_start"), 2 * field("own_end").clamp(max=sys.maxsize // 4)
    owned = (centre2 >= own_start) & (centre2 < own_end)
    before_too_short = (centre2 < own_start) & (last >= field("prev_end"))
    after_too_short = (centre2 >= own_end) & (first < field("next_start"))
    return owned | before_too_short | after_too_short


def _word_start_at_or_before(word_starts: np.ndarray, position: int, floor: int) -> int:
    for candidate in range(position, floor - 1, -1):
        if word_starts[candidate]:
            return candidate
    return position


def collate_windows(tokenizer, docs: Sequence[TokenizedText], windows: Sequence[Window]) -> WindowBatch:
    """Build padded `[CLS] ... [SEP]` inputs for `windows` (from `docs`)."""
    length = max(w.num_tokens for w in windows) + 2
    batch = len(windows)
    input_ids = torch.full((batch, length), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros((batch, length), dtype=torch.long)
    content = torch.zeros((batch, length), dtype=torch.bool)
    word_start = torch.zeros((batch, length), dtype=torch.bool)
    word_end = torch.zeros((batch, length), dtype=torch.bool)
    for b, w in enumerate(windows):
        doc, n = docs[w.text_index], w.num_tokens
        input_ids[b, 0] = tokenizer.cls_token_id
        input_ids[b, 1 : n + 1] = torch.from_numpy(doc.input_ids[w.token_start : w.token_end])
        input_ids[b, n + 1] = tokenizer.sep_token_id
        attention[b, : n + 2] = 1
        content[b, 1 : n + 1] = True
        starts = doc.word_starts[w.token_start : w.token_end]
        word_start[b, 1 : n + 1] = torch.from_numpy(starts)
        # A token ends a word when the next token starts one (or the text ends there).
        next_starts = np.append(doc.word_starts[w.token_start + 1 : w.token_end + 1], True)[:n]
        if w.token_end == len(doc):
            next_starts[-1] = True
        word_end[b, 1 : n + 1] = torch.from_numpy(next_starts)
    return WindowBatch(input_ids, attention, content, word_start, word_end, list(windows))


def char_span(doc: TokenizedText, window: Window, first: int, last: int) -> tuple[int, int]:
    """Character span of window positions `first..last` (model positions, inclusive)."""
    return (
        int(doc.char_starts[window.token_start + first - 1]),
        int(doc.char_ends[window.token_start + last - 1]),
    )


def token_span(doc: TokenizedText, window: Window, start: int, end: int) -> tuple[int, int] | None:
    """Model positions `(first, last)` of the tokens covering chars `[start, end)`, if inside `window`.

    Tokens that overlap the character span are included; None if the span is not wholly
    inside the window or covers no token.
    """
    lo, hi = window.token_start, window.token_end
    starts, ends = doc.char_starts[lo:hi], doc.char_ends[lo:hi]
    inside = np.nonzero((ends > start) & (starts < end))[0]
    if len(inside) == 0:
        return None
    first, last = int(inside[0]), int(inside[-1])
    # The span must not run past the window on either side.
    if (lo + first > 0 and first == 0 and doc.char_starts[lo] > start) or (
        last == hi - lo - 1 and hi < len(doc) and doc.char_ends[hi - 1] < end
    ):
        return None
    return first + 1, last + 1
