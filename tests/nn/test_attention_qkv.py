"""Q, K and V are three quantized tensors behind one fused matmul.

Each projection has its own scale and, in mixed precision, its own bit-width: the attention
output must equal that of three separately quantized projections. A state dict saved when
they were one fused ``in_proj`` layer still loads, as the same network.
"""

import pytest
import torch

from allinone.nn.attention import RelPositionMultiheadAttention
from allinone.quant.annealing import Annealing
from allinone.quant.layers import QLinear, configure_quantizers
from allinone.quant.quantizer import QuantConfig
from allinone.subnet import MIXED_BITS

D, H = 16, 2


def _inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 7, D, generator=g), torch.randn(1, 13, D, generator=g)


def test_projections_at_three_bit_widths_equal_three_separately_quantized_layers():
    torch.manual_seed(0)
    attn = RelPositionMultiheadAttention(D, H).eval()
    configure_quantizers(attn, QuantConfig(mixed_candidates=(2, 4, 8)))
    for proj, bits in zip(attn.qkv_projections(), (2, 4, 8)):
        proj.mp_bits.fill_(bits)
    x, pos = _inputs()
    got = attn(x, pos, bits=MIXED_BITS)

    # Reference: a float attention whose layers hold those quantized weights, Q, K and V
    # each quantized alone at 2, 4 and 8 bits (the other layers at their own chosen width).
    ref = RelPositionMultiheadAttention(D, H).eval()
    ref.load_state_dict(attn.state_dict(), strict=False)
    with torch.no_grad():
        for name in ("q_proj", "k_proj", "v_proj", "linear_pos", "out_proj"):
            getattr(ref, name).weight.copy_(getattr(attn, name).quantized_weight(MIXED_BITS))
    torch.testing.assert_close(got, ref(x, pos, bits=32), rtol=0, atol=0)
    for proj, bits in zip(attn.qkv_projections(), (2, 4, 8)):
        assert torch.unique(proj.quantized_weight(MIXED_BITS)).numel() <= 2**bits
    # ... and each projection's grid is its own: three distinct LSQ steps at 4 bits.
    steps = {float(p.steps["b4"].detach()) for p in attn.qkv_projections()}
    assert len(steps) == 3
    # the output changes when one projection's bit-width changes
    attn.v_proj.mp_bits.fill_(2)
    assert not torch.allclose(attn(x, pos, bits=MIXED_BITS), got)


@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_a_state_dict_with_a_fused_in_proj_loads_as_the_same_network(granularity):
    torch.manual_seed(1)
    cfg = QuantConfig(granularity=granularity, group_size=8)
    # The layout of older checkpoints: one (3D, D) quantized layer for Q, K and V.
    fused = QLinear(D, 3 * D)
    fused.configure_quantizer(cfg)
    attn = RelPositionMultiheadAttention(D, H).eval()
    configure_quantizers(attn, cfg)
    split = ("q_proj.", "k_proj.", "v_proj.")
    state = {k: v for k, v in attn.state_dict().items() if not k.startswith(split)}
    state.update({f"in_proj.{k}": v for k, v in fused.state_dict().items()})
    loaded = RelPositionMultiheadAttention(D, H).eval()
    configure_quantizers(loaded, cfg)
    loaded.load_state_dict(state)
    x = torch.randn(3, D)
    for bits in (32, 4, 2):
        split = torch.cat([p(x, bits, Annealing()) for p in loaded.qkv_projections()], dim=-1)
        torch.testing.assert_close(split, fused(x, bits, Annealing()), rtol=0, atol=0)
