"""LibriSpeech's layout, faked: prepare.sh to the graphs, one training step, a decode.

The tree has the real conventions (``LibriSpeech/<part>/<speaker>/<chapter>/`` with
``<speaker>-<chapter>-<utt>.flac`` files and a ``<speaker>-<chapter>.trans.txt`` of
"<utt-id> WORDS" lines); the audio is word-specific tone bursts at 16 kHz.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet, load_manifest_lazy

from tests.e2e.conftest import WORDS, _render
from tests.recipes.helpers import REPO, copy_recipe, decode, run, train_one_step

PARTS = {
    "train-clean-100": (2, 2, 4),
    "dev-clean": (1, 1, 2),
    "test-clean": (1, 1, 2),
    "test-other": (1, 1, 2),
}


def _fake_librispeech(root: Path) -> dict:
    """Write the tree; return {utterance id: transcript}."""
    rng = np.random.default_rng(0)
    texts = {}
    for p_idx, (part, (speakers, chapters, utts)) in enumerate(PARTS.items()):
        for s in range(speakers):
            spk = str(100 * (p_idx + 1) + s)
            for c in range(chapters):
                chap = str(1000 + c)
                d = root / "LibriSpeech" / part / spk / chap
                d.mkdir(parents=True)
                lines = []
                for u in range(utts):
                    uid = f"{spk}-{chap}-{u:04d}"
                    words = list(rng.choice(WORDS, size=int(rng.integers(2, 5))))
                    sf.write(d / f"{uid}.flac", _render(words, rng), 16000, format="FLAC")
                    lines.append(f"{uid} {' '.join(words)}")
                    texts[uid] = " ".join(words)
                (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    return texts


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    work = copy_recipe(tmp_path_factory.mktemp("libri"), "librispeech")
    texts = _fake_librispeech(work / "download")
    run(["bash", "prepare.sh", "--vocab-size", "24", "--nj", "1", "--perturb-speed", "false"], work)
    return work, texts


def test_prepare_writes_manifests_with_the_transcripts_and_speakers(recipe):
    work, texts = recipe
    m = work / "data/manifests"
    sups = SupervisionSet.from_file(m / "librispeech_supervisions_train-clean-100.jsonl.gz")
    assert {s.id: s.text for s in sups} == {k: v for k, v in texts.items() if k.startswith("1")}
    assert {s.speaker for s in sups} == {"100", "101"}
    recs = RecordingSet.from_file(m / "librispeech_recordings_test-other.jsonl.gz")
    assert {r.sampling_rate for r in recs} == {16000}
    cuts = load_manifest_lazy(work / "data/fbank/librispeech_cuts_dev-clean.jsonl.gz")
    assert all(c.has_features and c.features.num_features == 80 for c in cuts)
    lang = work / "data/lang_bpe_24"
    for name in ("bpe.model", "tokens.txt", "lexicon.txt", "HLG.fst", "H.fst"):
        assert (lang / name).is_file(), name


def test_one_training_step_and_a_decode(recipe):
    work, _ = recipe
    exp = work / "conformer_transducer/exp_smoke"
    train_one_step(work, exp, "data/lang_bpe_24/bpe.model")
    assert (exp / "epoch-1.pt").is_file()
    for method in ("greedy_search", "1best"):
        decode(work, exp, "data/lang_bpe_24", method)
        for test_set in ("test-clean", "test-other"):
            for kind in ("recogs", "errs", "wer-summary"):
                assert list((exp / method).glob(f"{kind}-{test_set}-*")), (method, kind, test_set)


def test_wav2vec2_ctc_on_characters_one_step_and_a_decode(recipe, tmp_path):
    """The papers' setting: a Hub-layout wav2vec 2.0 fine-tuned with character CTC."""
    from tests.e2e.test_ssl_recipe import _pretrained_dir

    work, _ = recipe
    lang = work / "data/lang_char"
    run([sys.executable, str(REPO / "local/train_bpe.py"), "--transcript",
         "data/lang_bpe_24/transcript_words.txt", "--lang-dir", str(lang), "--vocab-size", "40",
         "--model-type", "char"], work)  # fmt: skip
    exp = work / "wav2vec2_ctc/exp_smoke"
    run([sys.executable, "wav2vec2_ctc/train.py", "--pretrained-dir", str(_pretrained_dir(tmp_path / "w2v")),
         "--bpe-model", str(lang / "bpe.model"), "--num-epochs", "1", "--max-batches-per-epoch", "1",
         "--max-duration", "20", "--num-buckets", "2", "--num-workers", "0", "--tensorboard", "false",
         "--exp-dir", str(exp)], work)  # fmt: skip
    run([sys.executable, "wav2vec2_ctc/decode.py", "--epoch", "1", "--exp-dir", str(exp),
         "--bpe-model", str(lang / "bpe.model")], work)  # fmt: skip
    for test_set in ("test-clean", "test-other"):
        assert list((exp / "ctc-greedy-search").glob(f"recogs-{test_set}-ctc-greedy-search-*.txt"))
