"""The LSTM transducer through the recipe: float training, GQ with 1-bit matrices, packed files."""

import json
import sys

import torch

from tests.e2e.test_all_in_one import decode_cmd, one_epoch
from tests.e2e.test_compression_recipe import _compress, _export_and_decode
from tests.e2e.test_recipe import RECIPE, run, train_cmd

# the tiny LSTM: the lstm-digits preset shrunk (TINY_MODEL's Conformer keys are ignored)
LSTM = ["--model-preset", "lstm-digits", "--model", "d_model=32", "lstm_hidden_size=48", "num_layers=2"]


def test_lstm_float_then_gq_with_one_bit_matrices_packed_and_decoded(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    float_dir = tmp_path / "float"
    run(one_epoch(train_cmd(root, lang, float_dir, *LSTM)))
    state = torch.load(float_dir / "epoch-1.pt", weights_only=False)
    assert state["model_config"]["encoder"] == "lstm" and state["model_config"]["d_model"] == 32
    run(decode_cmd(root, lang, float_dir))

    # a mixed allocation: the first layer's matrices at 1 bit, the second's at 4, front-end 8
    names = [f"encoder.layers.{i}.{m}" for i in range(2) for m in ("lstm_ih", "lstm_hh", "lstm_proj")]
    layers = {n: 1 if ".layers.0." in n else 4 for n in names}
    layers.update({f"encoder.embed.{m}": 8 for m in ("conv1", "conv2", "out")})
    bit_map = tmp_path / "bit-map.json"
    bit_map.write_text(json.dumps({"average_bits": 0, "layers": layers}))
    gq = tmp_path / "gq-mix"
    _compress(root, lang, gq, float_dir / "epoch-1.pt", *LSTM, "quantizer=gq", "mp_candidates=1,2,4,8",
              "--subnets", "d2-w1.0-bmix", "--bit-map", str(bit_map), "--gq-anneal-batches", "2")  # fmt: skip
    run(decode_cmd(root, lang, gq))
    info = _export_and_decode(root, lang, gq, "d2-w1.0-bmix")
    assert info["bit_map"] == layers
    res = gq / "greedy_search"
    ckpt_recogs = next(res.glob("recogs-test-*-d2-w1.0-bmix-epoch-1-*.txt")).read_text()
    assert next(res.glob("recogs-test-*-d2-w1.0-bmix-packed.txt")).read_text() == ckpt_recogs
    model = torch.load(gq / "epoch-1.pt", weights_only=False)["model"]
    assert int(model["encoder.layers.0.lstm_hh.mp_bits"]) == 1

    # int8 post-training quantization of the float LSTM: the QAT rows' reference point
    ptq = tmp_path / "ptq"
    run([sys.executable, str(RECIPE / "quantize_ptq.py"), "--float-checkpoint", str(float_dir / "epoch-1.pt"),
         "--exp-dir", str(ptq)])  # fmt: skip
    assert _export_and_decode(root, lang, ptq, "d2-w1.0-b8")["average_bits"] == 8.0
