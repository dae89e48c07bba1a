"""Named model sizes: ``ModelConfig`` values a recipe starts from (``--model k=v`` still overrides).

``conformer-aio-paper``: the Conformer of the all-in-one paper (12 blocks, d_model 256,
4 heads, FFN 2048, kernel 31), about 30M encoder parameters; trains on LibriSpeech-960h /
Switchboard-300h across several GPUs.
``conformer-s``: Conformer-S of Gulati et al. (2020) (16 blocks, d_model 144, 4 heads, FFN
576, kernel 31), about 10M parameters: LibriSpeech-100h on one GPU.
``lstm-digits``: the LSTM transducer encoder for the General Quantizer on the digits
(4 unidirectional layers of 512 cells projected to 192, ``allinone.nn.lstm``), about
the size of ``conformer-digits``.
``conformer-digits``: the synthetic-digits recipe's model (6 blocks, d_model 144), trained on
CPU. Dropout 0.1 for the real corpora (what the papers' setups use); the digits model has
none (see that recipe's RESULTS.md).
"""

from typing import Any, Dict

MODEL_PRESETS: Dict[str, Dict[str, Any]] = {
    "conformer-aio-paper": dict(
        d_model=256, num_layers=12, num_heads=4, ffn_dim=2048, kernel_size=31, dropout=0.1
    ),
    "conformer-s": dict(d_model=144, num_layers=16, num_heads=4, ffn_dim=576, kernel_size=31, dropout=0.1),
    "conformer-digits": dict(
        d_model=144, num_layers=6, num_heads=4, ffn_dim=576, kernel_size=15, dropout=0.0
    ),
    "lstm-digits": dict(encoder="lstm", d_model=192, num_layers=4, lstm_hidden_size=512, dropout=0.1),
}


def model_preset(name: str) -> Dict[str, Any]:
    """A copy of preset ``name``'s values; an unknown name is an error listing the known ones."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {sorted(MODEL_PRESETS)}")
    return dict(MODEL_PRESETS[name])
