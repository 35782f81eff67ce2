import pytest

from elcore.errors import ConfigError
from elcore.text import central_span_mask, char_span, collate_windows, make_windows, token_span, tokenize


@pytest.fixture()
def tokenizer(tiny_base_dir):
    from elcore.tokenizer import WordpieceTokenizer

    return WordpieceTokenizer.load(str(tiny_base_dir))


def test_offsets_point_into_the_original_text(tokenizer):
    text = "Who is Betty White's husband?"
    (doc,) = tokenize(tokenizer, [text])
    pieces = [text[s:e].lower() for s, e in zip(doc.char_starts, doc.char_ends, strict=True)]
    assert pieces[:3] == ["who", "is", "betty"]
    assert doc.word_starts[0] and len(doc) == len(pieces)


def test_windows_cover_every_token_and_start_on_words(tokenizer):
    text = " ".join(["paris france berlin germany albert einstein physicist"] * 30)
    docs = tokenize(tokenizer, [text, "", "paris"])
    windows = make_windows(docs, window_size=16, stride=7)
    long_windows = [w for w in windows if w.text_index == 0]
    covered = set()
    for w in long_windows:
        assert w.num_tokens <= 14
        assert docs[0].word_starts[w.token_start]
        covered.update(range(w.token_start, w.token_end))
    assert covered == set(range(len(docs[0])))
    assert [w.text_index for w in windows if w.text_index != 0] == [2]  # empty text: no window
    assert [w.number for w in long_windows] == list(range(len(long_windows)))  # numbered per text
    assert [w.number for w in windows if w.text_index == 2] == [0]


def test_collate_masks_and_char_spans(tokenizer):
    text = "paris is the capital of france"
    docs = tokenize(tokenizer, [text])
    (window,) = make_windows(docs, 32, 8)
    batch = collate_windows(tokenizer, docs, [window])
    n = len(docs[0])
    assert (
        batch.input_ids[0, 0] == tokenizer.cls_token_id
        and batch.input_ids[0, n + 1] == tokenizer.sep_token_id
    )
    assert batch.content_mask[0].tolist() == [False] + [True] * n + [False]
    start, end = char_span(docs[0], window, 6, 6)
    assert text[start:end] == "france"
    assert token_span(docs[0], window, text.index("capital"), text.index("capital") + 7) == (4, 4)


def test_bad_window_settings_are_rejected():
    with pytest.raises(ConfigError, match="stride"):
        make_windows([], window_size=16, stride=15)
    with pytest.raises(ConfigError, match="window size"):
        make_windows([], window_size=1024, stride=8)


def test_overlapping_windows_score_each_span_in_exactly_one_window(tokenizer):
    (doc,) = tokenize(tokenizer, ["the quick brown fox jumps over the lazy dog near the river bank " * 6])
    windows = make_windows([doc], window_size=16, stride=7)
    assert len(windows) > 4
    batch = collate_windows(tokenizer, [doc], windows)
    width = 4
    owners: dict[tuple[int, int], int] = {}
    mask = central_span_mask(windows, batch.input_ids.shape[1], width)
    for b, w in enumerate(windows):
        for i in range(1, w.num_tokens + 1):
            for k in range(width):
                if i + k > w.num_tokens:
                    continue  # runs past the window: not a span of this window
                span = (w.token_start + i - 1, w.token_start + i - 1 + k)
                if mask[b, i, k]:
                    assert span not in owners, f"span {span} scored in windows {owners[span]} and {b}"
                    owners[span] = b
    every_span = {(t, t + k) for t in range(len(doc)) for k in range(width) if t + k < len(doc)}
    assert set(owners) == every_span  # none lost, none twice
    middle = windows[2]
    assert middle.prev_end == windows[1].token_end and middle.next_start == windows[3].token_start
    assert windows[1].own_end == middle.own_start  # owned ranges tile the text
