#!/usr/bin/env python3
r"""Export one subnet of a trained checkpoint (or a packed .aio file) to ONNX for sherpa-onnx.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/export-onnx.py --epoch 20 --avg 1 --use-averaged-model true \
    --exp-dir conformer_transducer/exp_all_in_one --subnet d4-w0.5-b8

  # or from a packed file written by export.py
  ./conformer_transducer/export-onnx.py --packed-model conformer_transducer/exp_quant/lsq-b4/d6-w1.0-b4.aio \
    --out-dir conformer_transducer/exp_quant/lsq-b4/onnx

Writes to --out-dir (default <exp-dir>/onnx):
  encoder-<subnet>.onnx, decoder-<subnet>.onnx, joiner-<subnet>.onnx  sherpa-onnx's offline
      transducer layout: encoder x (N, T, 80), x_lens -> encoder_out, encoder_out_lens;
      decoder y (N, context_size) -> decoder_out, with vocab_size/context_size metadata;
      joiner encoder_out, decoder_out -> logit
  ctc-<subnet>.onnx          the CTC head: x, x_lens -> log_probs, log_probs_len
  *.int8.onnx                onnxruntime dynamic int8 quantization (MatMul weights)
  *.int8-codes.onnx          the subnet's own LSQ codes as int8 (no second rounding)
  tokens.txt, <subnet>.aio, <subnet>-onnx.json (sizes, max |ONNX - torch|)

The graphs compute exactly the subnet: its depth, FFN widths, BatchNorm statistics and
weights at their bit-width. Decode them with onnx_decode.py (sherpa-onnx or onnxruntime).
"""

from allinone.deploy.export_onnx_cli import export_onnx_main

EXPORT_DEFAULTS = {}

if __name__ == "__main__":
    export_onnx_main(__doc__, EXPORT_DEFAULTS)
