#!/usr/bin/env python3
"""Decode the synthetic-digits test sets with a trained Conformer transducer.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/decode.py \
    --epoch 4 \
    --avg 2 \
    --use-averaged-model true \
    --exp-dir conformer_transducer/exp \
    --decoding-method modified_beam_search \
    --beam-size 4

Writes recogs-*, errs-* and wer-summary-* per test set to <exp-dir>/<decoding-method>/
and prints a WER table.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository root

import torch  # noqa: E402

from allinone.data.datamodule import AsrDataModule, check_features_exist, load_cuts  # noqa: E402
from allinone.data.tokenizer import BpeTokenizer  # noqa: E402
from allinone.decoding.runner import DECODING_METHODS, decode_dataset, load_model_for_decoding  # noqa: E402
from allinone.training.cli import str2bool  # noqa: E402
from allinone.utils.log import setup_logger  # noqa: E402
from allinone.utils.scoring import format_wer_table, save_results  # noqa: E402

TEST_SETS = ("test-seen", "test-unseen")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epoch", type=int, required=True, help="decode epoch-<epoch>.pt")
    p.add_argument("--avg", type=int, default=1, help="number of epochs to average, ending at --epoch")
    p.add_argument(
        "--use-averaged-model",
        type=str2bool,
        default=True,
        help="average the running-average weights over the steps of those epochs",
    )
    p.add_argument("--exp-dir", type=Path, default=Path("conformer_transducer/exp"))
    p.add_argument("--bpe-model", type=Path, default=Path("data/lang_bpe_64/bpe.model"))
    p.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"))
    p.add_argument("--cuts-prefix", default="synth_digits_cuts")
    p.add_argument("--test-sets", default=",".join(TEST_SETS), help="comma-separated split names")
    p.add_argument("--decoding-method", default="modified_beam_search", choices=DECODING_METHODS)
    p.add_argument("--beam-size", type=int, default=4)
    p.add_argument("--max-duration", type=float, default=300.0)
    p.add_argument(
        "--num-threads",
        type=int,
        default=1,
        help="torch threads; 1 makes the reported real-time factor a one-core figure",
    )
    return p


def main() -> None:
    args = get_parser().parse_args()
    res_dir = args.exp_dir / args.decoding_method
    setup_logger(res_dir / "log-decode")
    torch.set_num_threads(args.num_threads)
    tokenizer = BpeTokenizer(args.bpe_model)
    model = load_model_for_decoding(args.exp_dir, args.epoch, args.avg, args.use_averaged_model)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"{args.bpe_model} has {tokenizer.vocab_size} tokens but the model was trained "
            f"with {model.config.vocab_size}"
        )
    suffix = f"epoch-{args.epoch}-avg-{args.avg}" + ("-use-averaged-model" if args.use_averaged_model else "")
    key = args.decoding_method + (
        f"_beam_{args.beam_size}" if args.decoding_method != "greedy_search" else ""
    )
    dm = AsrDataModule(max_duration=args.max_duration, num_workers=0)
    table = {}
    for test_set in args.test_sets.split(","):
        manifest = args.manifest_dir / f"{args.cuts_prefix}_{test_set}.jsonl.gz"
        cuts = load_cuts(manifest)
        check_features_exist(cuts, str(manifest))
        results, stats = decode_dataset(
            model, dm.eval_dataloader(cuts), tokenizer, args.decoding_method, args.beam_size, desc=test_set
        )
        wers = save_results(res_dir, test_set, {key: results}, suffix)
        table.setdefault(key, {})[test_set] = wers[key]
        logging.info(
            f"{test_set}: WER {wers[key]:.2f}% over {len(results)} utterances, "
            f"RTF {stats.rtf:.4f} ({args.num_threads} thread(s))"
        )
    print(format_wer_table(table))


if __name__ == "__main__":
    main()
