import itertools
import math

import torch

from elcore.spans import resolve_overlaps, select_spans, span_mask, span_means, span_scores, top_spans


def brute_force(start, end, inside, content, max_width, word_start=None, word_end=None):
    """Reference: every (i, j) pair, scored by the definition."""
    batch, length = start.shape
    out = torch.full((batch, length, max_width), -math.inf)
    for b, i in itertools.product(range(batch), range(length)):
        for j in range(i, min(length, i + max_width)):
            if not all(content[b, t] for t in range(i, j + 1)):
                continue
            if word_start is not None and not (word_start[b, i] and word_end[b, j]):
                continue
            out[b, i, j - i] = start[b, i] + end[b, j] + inside[b, i : j + 1].sum()
    return out


def test_band_scores_equal_brute_force():
    torch.manual_seed(0)
    batch, length, width = 3, 17, 5
    start, end, inside = torch.randn(batch, length), torch.randn(batch, length), torch.randn(batch, length)
    content = torch.zeros(batch, length, dtype=torch.bool)
    content[0, 1:16] = True
    content[1, 1:6] = True  # short row, rest padding
    content[2, 1:3] = True
    valid = span_mask(content, width)
    got = span_scores(start, end, inside, valid)
    want = brute_force(start, end, inside, content, width)
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    finite = ~torch.isinf(want)
    assert torch.allclose(got[finite], want[finite], atol=1e-5)
    # [CLS] (position 0) and padding never start or end a span.
    assert torch.isinf(got[:, 0]).all()
    assert torch.isinf(got[1, 6:]).all()


def test_word_boundary_mask_equals_brute_force():
    torch.manual_seed(1)
    length, width = 12, 4
    start, end, inside = torch.randn(1, length), torch.randn(1, length), torch.randn(1, length)
    content = torch.zeros(1, length, dtype=torch.bool)
    content[0, 1:11] = True
    word_start = torch.tensor([[0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0]], dtype=torch.bool)
    word_end = torch.roll(word_start, -1, dims=1) | ~torch.roll(content, -1, dims=1)
    valid = span_mask(content, width, word_start, word_end)
    got = span_scores(start, end, inside, valid)
    want = brute_force(start, end, inside, content, width, word_start, word_end)
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    assert torch.allclose(got[~torch.isinf(want)], want[~torch.isinf(want)], atol=1e-5)


def test_top_spans_and_means():
    scores = torch.full((2, 4, 3), -math.inf)
    scores[0, 1, 0], scores[0, 2, 1], scores[1, 3, 0] = 2.0, 5.0, -1.0
    b, first, last, s = top_spans(scores, k=2, min_score=0.0)
    assert b.tolist() == [0, 0] and first.tolist() == [2, 1] and last.tolist() == [3, 1]
    assert s.tolist() == [5.0, 2.0]
    hidden = torch.arange(2 * 4 * 2, dtype=torch.float).reshape(2, 4, 2)
    means = span_means(hidden, b, first, last)
    assert torch.allclose(means[0], hidden[0, 2:4].mean(0)) and torch.allclose(means[1], hidden[0, 1])


def test_greedy_overlap_resolution():
    spans = [(0, 5, 1.0), (3, 8, 2.0), (8, 10, 0.5), (9, 12, 0.4), (0, 2, 0.1)]
    kept = resolve_overlaps(spans, lambda s: (s[0], s[1]), lambda s: s[2])
    assert kept == [(0, 2, 0.1), (3, 8, 2.0), (8, 10, 0.5)]


def test_select_spans_applies_threshold_first():
    class Hit:
        def __init__(self, start, end, score):
            self.start, self.end, self.score = start, end, score

    hits = [Hit(0, 5, -5.0), Hit(2, 4, -1.0), Hit(6, 9, -4.0)]
    kept = select_spans(hits, threshold=-4.5)
    assert [(h.start, h.end) for h in kept] == [(2, 4), (6, 9)]
