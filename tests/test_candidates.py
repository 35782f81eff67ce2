from elcore.candidates import without_edge_punctuation, writes_capitals


def test_a_text_writes_capitals_when_any_letter_past_the_first_is_one():
    assert writes_capitals("Who painted the Mona Lisa?")
    assert writes_capitals("how many U.S. states are there")
    assert not writes_capitals("Who was the youngest president ever?")  # only the first letter
    assert not writes_capitals("who is the president of france?")
    assert not writes_capitals("")


def test_edge_punctuation_is_trimmed_from_both_ends_only():
    text = '"Washington, D.C." is big.'
    assert without_edge_punctuation(text, 0, 18) == (1, 16)
    assert without_edge_punctuation(text, 1, 11) == (1, 11)
    assert without_edge_punctuation("...", 0, 3) == (0, 0)  # nothing left
