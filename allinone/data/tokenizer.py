"""Sentencepiece BPE tokenizer with errors that name the offending utterance."""

from pathlib import Path
from typing import List, Sequence

import sentencepiece as spm


class TokenizationError(ValueError):
    """A transcript that cannot be turned into training labels."""


class BpeTokenizer:
    """Wraps a sentencepiece model laid out as in ``data/lang_bpe_<N>/bpe.model``.

    Args:
        model_path: path of the ``.model`` file.
    """

    def __init__(self, model_path):
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"BPE model {path} does not exist; run prepare.sh (the BPE stage) or pass --bpe-model"
            )
        self.path = path
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        self.unk_id = self.sp.unk_id()
        self.blank_id = self.sp.piece_to_id("<blk>")
        if self.sp.id_to_piece(self.blank_id) != "<blk>":
            raise ValueError(f"{path} has no <blk> piece; train it with <blk> as a user-defined symbol")

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str, utt_id: str = "?") -> List[int]:
        """Token ids of one transcript.

        Raises:
            TokenizationError: naming ``utt_id`` when the transcript is empty or contains
                words the model can only map to ``<unk>``.
        """
        if not text or not text.strip():
            raise TokenizationError(f"utterance {utt_id}: empty transcript")
        ids = self.sp.encode(text, out_type=int)
        if self.unk_id >= 0 and self.unk_id in ids:
            bad = [w for w in text.split() if self.unk_id in self.sp.encode(w, out_type=int)]
            raise TokenizationError(
                f"utterance {utt_id}: words {bad} cannot be tokenised by {self.path} (they map to <unk>)"
            )
        return ids

    def encode_batch(self, texts: Sequence[str], utt_ids: Sequence[str]) -> List[List[int]]:
        """``encode`` over a batch."""
        return [self.encode(t, u) for t, u in zip(texts, utt_ids)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a token-id sequence."""
        return self.sp.decode(list(ids))
