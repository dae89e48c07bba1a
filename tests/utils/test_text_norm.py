"""Scoring normalisation: "none" is the identity; each Switchboard rule does what it says."""

import pytest

from allinone.utils.text_norm import clean_swbd_transcript, normalize_for_scoring, normalize_results


@pytest.mark.parametrize("text", ["HELLO World", "uh [noise] th-", ""])
def test_none_is_the_identity(text):
    assert normalize_for_scoring(text, "none") == text


@pytest.mark.parametrize(
    "raw, scored",
    [
        ("YES [noise] I [laughter] DO", "yes i do"),  # case folded, non-speech tokens removed
        ("[laughter-yes] {breath} okay_1", "yes okay"),  # laughed word kept, event dropped, _1 tag
        ("[bocket/bucket] {grandmotherly}", "bucket grandmotherly"),  # intended word, coinage kept
        ("th[e]- the -[a]bout about th- x", "the about x"),  # fragments removed
        ("uh i um think hmm", "i think"),  # hesitations removed
        ("mm-hmm mhm huh-uh", "uh-huh uh-huh uh-uh"),  # backchannels in one spelling
        ('%uh well, <contraction e_form="[we=>we]">we\'re ((going)) home.', "well we're going home"),
        ("[noise] uh", ""),
    ],
)
def test_switchboard_rules(raw, scored):
    assert normalize_for_scoring(raw, "swbd") == scored


def test_training_text_keeps_hesitations_and_fragments():
    assert clean_swbd_transcript("UH [noise] th[e]- THE").split()[0] == "uh"


def test_results_are_normalised_on_both_sides_and_unknown_schemes_refused():
    out = normalize_results([("c1", ["UH", "YES"], ["yes", "[noise]"])], "swbd")
    assert out == [("c1", ["yes"], ["yes"])]
    with pytest.raises(ValueError):
        normalize_for_scoring("x", "klingon")


@pytest.mark.parametrize(
    "raw",
    [
        "YES [noise] I [laughter] DO",
        "th[e]- the -[a]bout uh um mm-hmm",
        '%uh well, <contraction e_form="[we=>we]">we\'re',
    ],
)
def test_scoring_a_cleaned_transcript_equals_scoring_the_raw_one(raw):
    # The recipe stores cleaned text and scores it later: cleaning first must change nothing.
    assert normalize_for_scoring(clean_swbd_transcript(raw), "swbd") == normalize_for_scoring(raw, "swbd")
