"""A wav2vec 2.0 checkpoint in the Hub's layout fine-tuned with CTC through train.py on raw audio,
decoded, exported as a packed subnet and decoded from that file."""

import json
import subprocess
import sys

import torch
import transformers

from allinone.utils.scoring import read_recogs
from tests.e2e.conftest import PREFIX
from tests.e2e.test_all_in_one import decode_cmd, one_epoch
from tests.e2e.test_recipe import RECIPE, _env, run, train_cmd

GRID = "d2-w1.0-b32,d1-w0.5-b4"


def _pretrained_dir(path):
    """A small wav2vec 2.0 as save_pretrained writes it (what a user downloads from the Hub)."""
    torch.manual_seed(0)
    cfg = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_kernel=(10, 8), conv_stride=(5, 4), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.05, layerdrop=0.0,
        codevector_dim=16, proj_codevector_dim=16, num_codevectors_per_group=8,
    )  # fmt: skip
    transformers.Wav2Vec2ForPreTraining(cfg).save_pretrained(path)
    return path


def _ctc_decode(root, lang, exp):
    cmd = decode_cmd(root, lang, exp)
    cmd[cmd.index("--decoding-method") + 1] = "ctc-greedy-search"
    return cmd


def test_wav2vec2_fine_tunes_from_a_pretrained_dir_and_exports(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    pretrained = _pretrained_dir(tmp_path / "w2v")
    exp = tmp_path / "exp"
    flags = ["--model", "encoder=wav2vec2", "--pretrained-dir", str(pretrained), "--use-transducer", "false",
             "--use-ctc", "true", "--subnets", GRID]  # fmt: skip
    run(one_epoch(train_cmd(root, lang, exp, *flags)))
    log = next((exp / "log").glob("log-train-*")).read_text()
    assert "encoder initialised from the pretrained checkpoint" in log
    state = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert state["model_config"]["encoder"] == "wav2vec2" and state["model_config"]["d_model"] == 32
    frozen = "encoder.backbone.feature_extractor.conv_layers.0.conv.weight"
    source = transformers.Wav2Vec2Model.from_pretrained(str(pretrained)).state_dict()
    assert torch.equal(
        state["model"][frozen], source["feature_extractor.conv_layers.0.conv.weight"]
    )  # frozen
    out = run(_ctc_decode(root, lang, exp))
    assert "d1-w0.5-b4" in out.stdout
    run(
        [
            sys.executable,
            str(RECIPE / "export.py"),
            "--exp-dir",
            str(exp),
            "--epoch",
            "1",
            "--subnet",
            "d1-w0.5-b4",
        ]
    )
    packed = _ctc_decode(root, lang, exp)
    packed[packed.index("--epoch") : packed.index("--epoch") + 2] = [
        "--packed-model",
        str(exp / "d1-w0.5-b4.aio"),
    ]
    run(packed)
    res = exp / "ctc-greedy-search"
    ckpt = next(res.glob("recogs-test-*-d1-w0.5-b4-epoch-1-*.txt")).read_text()
    assert next(res.glob("recogs-test-*-d1-w0.5-b4-packed.txt")).read_text() == ckpt
    # pretrained.py reads the wav itself: the same words as decode.py from the cut's audio
    hyps = {cut: hyp for cut, _, hyp in read_recogs(next(res.glob("recogs-test-*-d1-w0.5-b4-epoch-1-*.txt")))}
    cut = sorted(hyps)[0]
    wav = root / "wav" / f"{cut.rsplit('-', 1)[0]}.wav"  # cut "test-000-0" of recording "test-000"
    cmd = [sys.executable, str(RECIPE / "pretrained.py"), "--epoch", "1", "--exp-dir", str(exp),
           "--bpe-model", str(lang / "bpe.model"), "--decoding-method", "ctc-greedy-search",
           "--subnets", "d1-w0.5-b4", str(wav)]  # fmt: skip
    line = run(cmd).stdout.strip()
    assert line.startswith(f"{wav}:") and line.split(":", 1)[1].split() == hyps[cut]

    # ONNX: a waveform-in CTC graph, decoded with onnxruntime like decode.py decodes the checkpoint
    onnx_dir = tmp_path / "onnx"
    run([sys.executable, str(RECIPE / "export-onnx.py"), "--exp-dir", str(exp), "--epoch", "1",
         "--subnet", "d1-w0.5-b4", "--bpe-model", str(lang / "bpe.model"),
         "--out-dir", str(onnx_dir)])  # fmt: skip
    assert not (onnx_dir / "encoder-d1-w0.5-b4.onnx").exists()  # CTC only: no transducer graphs
    common = [sys.executable, str(RECIPE / "onnx_decode.py"), "--onnx-dir", str(onnx_dir), "--subnet",
              "d1-w0.5-b4", "--bpe-model", str(lang / "bpe.model"), "--manifest-dir", str(root / "fbank"),
              "--cuts-prefix", PREFIX, "--test-sets", "test",
              "--decoding-method", "ctc-greedy-search"]  # fmt: skip
    run(common + ["--engine", "onnxruntime"])
    got = read_recogs(next((onnx_dir / "onnxruntime-ctc-greedy-search").glob("recogs-test-*-fp32.txt")))
    assert {c: h for c, _, h in got} == hyps
    refused = subprocess.run(common + ["--engine", "sherpa-onnx"], capture_output=True, text=True, env=_env())
    assert refused.returncode == 1 and "reads the waveform" in refused.stderr


def test_pretraining_resumes_and_writes_a_hub_dir_the_encoder_loads(tiny_corpus, tmp_path):
    from allinone.nn.ssl import SslEncoder, read_pretrained_config

    root, _ = tiny_corpus
    exp = tmp_path / "pre"
    cmd = [sys.executable, str(RECIPE.parent / "wav2vec2_ctc" / "pretrain.py"), "--exp-dir", str(exp),
           "--manifest-dir", str(root / "fbank"), "--train-cuts", "tiny_cuts_train.jsonl.gz",
           "--max-duration", "6", "--warmup-steps", "1", "--save-every-steps", "2",
           "--num-workers", "0"]  # fmt: skip
    run(cmd + ["--num-steps", "2"])
    out = run(cmd + ["--num-steps", "3"])
    assert "3 steps" in out.stdout
    log = (exp / "log").glob("log-pretrain*")
    assert any("resumed from" in p.read_text() and "at step 2" in p.read_text() for p in log)
    summary = json.loads((exp / "pretrain-summary.json").read_text())
    assert summary["steps"] == 3 and summary["final"]["contrastive_per_masked_frame"] > 0
    run(cmd + ["--num-steps", "3"])  # nothing left to do: the outputs again, with the same losses
    again = json.loads((exp / "pretrain-summary.json").read_text())
    assert again["steps"] == 3 and again["final"] == summary["final"]
    hf = read_pretrained_config("wav2vec2", exp / "hub")
    assert hf["hidden_size"] == 144 and hf["num_hidden_layers"] == 4
    SslEncoder("wav2vec2", hf, pretrained_dir=exp / "hub")  # the fine-tuning path loads it
