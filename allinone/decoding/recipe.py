"""What ``decode.py`` does: decode test sets with every chosen subnet and write the results.

:func:`decode_recipe` loads a checkpoint (averaged, as ``--epoch --avg --use-averaged-model``
say) or a packed model file, optionally recomputes each subnet's BatchNorm statistics,
decodes each test set with each subnet, and writes the icefall-style result files
(:mod:`allinone.decoding.result_files`) and the per-subnet summary
(:mod:`allinone.decoding.subnet_report`).
"""

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import torch

from allinone.checkpoint.weights import load_for_decoding
from allinone.data.datamodule import AsrDataModule, load_split, shuffled_batches
from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.ctc_search import CTC_BACKENDS, CTC_METHODS, CtcSearcher
from allinone.decoding.result_files import (
    decoding_key,
    result_dir,
    result_suffix,
    save_results,
    subnet_suffix,
    summary_tag,
)
from allinone.decoding.runner import DECODING_METHODS, decode_dataset
from allinone.decoding.subnet_report import SubnetRow, subnet_row, write_subnet_summary
from allinone.deploy.export import load_packed_model, resident_weight_bytes
from allinone.nn.bn_calibration import calibrate_batchnorm
from allinone.nn.model import Transducer
from allinone.nn.ssl import SSL_KINDS
from allinone.subnet import SubnetConfig, select_subnets
from allinone.utils.device import DEVICES, resolve_device
from allinone.utils.log import setup_logger
from allinone.utils.memory import peak_rss_mb
from allinone.utils.options import add_dataclass_arguments, dataclass_from_args, option
from allinone.utils.text_norm import SCHEMES, normalize_results

TEST_SETS = ("test-seen", "test-unseen")

CalibrationBatches = List[Tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ModelSourceOptions:
    """Which weights to decode: a checkpoint's (averaged) or a packed file's, and which subnets."""

    epoch: Optional[int] = option(None, "decode epoch-<epoch>.pt (required without --packed-model)")
    avg: int = option(1, "number of epochs to average, ending at --epoch")
    use_averaged_model: bool = option(
        True, "average the running-average weights over the steps of those epochs"
    )
    exp_dir: Path = option(Path("conformer_transducer/exp"), "experiment directory; results go below it")
    packed_model: Optional[Path] = option(
        None, "decode this export.py file instead of a checkpoint (--epoch/--avg/--subnets unused)"
    )
    subnets: Tuple[str, ...] = option(
        ("all",), "'all' (every subnet the checkpoint was trained with) or comma-separated names"
    )
    keep_codes: bool = option(
        False,
        "with --packed-model: hold the quantized weights as the file's packed codes in memory and "
        "dequantize each at its use (a smaller resident model for a dequantization per forward; "
        "decode.py's results carry the suffix packed-codes)",
    )
    bpe_model: Path = option(Path("data/lang_bpe_64/bpe.model"), "sentencepiece model of the lang dir")

    def check(self) -> None:
        if self.epoch is None and self.packed_model is None:
            raise ValueError("--epoch is required (or give --packed-model)")
        if self.keep_codes and self.packed_model is None:
            raise ValueError("--keep-codes needs --packed-model")


@dataclass
class SearchOptions:
    """How to search: the method and its settings, where the network runs."""

    decoding_method: str = option("modified_beam_search", "search method", choices=DECODING_METHODS)
    beam_size: int = option(4, "modified_beam_search: hypotheses kept")
    blank_penalty: float = option(
        0.0,
        "transducer methods: subtracted from the blank logit (> 0 trades deletions for insertions); "
        "a non-zero value ends the result files' suffix (-blank-penalty-P)",
    )
    lang_dir: Path = option(Path("data/lang_bpe_64"), "graphs for CTC methods")
    search_beam: float = option(20.0, "graph search beam (CTC methods)")
    max_active: int = option(7000, "graph search: most active states per frame")
    ngram_lm_scale: float = option(1.0, "1best: weight of the n-gram LM")
    ctc_backend: str = option(
        "auto",
        "graph search: kaldi (kaldifst + kaldi-decoder), k2, or auto (k2 when it imports)",
        choices=CTC_BACKENDS,
    )
    num_threads: int = option(1, "torch threads; 1 makes the reported real-time factor a one-core figure")
    device: str = option(
        "cpu",
        "where the network runs: cpu, cuda or auto (graph search runs on the CPU either way, as "
        "kaldi-decoder does); the real-time factor is of that device",
        choices=DEVICES,
    )

    def check(self) -> None:
        if self.blank_penalty and self.decoding_method in CTC_METHODS:
            raise ValueError(f"--blank-penalty applies to transducer search, not to {self.decoding_method}")


@dataclass
class DecodeOptions(SearchOptions, ModelSourceOptions):
    """The settings of one decoding run; each field is a ``decode.py`` flag with its help.

    ``test_sets`` and ``subnets`` are comma-separated on the command line;
    ``subnets=("all",)`` is every subnet the checkpoint was trained with.
    """

    manifest_dir: Path = option(Path("data/fbank"), "directory of the cut manifests with features")
    cuts_prefix: str = option("synth_digits_cuts", "manifests are <cuts-prefix>_<split>.jsonl.gz")
    test_sets: Tuple[str, ...] = option(TEST_SETS, "comma-separated split names")
    max_duration: float = option(300.0, "seconds of audio per decoding batch")
    bn_calibration_batches: int = option(
        0,
        "recompute each subnet's BatchNorm statistics on this many clean training batches before "
        "decoding it (allinone.nn.bn_calibration; 0 = keep the checkpoint's); results go to "
        "<exp-dir>/<decoding-method>-bn-calibrated/",
    )
    bn_calibration_max_duration: float = option(60.0, "seconds per calibration batch")
    bn_calibration_seed: int = option(0, "shuffle of the calibration batches")
    score_normalization: str = option(
        "none",
        "text normalisation of references and hypotheses before scoring and in the result files "
        "(allinone.utils.text_norm; swbd: Switchboard/eval2000 rules)",
        choices=SCHEMES,
    )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DecodeOptions":
        """The options of parsed ``decode.py`` flags, checked (:meth:`check`)."""
        options = dataclass_from_args(cls, args)
        options.check()
        return options

    def check(self) -> None:
        """Raise ValueError, in terms of the flags, for settings that do not go together."""
        ModelSourceOptions.check(self)
        SearchOptions.check(self)
        if self.bn_calibration_batches < 0:
            raise ValueError("--bn-calibration-batches must be >= 0")
        if self.bn_calibration_batches and self.packed_model:
            raise ValueError(
                "--bn-calibration-batches recomputes a checkpoint's statistics, not a packed file's"
            )

    @property
    def key(self) -> str:
        """The decoding setting in the result file names (:func:`decoding_key`)."""
        return decoding_key(self.decoding_method, self.beam_size, self.search_beam, self.ngram_lm_scale)

    @property
    def suffix(self) -> str:
        """Which weights were decoded, in the result file names (:func:`result_suffix`)."""
        epoch = None if self.packed_model else self.epoch
        return result_suffix(epoch, self.avg, self.use_averaged_model, self.blank_penalty, self.keep_codes)

    @property
    def res_dir(self) -> Path:
        return result_dir(self.exp_dir, self.decoding_method, self.bn_calibration_batches > 0)


@dataclass
class LoadedModel:
    """The model to decode and what the summary says of it.

    Args:
        model: in eval mode.
        subnets: the subnets to decode.
        grid: subnet names in summary order (the checkpoint's training grid).
        packed: a packed file's meta (``load_packed_model``); None for a checkpoint.
    """

    model: Transducer
    subnets: List[SubnetConfig]
    grid: List[str]
    packed: Optional[Dict] = None


def decode_recipe(options: DecodeOptions) -> List[SubnetRow]:
    """Decode ``options.test_sets`` with each chosen subnet and write the result files.

    Writes ``recogs-*``, ``errs-*``, ``wer-summary-*`` per test set and subnet and the
    ``subnet-summary-*.md/.json`` of the run to ``options.res_dir``.

    Returns:
        one summary row per subnet decoded.
    """
    options.check()
    res_dir = options.res_dir
    setup_logger(res_dir / "log-decode")
    torch.set_num_threads(options.num_threads)
    tokenizer = BpeTokenizer(options.bpe_model)
    loaded = load_model(options)
    loaded.model.to(resolve_device(options.device))
    check_vocabulary(loaded.model, tokenizer, options.bpe_model)
    ctc_searcher = build_ctc_searcher(options, loaded.model, tokenizer)
    raw_audio = loaded.model.config.encoder in SSL_KINDS
    dm = AsrDataModule(max_duration=options.max_duration, num_workers=0, raw_audio=raw_audio)
    test_cuts = {
        name: load_split(options.manifest_dir, options.cuts_prefix, name) for name in options.test_sets
    }
    calibration = calibration_batches(options)
    rows = []
    for subnet in loaded.subnets:
        if calibration:
            info = calibrate_batchnorm(loaded.model, subnet, calibration)
            logging.info(f"{subnet.name}: BatchNorm statistics recomputed on {info['batches']} batches")
        row = size_row(loaded, subnet, options)
        for test_set, cuts in test_cuts.items():
            loader = dm.eval_dataloader(cuts)
            decode_test_set(loaded.model, subnet, row, test_set, loader, tokenizer, ctc_searcher, options)
        row.weights_mb = resident_weight_bytes(loaded.model) / 1e6
        try:
            row.peak_rss_mb = peak_rss_mb()
        except (OSError, RuntimeError):  # no /proc (not Linux): not measured
            pass
        rows.append(row)
    write_subnet_summary(res_dir, summary_tag(options.key, options.suffix), rows, order=loaded.grid)
    return rows


def load_model(options: ModelSourceOptions) -> LoadedModel:
    """The packed file ``options.packed_model`` or the averaged checkpoint weights."""
    if options.packed_model:
        model, run, packed = load_packed_model(options.packed_model, keep_codes=options.keep_codes)
        return LoadedModel(model, [run], [run.name], packed)
    model, trained = load_for_decoding(
        options.exp_dir, options.epoch, options.avg, options.use_averaged_model
    )
    return LoadedModel(model, select_subnets(options.subnets, trained), [s.name for s in trained])


def check_vocabulary(model: Transducer, tokenizer: BpeTokenizer, bpe_model: Path) -> None:
    """Raise ValueError unless the BPE model has the model's vocabulary size."""
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"{bpe_model} has {tokenizer.vocab_size} tokens but the model was trained "
            f"with {model.config.vocab_size}"
        )


def build_ctc_searcher(
    options: SearchOptions, model: Transducer, tokenizer: BpeTokenizer
) -> Optional[CtcSearcher]:
    """The searcher of a CTC decoding method (None for transducer methods).

    Built before any decoding, so that a missing or mismatched lang dir fails at once.
    """
    if options.decoding_method not in CTC_METHODS:
        return None
    if not model.config.use_ctc:
        raise ValueError(
            f"--decoding-method {options.decoding_method} needs a CTC head: the model was trained "
            "without --use-ctc true"
        )
    return CtcSearcher(
        options.decoding_method,
        tokenizer,
        model.config.vocab_size,
        options.lang_dir,
        options.search_beam,
        options.max_active,
        options.ngram_lm_scale,
        model.config.blank_id,
        options.ctc_backend,
    )


def calibration_batches(options: DecodeOptions) -> CalibrationBatches:
    """The clean training batches to recompute BatchNorm statistics on (empty when not asked).

    Read once, the same for every subnet and model, so calibrated systems stay comparable.
    """
    if not options.bn_calibration_batches:
        return []
    train_cuts = load_split(options.manifest_dir, options.cuts_prefix, "train")
    batches = list(
        shuffled_batches(
            train_cuts,
            options.bn_calibration_max_duration,
            options.bn_calibration_batches,
            options.bn_calibration_seed,
        )
    )
    if not batches:
        raise ValueError(
            f"the {options.cuts_prefix}_train cuts in {options.manifest_dir} give no training batch of "
            f"{options.bn_calibration_max_duration:g} s to recompute BatchNorm statistics on: lower "
            "--bn-calibration-max-duration"
        )
    return batches


def size_row(loaded: LoadedModel, subnet: SubnetConfig, options: DecodeOptions) -> SubnetRow:
    """The summary row of ``subnet`` with its size columns; WER and RTF are added per test set.

    A packed file's row is what the file holds: its own size, named after the subnet it
    came from.
    """
    if loaded.packed is None:
        row = subnet_row(loaded.model, subnet)
    else:
        size = options.packed_model.stat().st_size
        ratio = loaded.packed["float_model_bytes"] / size
        row = SubnetRow(loaded.packed["source_subnet"], loaded.packed["params"], size, ratio)
    row.threads = options.num_threads
    return row


def decode_test_set(
    model: Transducer,
    subnet: SubnetConfig,
    row: SubnetRow,
    test_set: str,
    loader: Iterable,
    tokenizer: BpeTokenizer,
    ctc_searcher: Optional[CtcSearcher],
    options: DecodeOptions,
) -> None:
    """Decode one test set with ``subnet``, write its result files and add it to ``row``."""
    results, stats = decode_dataset(
        model,
        loader,
        tokenizer,
        options.decoding_method,
        options.beam_size,
        subnet=subnet,
        desc=f"{row.subnet} {test_set}",
        ctc_searcher=ctc_searcher,
        blank_penalty=options.blank_penalty,
    )
    key = options.key
    results = normalize_results(results, options.score_normalization)
    wers = save_results(options.res_dir, test_set, {key: results}, subnet_suffix(row.subnet, options.suffix))
    row.add_test_set(test_set, wers[key], stats.decode_seconds, stats.audio_seconds)
    logging.info(f"{row.subnet} {test_set}: WER {wers[key]:.2f}% over {len(results)} utterances")


def decode_parser(defaults: Dict[str, object], description: str = "") -> argparse.ArgumentParser:
    """``decode.py``'s flags: one per ``DecodeOptions`` field, ``defaults`` (by field name) replacing its."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataclass_arguments(parser, DecodeOptions, defaults)
    return parser


def decode_main(defaults: Dict[str, object], description: str) -> None:
    """The whole ``decode.py`` of a recipe: its flags (``defaults`` by field name, e.g. the
    corpus's manifest prefix and test sets), the decoding, and the summary table on stdout."""
    from allinone.decoding.subnet_report import format_subnet_table

    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataclass_arguments(parser, DecodeOptions, defaults)
    try:
        options = DecodeOptions.from_args(parser.parse_args())
    except ValueError as e:
        parser.error(str(e))
    print(format_subnet_table(decode_recipe(options)))
