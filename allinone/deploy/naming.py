"""What a model's parameter names say about them: the bit-width class of a quantized weight.

Both the size accounting and the subnet export need it, so it sits below both.
"""

from allinone.subnet import HEAD_CLASS


def weight_class(name: str) -> str:
    """Bit-width class (``allinone.subnet.QUANT_CLASSES``) of a quantized weight's name.

    Args:
        name: a state-dict name such as ``encoder.layers.3.ff.linear1.weight``.
    Returns:
        "head", "subsampling", "ffn", "attn", "conv" or (LSTM encoder matrices) "rnn".
    Raises:
        ValueError: ``name`` is not a weight any subnet quantizes.
    """
    if name.startswith(("decoder.conv.", "joiner.", "ctc_output.")):
        return HEAD_CLASS
    if name.startswith("encoder.embed."):
        return "subsampling"
    for marker, cls in (
        (".lstm_", "rnn"),
        (".feed_forward.", "ffn"),  # transformers' wav2vec 2.0 / HuBERT layers
        (".attention.", "attn"),
        (".ff_macaron.", "ffn"),
        (".ff.", "ffn"),
        (".self_attn.", "attn"),
        (".conv.", "conv"),
    ):
        if marker in name:
            return cls
    raise ValueError(f"{name} is not a quantized weight")
