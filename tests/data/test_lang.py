"""BPE lang directory: tokens/words/lexicon files and their consistency with the model."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from allinone.data.lang import (
    LexiconError,
    build_lexicon,
    collect_words,
    read_lexicon,
    read_symbol_table,
    train_bpe_model,
    write_tokens,
    write_words,
)

REPO = Path(__file__).resolve().parents[2]
WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "OH"]


def _transcripts(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 8)))) for _ in range(n)]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lang_dir(tmp_path_factory):
    """A lang dir built by the two CLI scripts, as prepare.sh does."""
    lang = tmp_path_factory.mktemp("lang_bpe_40")
    (lang / "transcript_words.txt").write_text("\n".join(_transcripts()) + "\n")
    _load("train_bpe").main(["--transcript", str(lang / "transcript_words.txt"), "--lang-dir", str(lang),
                             "--vocab-size", "40"])  # fmt: skip
    _load("prepare_lang_bpe").main(["--lang-dir", str(lang)])
    return lang


def test_reserved_token_ids(lang_dir):
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    assert tokens["<blk>"] == 0 and tokens["<sos/eos>"] == 1 and tokens["<unk>"] == 2


def test_tokens_match_model(lang_dir):
    sp = spm.SentencePieceProcessor(model_file=str(lang_dir / "bpe.model"))
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    assert len(tokens) == sp.get_piece_size() == 40
    for piece, i in tokens.items():
        assert sp.id_to_piece(i) == piece and sp.piece_to_id(piece) == i
    assert sp.bos_id() == -1 and sp.eos_id() == -1


def test_words_table(lang_dir):
    words = read_symbol_table(lang_dir / "words.txt")
    order = sorted(words, key=words.get)
    assert order == ["<eps>", *sorted(WORDS), "#0", "<s>", "</s>"]
    assert list(words.values()) == list(range(len(words)))


def test_lexicon_round_trip(lang_dir):
    sp = spm.SentencePieceProcessor(model_file=str(lang_dir / "bpe.model"))
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    lexicon = read_lexicon(lang_dir / "lexicon.txt")
    assert sorted(lexicon) == sorted(WORDS)
    for word, pieces in lexicon.items():
        assert all(p in tokens for p in pieces)
        ids = [tokens[p] for p in pieces]
        assert sp.unk_id() not in ids
        assert sp.decode(ids) == word
        assert ids == sp.encode(word)


def test_untokenisable_word_is_named(tmp_path):
    transcript = tmp_path / "t.txt"
    transcript.write_text("\n".join(_transcripts(100)) + "\n")
    model = train_bpe_model(transcript, tmp_path / "bpe.model", vocab_size=30)
    sp = spm.SentencePieceProcessor(model_file=str(model))
    with pytest.raises(LexiconError, match="QUIZ"):
        build_lexicon(sp, ["ONE", "QUIZ"])  # 'Q' never occurs in the training text


def test_prepare_lang_bpe_cli_names_bad_word(tmp_path):
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "transcript_words.txt").write_text("\n".join(_transcripts(100)) + "\n")
    train_bpe_model(lang / "transcript_words.txt", lang / "bpe.model", vocab_size=30)
    with open(lang / "transcript_words.txt", "a") as f:
        f.write("ONE JUKEBOX TWO\n")
    with pytest.raises(SystemExit, match="JUKEBOX"):
        _load("prepare_lang_bpe").main(["--lang-dir", str(lang)])
    assert not (lang / "lexicon.txt").exists()


def test_collect_and_write_words(tmp_path):
    assert collect_words(["ONE TWO", " TWO  OH ", ""]) == ["OH", "ONE", "TWO"]
    write_words(["OH", "ONE"], tmp_path / "words.txt")
    assert (tmp_path / "words.txt").read_text().split("\n")[:3] == ["<eps> 0", "OH 1", "ONE 2"]
    with pytest.raises(ValueError):
        write_words(["#0"], tmp_path / "bad.txt")


def test_write_tokens_rejects_model_without_reserved_ids(tmp_path):
    transcript = tmp_path / "t.txt"
    transcript.write_text("\n".join(_transcripts(100)) + "\n")
    spm.SentencePieceTrainer.train(input=str(transcript), model_prefix=str(tmp_path / "plain"), vocab_size=30,
                                   model_type="bpe", minloglevel=2)  # fmt: skip
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "plain.model"))
    with pytest.raises(ValueError, match="<blk>"):
        write_tokens(sp, tmp_path / "tokens.txt")
