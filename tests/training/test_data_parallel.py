"""Two gloo processes on CPU: the gradient of one step equals one process's gradient of the whole batch.

Each rank runs its half of a global batch through ``NestedLoss`` under DDP and back-propagates
``global_frame_loss``, as the trainer does; the averaged gradient must equal the gradient one
process gets from the whole batch. The model uses layer norm in its convolution modules:
batch norm normalises by per-rank statistics (no SyncBatchNorm), which is a property of
data-parallel batch norm, not of the loss.
"""

import socket

import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.nn.subsampling import subsampled_lengths
from allinone.subnet import SubnetConfig
from allinone.training.nested import NestedLoss
from allinone.training.step_losses import global_frame_loss
from allinone.utils.dist import cleanup_dist, setup_dist

GRID = [SubnetConfig.from_name(n) for n in ("d2-w1.0-b32", "d1-w0.5-b4")]
CFG = ModelConfig(
    vocab_size=8, num_features=20, d_model=16, num_layers=2, num_heads=2, ffn_dim=24, kernel_size=3,
    decoder_dim=16, joiner_dim=16, dropout=0.0, use_ctc=True, conv_norm="layernorm",
)  # fmt: skip


def _batch():
    torch.manual_seed(1)
    features = torch.randn(4, 40, CFG.num_features)
    lens = torch.tensor([40, 40, 40, 40])
    labels = [[1, 2, 3], [4, 5], [6, 7, 1, 2], [3]]
    return features, lens, labels


def _model():
    torch.manual_seed(0)
    return build_model(CFG, GRID).train()


def _step_gradients(module, features, lens, labels, world_size):
    per_subnet = module(features, lens, labels, subnets=GRID, prune_range=3, am_scale=0.0, lm_scale=0.25)
    per_utt = sum(0.5 * v["simple"] + v["pruned"] + 0.2 * v["ctc"] for v in per_subnet.values())
    frames = subsampled_lengths(lens)
    finite = torch.ones_like(per_utt, dtype=torch.bool)
    global_frame_loss(per_utt, frames, finite, world_size).backward()


def _rank(rank, port, out_path):
    torch.set_num_threads(1)
    setup_dist(rank, 2, port)
    try:
        model = _model()
        module = DDP(NestedLoss(model), find_unused_parameters=True)
        features, lens, labels = _batch()
        half = slice(2 * rank, 2 * rank + 2)
        _step_gradients(module, features[half], lens[half], labels[half], world_size=2)
        if rank == 0:
            torch.save({n: p.grad for n, p in model.named_parameters() if p.grad is not None}, out_path)
    finally:
        cleanup_dist()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_get_the_gradient_of_the_whole_batch(tmp_path):
    model = _model()
    _step_gradients(NestedLoss(model), *_batch(), world_size=1)
    single = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    out = tmp_path / "grads.pt"
    mp.spawn(_rank, args=(_free_port(), str(out)), nprocs=2, join=True)
    parallel = torch.load(out)
    # DDP may give the parameters no subnet used (quantizer state of other bit-widths) zeros
    assert single.keys() <= parallel.keys()
    assert all(not parallel[n].any() for n in parallel.keys() - single.keys())
    for name, grad in single.items():
        torch.testing.assert_close(parallel[name], grad, rtol=1e-4, atol=1e-6, msg=name)
