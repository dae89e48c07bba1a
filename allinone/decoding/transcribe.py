"""What ``pretrained.py`` does: transcribe audio files with any subnet of a trained model.

Each file is read with lhotse's audio backends (wav, flac, mp3, ... at any sample rate),
its channels averaged, resampled to the rate the model's features were computed at, and
turned into the same 80-dim fbank as training (lhotse's ``Fbank``). The files are decoded
in batches with any subnet and any search method of ``decode.py``. A file that cannot be
read is reported by name and skipped; the others are still transcribed.
"""

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, TextIO, Tuple

import numpy as np
import torch

from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.recipe import (
    LoadedModel,
    ModelSourceOptions,
    SearchOptions,
    build_ctc_searcher,
    check_vocabulary,
    load_model,
)
from allinone.decoding.runner import recognize
from allinone.utils.device import resolve_device
from allinone.utils.options import add_dataclass_arguments, dataclass_from_args, option

__all__ = ["AudioReadError", "TranscribeOptions", "read_audio", "fbank_features", "transcribe_main"]


class AudioReadError(ValueError):
    """An audio file that cannot be read, with the file named in the message."""


@dataclass
class TranscribeOptions(SearchOptions, ModelSourceOptions):
    """The settings of ``pretrained.py``; each field is a flag. ``subnets`` as in ``decode.py``."""

    sample_rate: int = option(16000, "sample rate the model's features were computed at (audio is resampled)")
    batch_size: int = option(8, "files decoded together")

    def check(self) -> None:
        ModelSourceOptions.check(self)
        SearchOptions.check(self)
        if self.batch_size < 1:
            raise ValueError("--batch-size must be >= 1")


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """The samples of ``path``, channels averaged, at ``sample_rate``.

    Returns:
        (T,) float32.
    Raises:
        AudioReadError: naming the file, when it is missing, empty or not audio any backend reads.
    """
    from lhotse import Recording

    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    try:
        recording = Recording.from_file(path)
        if recording.sampling_rate != sample_rate:
            recording = recording.resample(sample_rate)
        audio = recording.load_audio()  # (channels, T)
    # lhotse tries several backends whose failures have no common type; whatever they
    # raise, the user needs the file's name and the reason.
    except Exception as e:  # noqa: BLE001
        raise AudioReadError(f"{path}: cannot read audio ({type(e).__name__}: {e})") from None
    if audio.size == 0:
        raise AudioReadError(f"{path}: no samples")
    return audio.mean(axis=0).astype(np.float32)


def fbank_features(samples: np.ndarray, sample_rate: int, num_mel_bins: int = 80) -> torch.Tensor:
    """The training features of ``samples`` (T,): lhotse's ``Fbank`` -> (frames, num_mel_bins)."""
    from lhotse import Fbank, FbankConfig

    feats = Fbank(FbankConfig(num_mel_bins=num_mel_bins)).extract(samples, sample_rate)
    return torch.from_numpy(np.asarray(feats, dtype=np.float32))


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pad(features: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([f.size(0) for f in features])
    out = torch.zeros(len(features), int(lens.max()), features[0].size(1))
    for i, f in enumerate(features):
        out[i, : f.size(0)] = f
    return out, lens


def transcribe_files(
    loaded: LoadedModel,
    files: Sequence[Path],
    tokenizer: BpeTokenizer,
    options: TranscribeOptions,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Print ``FILE: words`` for every readable file and subnet (``FILE [subnet]: words`` when
    several subnets are decoded), and a line naming each unreadable file on ``err``.

    Returns:
        the number of files that could not be read.
    """
    # Built first, so that a missing or mismatched lang dir fails before any file is read.
    ctc_searcher = build_ctc_searcher(options, loaded.model, tokenizer)
    features: Dict[Path, torch.Tensor] = {}
    failed = 0
    for path in files:
        try:
            samples = read_audio(path, options.sample_rate)
        except AudioReadError as e:
            print(f"pretrained.py: {e}", file=err)
            failed += 1
            continue
        features[path] = fbank_features(samples, options.sample_rate, loaded.model.config.num_features)
    readable = list(features)
    for subnet in loaded.subnets:
        tag = f" [{subnet.name}]" if len(loaded.subnets) > 1 else ""
        for batch in _batches(readable, options.batch_size):
            x, x_lens = _pad([features[p] for p in batch])
            words = recognize(
                loaded.model, x, x_lens, tokenizer, options.decoding_method, options.beam_size, subnet,
                ctc_searcher, options.blank_penalty,
            )  # fmt: skip
            for path, hyp in zip(batch, words):
                print(f"{path}{tag}: {' '.join(hyp)}", file=out, flush=True)
    return failed


def transcribe_main(defaults: Dict[str, object], description: str) -> None:
    """The whole ``pretrained.py`` of a recipe: flags, model, transcription; exits 1 when a file
    could not be read (after transcribing the others)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sound_files", type=Path, nargs="+", help="audio files to transcribe")
    add_dataclass_arguments(parser, TranscribeOptions, defaults)
    args = parser.parse_args()
    try:
        options = dataclass_from_args(TranscribeOptions, args)
        options.check()
    except ValueError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    torch.set_num_threads(options.num_threads)
    tokenizer = BpeTokenizer(options.bpe_model)
    loaded = load_model(options)
    loaded.model.to(resolve_device(options.device))
    check_vocabulary(loaded.model, tokenizer, options.bpe_model)
    if transcribe_files(loaded, args.sound_files, tokenizer, options):
        sys.exit(1)
