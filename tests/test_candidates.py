from elcore.candidates import without_edge_punctuation


def test_edge_punctuation_is_trimmed_from_both_ends_only():
    text = '"Washington, D.C." is big.'
    assert without_edge_punctuation(text, 0, 18) == (1, 16)
    assert without_edge_punctuation(text, 1, 11) == (1, 11)
    assert without_edge_punctuation("...", 0, 3) == (0, 0)  # nothing left
