"""elcore.tokenizer: the Rust tokenizer used directly gives what transformers' fast tokenizer gives."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoTokenizer

from elcore.tokenizer import TOKENIZER_FILE, WordpieceTokenizer
from tests.conftest import WORDS

TEXTS = [" ".join(WORDS[:6]), "Paris, FRANCE; berlin!", "", "  spaced   out  ", " ".join(WORDS * 3)]


@pytest.fixture()
def both(tiny_base_dir):
    return WordpieceTokenizer.load(str(tiny_base_dir)), AutoTokenizer.from_pretrained(str(tiny_base_dir))


def test_texts_match_transformers(both):
    ours, theirs = both
    want = theirs(TEXTS, add_special_tokens=False, return_offsets_mapping=True)
    for i, got in enumerate(ours.encode_texts(TEXTS)):
        assert got.ids == want["input_ids"][i]
        assert [tuple(o) for o in got.offsets] == [tuple(o) for o in want["offset_mapping"][i]]
        assert got.word_ids == want.word_ids(i)
    assert len(ours) == len(theirs)
    assert (ours.cls_token_id, ours.sep_token_id, ours.pad_token_id) == (
        theirs.cls_token_id,
        theirs.sep_token_id,
        theirs.pad_token_id,
    )


def test_pairs_are_cut_longest_first_and_padded_as_transformers_does(both):
    ours, theirs = both
    titles, texts = ["paris", " ".join(WORDS), "berlin"], [" ".join(WORDS * 4), "", "a b"]
    got = ours.encode_pairs(titles, texts, 12)
    want = theirs(titles, texts, truncation="longest_first", max_length=12, padding=True, return_tensors="pt")
    assert torch.equal(got["input_ids"], want["input_ids"])
    assert torch.equal(got["attention_mask"], want["attention_mask"])


def test_saved_tokenizer_reads_back_both_ways(both, tmp_path):
    ours, _ = both
    ours.save_pretrained(str(tmp_path / "tok"))
    assert os.path.exists(tmp_path / "tok" / TOKENIZER_FILE)
    again, theirs = (
        WordpieceTokenizer.load(str(tmp_path / "tok")),
        AutoTokenizer.from_pretrained(str(tmp_path / "tok")),
    )
    assert [e.ids for e in again.encode_texts(TEXTS)] == theirs(TEXTS, add_special_tokens=False)["input_ids"]


def test_a_vocab_only_checkpoint_goes_through_transformers_once(tiny_base_dir, tmp_path):
    for name in ("vocab.txt", "config.json"):  # an older BERT checkpoint: no tokenizer.json
        (tmp_path / name).write_text((tiny_base_dir / name).read_text())
    loaded = WordpieceTokenizer.load(str(tmp_path))
    want = WordpieceTokenizer.load(str(tiny_base_dir))
    assert [e.ids for e in loaded.encode_texts(TEXTS)] == [e.ids for e in want.encode_texts(TEXTS)]
    loaded.save_pretrained(str(tmp_path / "saved"))
    assert [e.ids for e in WordpieceTokenizer.load(str(tmp_path / "saved")).encode_texts(TEXTS)] == [
        e.ids for e in want.encode_texts(TEXTS)
    ]


def test_saving_into_the_folder_it_came_from_keeps_it(both, tiny_base_dir, tmp_path):
    ours, _ = both
    ours.save_pretrained(str(tmp_path / "tok"))
    again = WordpieceTokenizer.load(str(tmp_path / "tok"))
    again.save_pretrained(str(tmp_path / "tok"))  # e.g. encode-entities writing a linker over its model
    assert [e.ids for e in WordpieceTokenizer.load(str(tmp_path / "tok")).encode_texts(TEXTS)] == [
        e.ids for e in ours.encode_texts(TEXTS)
    ]
