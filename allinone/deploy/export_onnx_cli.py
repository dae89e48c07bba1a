"""What a recipe's ``export-onnx.py`` does: one subnet to ONNX files, fp32 and int8, checked.

The subnet goes through the packed file first (``allinone.deploy.export``): that file's
standalone model is what every exported graph runs, so the ONNX files, the ``.aio`` file
and ``decode.py --packed-model`` all compute the same system.
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict

import torch

from allinone.checkpoint.io import CheckpointError
from allinone.checkpoint.weights import load_for_decoding
from allinone.deploy.export import export_subnet, load_packed_model
from allinone.deploy.onnx_export import export_onnx, onnx_path, takes_waveform, write_tokens
from allinone.deploy.onnx_int8 import code_rows, codebook_tensors, int8_from_codes, quantize_dynamic_int8
from allinone.deploy.onnx_runtime import OnnxCtc, OnnxTransducer, max_abs_diff, open_session
from allinone.quant.pack import PackedFileError, read_packed_file
from allinone.subnet import select_subnets
from allinone.utils.log import setup_script_logging
from allinone.utils.options import str2bool

VARIANTS = ("fp32", "int8", "int8-codes")


def _parser(description: str, defaults: Dict[str, object]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--exp-dir", type=Path, default=Path("conformer_transducer/exp"), help="the checkpoint's directory"
    )
    p.add_argument("--epoch", type=int, help="export from epoch-<epoch>.pt (or give --packed-model)")
    p.add_argument("--avg", type=int, default=1, help="number of epochs to average, ending at --epoch")
    p.add_argument("--use-averaged-model", type=str2bool, default=True,
                   help="average the running-average weights over the steps of those epochs")  # fmt: skip
    p.add_argument("--subnet", help="a subnet the checkpoint was trained with (with --epoch)")
    p.add_argument("--packed-model", type=Path, help="export this export.py file instead of a checkpoint")
    p.add_argument("--out-dir", type=Path, help="default: <exp-dir>/onnx")
    bpe_model = defaults.get("bpe_model", Path("data/lang_bpe_64/bpe.model"))
    p.add_argument(
        "--bpe-model", type=Path, default=bpe_model, help="the BPE model; tokens.txt is written from it"
    )
    p.add_argument("--int8", type=str2bool, default=True,
                   help="also write *.int8.onnx (onnxruntime dynamic quantization) and, for a subnet "
                   "with quantized weights, *.int8-codes.onnx (its own codes)")  # fmt: skip
    return p


@torch.no_grad()
def check_against_torch(
    model, run, paths: Dict[str, Path], optimization: str = "basic", seed: int = 0
) -> float:
    """Largest |ONNX - torch| over projected encoder frames and joiner logits on a random batch.

    Under "basic" graph optimisation (the default here) an ``int8-codes`` model runs its
    dequantized codes in float, so this checks that the stored codes are the subnet's.
    """
    torch.manual_seed(seed)
    x = torch.randn(2, 317, model.config.num_features)
    x_lens = torch.tensor([317, 181])
    onnx_model = OnnxTransducer(paths, optimization=optimization)
    got, got_lens = onnx_model.encode(x, x_lens)
    enc, lens = model.encoder(x, x_lens, run)
    ref = model.joiner.project_encoder(enc)
    if not torch.equal(got_lens, lens):
        raise RuntimeError(f"{paths['encoder']}: frame counts {got_lens.tolist()} != torch's {lens.tolist()}")
    diff = max_abs_diff(got.numpy(), ref.numpy(), lens.numpy())
    y = torch.full((2, model.config.context_size), model.config.blank_id)
    y[0, :-1] = -1  # an utterance's start
    y[1] = torch.arange(1, model.config.context_size + 1) % model.config.vocab_size
    dec = onnx_model.decoder(y)[:, 0]
    logits = onnx_model.joiner(got[:, 0], dec)
    want = model.joiner(
        ref[:, 0], model.joiner.project_decoder(model.decoder(y, need_pad=False)[:, 0]), project_input=False
    )
    return max(diff, float((logits - want).abs().max()))


@torch.no_grad()
def check_ctc_against_torch(model, run, path: Path, optimization: str = "basic", seed: int = 0) -> float:
    """Largest |ONNX - torch| of the CTC log-probabilities on a random batch (fbank or waveform)."""
    torch.manual_seed(seed)
    if takes_waveform(model.config):
        x, x_lens = torch.randn(2, 9000), torch.tensor([9000, 6100])
    else:
        x, x_lens = torch.randn(2, 317, model.config.num_features), torch.tensor([317, 181])
    got, got_lens = OnnxCtc(path, optimization=optimization).log_probs(x, x_lens)
    enc, lens = model.encoder(x, x_lens, run)
    if not torch.equal(got_lens, lens):
        raise RuntimeError(f"{path}: frame counts {got_lens.tolist()} != torch's {lens.tolist()}")
    return max_abs_diff(got.numpy(), model.ctc_log_probs(enc).numpy(), lens.numpy())


def export_onnx_main(description: str, defaults: Dict[str, object]) -> None:
    """Parse ``export-onnx.py``'s flags, write the files and ``<stem>-onnx.json``, print sizes and checks."""
    parser = _parser(description, defaults)
    args = parser.parse_args()
    if (args.packed_model is None) == (args.epoch is None):
        parser.error("give either --epoch (with --subnet) or --packed-model")
    if args.epoch is not None and not args.subnet:
        parser.error("--subnet is required with --epoch")
    setup_script_logging()
    try:
        _export(args)
    except (PackedFileError, CheckpointError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"export-onnx.py: {e}") from None


def _export(args: argparse.Namespace) -> None:
    if not args.bpe_model.is_file():  # checked first: tokens.txt is written last
        raise FileNotFoundError(f"{args.bpe_model}: no such BPE model (--bpe-model)")
    out_dir = args.out_dir or args.exp_dir / "onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    aio = args.packed_model
    if aio is None:
        nested, trained = load_for_decoding(args.exp_dir, args.epoch, args.avg, args.use_averaged_model)
        (subnet,) = select_subnets([args.subnet], trained)
        aio = out_dir / f"{subnet.name}.aio"
        export_subnet(nested, subnet, aio)
    model, run, meta = load_packed_model(aio)
    stem = meta["source_subnet"]
    info = {"subnet": stem, "packed_model": str(aio), "aio_bytes": Path(aio).stat().st_size}
    paths = export_onnx(model, run, out_dir, stem, metadata={"subnet": stem})
    write_tokens(args.bpe_model, model.config.vocab_size, out_dir / "tokens.txt")
    variants = {"fp32": paths}
    if args.int8:
        variants["int8"] = {
            p: quantize_dynamic_int8(f, onnx_path(out_dir, p, stem, "int8")) for p, f in paths.items()
        }
        _, records = read_packed_file(aio)
        weights = dict(model.state_dict())
        table = code_rows(records, weights, meta["granularity"])
        codebooks = codebook_tensors(records, weights)
        if table or codebooks:
            codes = {}
            for part, f in paths.items():
                info[f"codes_{part}"] = int8_from_codes(
                    f, onnx_path(out_dir, part, stem, "int8-codes"), table, codebooks
                )
                codes[part] = onnx_path(out_dir, part, stem, "int8-codes")
            variants["int8-codes"] = codes
    for variant, files in variants.items():
        for f in files.values():
            open_session(f)  # every file loads
        # dynamic int8 rounds again: its gap is measured by WER, not here
        exact = variant != "int8"
        if "encoder" in files:
            transducer = {p: files[p] for p in ("encoder", "decoder", "joiner")}
            info[f"{variant}_bytes"] = sum(f.stat().st_size for f in transducer.values())
            if exact:
                info[f"{variant}_max_abs_diff"] = check_against_torch(model, run, transducer)
        if "ctc" in files:
            info[f"{variant}_ctc_bytes"] = files["ctc"].stat().st_size
            if exact:
                info[f"{variant}_ctc_max_abs_diff"] = check_ctc_against_torch(model, run, files["ctc"])
    report = out_dir / f"{stem}-onnx.json"
    report.write_text(json.dumps(info, indent=1) + "\n")
    logging.info(json.dumps(info))
    for variant in variants:
        tail = "" if variant == "fp32" else "." + variant
        for what, key, files in (("encoder+decoder+joiner", "", "*"), ("CTC", "_ctc", "ctc")):
            if f"{variant}{key}_bytes" not in info:
                continue
            diff = info.get(f"{variant}{key}_max_abs_diff")
            check = f", max |ONNX - torch| {diff:.2e}" if diff is not None else ""
            print(
                f"{out_dir}/{files}-{stem}{tail}.onnx: {info[f'{variant}{key}_bytes']} bytes ({what}){check}"
            )
    print(f"{aio}: {info['aio_bytes']} bytes; {report}")
