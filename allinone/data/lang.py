"""Building a BPE "lang" directory: sentencepiece model, tokens, words, lexicon.

Layout produced (icefall conventions)::

    lang_bpe_<N>/bpe.model             sentencepiece model
    lang_bpe_<N>/tokens.txt            "<piece> <id>" for every piece of the model
    lang_bpe_<N>/words.txt             "<eps> 0", the words, then "#0", "<s>", "</s>"
    lang_bpe_<N>/lexicon.txt           "WORD piece1 piece2 ..."
    lang_bpe_<N>/transcript_words.txt  one training transcript per line

The sentencepiece model reserves id 0 for the transducer blank ``<blk>``, id 1
for ``<sos/eos>`` and id 2 for ``<unk>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

__all__ = [
    "BLANK",
    "SOS_EOS",
    "UNK",
    "LexiconError",
    "train_bpe_model",
    "collect_words",
    "build_lexicon",
    "write_tokens",
    "write_words",
    "write_lexicon",
    "read_symbol_table",
    "read_lexicon",
]

BLANK = "<blk>"
SOS_EOS = "<sos/eos>"
UNK = "<unk>"

PathLike = Union[str, Path]


class LexiconError(ValueError):
    """A word cannot be spelled with the BPE model's pieces (it would need <unk>)."""


def train_bpe_model(
    transcript: PathLike,
    model_path: PathLike,
    vocab_size: int,
    model_type: str = "bpe",
) -> Path:
    """Train a sentencepiece model on a text file with one sentence per line.

    The model reserves ``<blk>`` = 0, ``<sos/eos>`` = 1, ``<unk>`` = 2 and has
    no BOS/EOS pieces.  Nothing is written except ``model_path``.

    Returns:
        ``model_path`` as a :class:`Path`.
    """
    import sentencepiece as spm

    model_path = Path(model_path)
    if model_path.suffix != ".model":
        raise ValueError(f"model path must end in .model, got {model_path}")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    # The prefix is recorded inside the model: keep it fixed so that the same
    # text always gives a byte-identical model.
    prefix = model_path.with_suffix("")
    spm.SentencePieceTrainer.train(
        input=str(transcript),
        model_prefix=str(prefix),
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=1.0,
        user_defined_symbols=[BLANK, SOS_EOS],
        unk_id=2,
        bos_id=-1,
        eos_id=-1,
        input_sentence_size=100_000_000,
        num_threads=1,
        minloglevel=2,
    )
    Path(f"{prefix}.vocab").unlink(missing_ok=True)
    return model_path


def collect_words(lines: Iterable[str]) -> List[str]:
    """Sorted set of whitespace-separated words over ``lines``."""
    words = set()
    for line in lines:
        words.update(line.split())
    return sorted(words)


def build_lexicon(sp, words: Sequence[str]) -> Dict[str, List[str]]:
    """Spell each word with the sentencepiece model ``sp``.

    Raises:
        LexiconError: naming the first word whose encoding contains ``<unk>``
            (e.g. a character the model never saw) or that does not decode
            back to itself.
    """
    unk_id = sp.unk_id()
    lexicon: Dict[str, List[str]] = {}
    for word in words:
        ids = sp.encode(word)
        if not ids or unk_id in ids:
            pieces = sp.encode(word, out_type=str)
            raise LexiconError(
                f"word '{word}' cannot be tokenised without {UNK} by the BPE model "
                f"(pieces: {pieces}); retrain the model on text containing it"
            )
        if sp.decode(ids) != word:
            raise LexiconError(f"word '{word}' does not survive a BPE round trip: {sp.decode(ids)!r}")
        lexicon[word] = [sp.id_to_piece(i) for i in ids]
    return lexicon


def write_tokens(sp, path: PathLike) -> None:
    """Write every piece of ``sp`` with its id; checks the reserved ids."""
    expected = {BLANK: 0, SOS_EOS: 1, UNK: 2}
    for piece, want in expected.items():
        got = sp.piece_to_id(piece)
        if got != want or sp.id_to_piece(want) != piece:
            raise ValueError(f"BPE model must map {piece} to id {want}, but it maps it to {got}")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(sp.get_piece_size()):
            f.write(f"{sp.id_to_piece(i)} {i}\n")


def write_words(words: Sequence[str], path: PathLike) -> None:
    """Write ``<eps>`` = 0, the words from 1, then ``#0``, ``<s>``, ``</s>``."""
    specials = {"<eps>", "#0", "<s>", "</s>"}
    clash = specials.intersection(words)
    if clash:
        raise ValueError(f"reserved symbols appear as words: {sorted(clash)}")
    symbols = ["<eps>", *words, "#0", "<s>", "</s>"]
    with open(path, "w", encoding="utf-8") as f:
        for i, s in enumerate(symbols):
            f.write(f"{s} {i}\n")


def write_lexicon(lexicon: Dict[str, List[str]], path: PathLike) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for word, pieces in lexicon.items():
            f.write(f"{word} {' '.join(pieces)}\n")


def read_symbol_table(path: PathLike) -> Dict[str, int]:
    """Read a ``symbol id`` file (tokens.txt / words.txt)."""
    table: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(f"{path}:{n}: expected 'symbol id', got {line!r}")
            table[fields[0]] = int(fields[1])
    return table


def read_lexicon(path: PathLike) -> Dict[str, List[str]]:
    lexicon: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) < 2:
                raise ValueError(f"{path}:{n}: expected 'WORD piece ...', got {line!r}")
            lexicon[fields[0]] = fields[1:]
    return lexicon
