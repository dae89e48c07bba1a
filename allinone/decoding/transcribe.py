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
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np
import torch

from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.ctc_search import CTC_METHODS, CtcSearcher, LangDirError
from allinone.decoding.onnx_recipe import recognize_onnx
from allinone.decoding.recipe import (
    LoadedModel,
    ModelSourceOptions,
    SearchOptions,
    build_ctc_searcher,
    check_vocabulary,
    load_model,
)
from allinone.decoding.runner import recognize
from allinone.deploy.onnx_runtime import OnnxCtc, OnnxModelError, OnnxTransducer, parts_for
from allinone.nn.ssl import SSL_KINDS
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
    onnx_dir: Optional[Path] = option(
        None, "transcribe with export-onnx.py's files in this directory (onnxruntime) instead of a checkpoint"
    )
    onnx_subnet: str = option(
        "", "with --onnx-dir: the exported subnet (the <subnet> of encoder-<subnet>.onnx)"
    )
    onnx_variant: str = option(
        "fp32", "with --onnx-dir: fp32, int8 or int8-codes", ("fp32", "int8", "int8-codes")
    )

    def check(self) -> None:
        if self.onnx_dir is None:
            ModelSourceOptions.check(self)
        elif not self.onnx_subnet:
            raise ValueError("--onnx-dir needs --onnx-subnet (the name in encoder-<subnet>.onnx)")
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


Recognizer = Callable[[torch.Tensor, torch.Tensor], List[List[str]]]


def torch_recognizers(loaded: LoadedModel, tokenizer: BpeTokenizer, options: TranscribeOptions):
    """(name, recognizer) per subnet of a loaded checkpoint or packed file: features -> words."""
    # Built first, so that a missing or mismatched lang dir fails before any file is read.
    ctc_searcher = build_ctc_searcher(options, loaded.model, tokenizer)

    def of(subnet):
        return lambda x, x_lens: recognize(
            loaded.model, x, x_lens, tokenizer, options.decoding_method, options.beam_size, subnet,
            ctc_searcher, options.blank_penalty,
        )  # fmt: skip

    return [(subnet.name, of(subnet)) for subnet in loaded.subnets]


def onnx_recognizer(tokenizer: BpeTokenizer, options: TranscribeOptions) -> Tuple[Recognizer, int, bool]:
    """Features -> words with export-onnx.py's files, through onnxruntime and our searches.

    Returns:
        (the recognizer, the feature dimension the encoder reads, whether it reads samples).
    """
    ctc = options.decoding_method in CTC_METHODS
    paths = parts_for(options.onnx_dir, options.onnx_subnet, options.onnx_variant, ctc=ctc)
    if ctc:
        model = OnnxCtc(paths["ctc"], options.num_threads)
        searcher = CtcSearcher(
            options.decoding_method, tokenizer, tokenizer.vocab_size, options.lang_dir, options.search_beam,
            options.max_active, options.ngram_lm_scale, model.blank_id, options.ctc_backend,
        )  # fmt: skip
        return (
            (lambda x, x_lens: searcher(*model.log_probs(x, x_lens))),
            model.feature_dim,
            model.takes_waveform,
        )
    model = OnnxTransducer(paths, options.num_threads)

    def run(x, x_lens):
        hyps = recognize_onnx(
            model, x, x_lens, options.decoding_method, options.beam_size, options.blank_penalty
        )
        return [tokenizer.decode(h).split() for h in hyps]

    return run, model.feature_dim, False


def transcribe_files(
    recognizers: Sequence[Tuple[str, Recognizer]],
    files: Sequence[Path],
    options: TranscribeOptions,
    num_features: int = 80,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    raw_audio: bool = False,
) -> int:
    """Print ``FILE: words`` for every readable file and recognizer (``FILE [subnet]: words``
    when there are several), and a line naming each unreadable file on ``err``.

    Args:
        recognizers: (subnet name, features (N, T, F) and lengths (N,) -> N word lists).
        raw_audio: hand the recognizers the samples ((N, S, 1), lengths in samples) instead of
            fbank, for encoders that read the waveform (wav2vec 2.0 / HuBERT).
    Returns:
        the number of files that could not be read.
    """
    features: Dict[Path, torch.Tensor] = {}
    failed = 0
    for path in files:
        try:
            samples = read_audio(path, options.sample_rate)
        except AudioReadError as e:
            print(f"pretrained.py: {e}", file=err)
            failed += 1
            continue
        if raw_audio:
            features[path] = torch.from_numpy(samples)[:, None]
        else:
            features[path] = fbank_features(samples, options.sample_rate, num_features)
    readable = list(features)
    for name, recognize_batch in recognizers:
        tag = f" [{name}]" if len(recognizers) > 1 else ""
        for batch in _batches(readable, options.batch_size):
            x, x_lens = _pad([features[p] for p in batch])
            words = recognize_batch(x, x_lens)
            for path, hyp in zip(batch, words):
                print(f"{path}{tag}: {' '.join(hyp)}", file=out, flush=True)
    return failed


def _recognizers(options: TranscribeOptions):
    """(recognizers, feature dimension, whether they read samples) of the model the flags name."""
    tokenizer = BpeTokenizer(options.bpe_model)
    if options.onnx_dir is not None:
        recognizer, num_features, raw_audio = onnx_recognizer(tokenizer, options)
        return [(options.onnx_subnet, recognizer)], num_features, raw_audio
    loaded = load_model(options)
    loaded.model.to(resolve_device(options.device))
    check_vocabulary(loaded.model, tokenizer, options.bpe_model)
    recognizers = torch_recognizers(loaded, tokenizer, options)
    return recognizers, loaded.model.config.num_features, loaded.model.config.encoder in SSL_KINDS


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
    try:
        recognizers, num_features, raw_audio = _recognizers(options)
    except (OnnxModelError, LangDirError) as e:  # a damaged model file or a wrong lang dir: one line
        raise SystemExit(f"pretrained.py: {e}") from None
    if transcribe_files(recognizers, args.sound_files, options, num_features, raw_audio=raw_audio):
        sys.exit(1)
