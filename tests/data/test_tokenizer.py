import pytest

from allinone.data.lang import train_bpe_model
from allinone.data.tokenizer import BpeTokenizer, TokenizationError

WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE OH".split()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    d = tmp_path_factory.mktemp("lang")
    (d / "text.txt").write_text("\n".join([" ".join(WORDS)] * 20 + WORDS) + "\n")
    return BpeTokenizer(train_bpe_model(d / "text.txt", d / "bpe.model", vocab_size=40))


def test_round_trip_and_blank(tokenizer):
    ids = tokenizer.encode("ONE OH NINE", "utt1")
    assert tokenizer.decode(ids) == "ONE OH NINE"
    assert tokenizer.blank_id == 0 and 0 not in ids


def test_empty_transcript_names_the_utterance(tokenizer):
    with pytest.raises(TokenizationError, match="utterance utt7: empty transcript"):
        tokenizer.encode("   ", "utt7")


def test_untokenisable_word_is_named(tokenizer):
    with pytest.raises(TokenizationError, match=r"utterance utt9: words \['QUARK'\]"):
        tokenizer.encode("ONE QUARK", "utt9")


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="lang_bpe_9/bpe.model does not exist"):
        BpeTokenizer(tmp_path / "lang_bpe_9" / "bpe.model")
