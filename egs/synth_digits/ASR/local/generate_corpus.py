#!/usr/bin/env python3
"""Generate the synthetic connected-digits corpus and its lhotse manifests.

Every utterance is a string of 1-7 words over ZERO..NINE and OH, spoken by one
of many text-to-speech voices and then degraded:

* voices: espeak-ng English accents x voice variants (mostly the formant
  "klatt" variants), flite voices and festival diphone voices (festival runs
  once per batch of utterances with a generated Scheme script);
* TTS-level variation: speaking rate / duration stretch, espeak pitch and
  inter-word gap, optional commas that add phrase breaks;
* signal-level augmentation (sox, then numpy): speed 0.85-1.15, pitch shift,
  reverberation for ~30 % of utterances, random leading/trailing silence and
  additive white / pink / brown / babble-like noise mixed at an exact SNR of
  10-30 dB, then (the channel splits) a transmission channel
  (``allinone.data.channel``: a telephone line at 8 kHz with mu-law, or a
  microphone's frequency response), then a random output level.

Splits:

* ``train``: the training voices; with ``--train-variety true`` also 42 more
  espeak-ng variants (``ESPEAK_TRAIN_EXTRA``), a quarter of the utterances a
  single word, 25 % through a telephone line and 35 % through a microphone
  colouring;
* ``dev``: the training voices as in ``test-seen`` (validation loss);
* ``test-seen``: training voices, digit strings that never occur in train;
* ``test-unseen``: voices that never occur in train or dev (held-out espeak
  accents and variants, one flite voice, one festival voice);
* ``dev-unseen``: other held-out espeak variants (``ESPEAK_DEV_UNSEEN``, in no
  other split) with the training accents, 40 % telephone and 30 % microphone:
  where recipe choices are measured, so that no reported test set is tuned on;
* ``test-unseen-8k``: ``test-unseen``'s voices, every utterance through a
  telephone line (telephone band, 8 kHz, upsampled back to 16 kHz).

Channels come from a second random stream of the utterance, so the four
original splits are drawn exactly as before the channel splits existed;
``test-seen`` keeps its strings out of train's, so ``--train-variety`` redraws
some of its utterances.

All randomness of utterance ``i`` of split ``s`` comes from a generator seeded
with ``(seed, s, i)``, so the corpus does not depend on the number of worker
processes and the same seed always yields identical audio and manifests.
Audio is 16 kHz mono 16-bit WAV under ``<out-dir>/<split>/``; an existing WAV
is never rewritten.  Manifests: ``<manifest-dir>/synth_digits_{recordings,
supervisions}_<split>.jsonl.gz``; supervision id = recording id, speaker =
voice name, text = upper-case transcript, and ``custom`` holds the voice and
all augmentation parameters.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from allinone.data.channel import apply_channel, draw_channel

SAMPLE_RATE = 16000
WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "OH")
# new splits go at the end: a split's code seeds its utterances' random generators
SPLITS = ("train", "dev", "test-seen", "test-unseen", "dev-unseen", "test-unseen-8k")
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}
MIN_WORDS, MAX_WORDS = 1, 7
PREFIX = "synth_digits"
# Bump when the generation recipe changes so stale audio is not silently reused.
GENERATOR_VERSION = 2

REQUIRED_TOOLS = ("espeak-ng", "flite", "festival", "sox")
APT_INSTALL = "apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox"

# --------------------------------------------------------------------------- voices

ESPEAK_SEEN_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan")
ESPEAK_UNSEEN_ACCENTS = ("en-029", "en-us-nyc", "en-gb-x-gbcwmd")
# The klatt variants use espeak's Klatt formant synthesiser and sound far more
# natural than the default voice; they get 3x the sampling weight of the others.
ESPEAK_SEEN_VARIANTS = ("klatt", "klatt2", "klatt3", "klatt5", "klatt6", "m3", "f2", "f4")
ESPEAK_UNSEEN_VARIANTS = ("klatt4", "m7", "f5")
# More variety of the training voices: espeak-ng's other human-sounding variants (no
# robots, whispers or effects), with the training accents, in train only.
ESPEAK_TRAIN_EXTRA = (
    "m1", "m2", "m4", "m5", "m6", "m8", "f1", "f3", "adam", "Alex", "Alicia", "Andy", "Annie",
    "announcer", "aunty", "belinda", "benjamin", "david", "ed", "edward", "Gene", "grandma",
    "grandpa", "iven", "Jacky", "john", "Lee", "linda", "max", "Michael", "michel", "Mike",
    "norbert", "paul", "quincy", "rob", "robert", "shelby", "steph", "travis", "victor", "zac",
)  # fmt: skip
# Held out for recipe choices (dev-unseen), with the training accents.
ESPEAK_DEV_UNSEEN = ("Andrea", "Denis", "edward2", "iven2", "steph2", "Gene2", "caleb", "anika")
FLITE_SEEN = ("kal16", "awb", "slt")
FLITE_UNSEEN = ("rms",)
FESTIVAL_SEEN = ("kal_diphone",)
FESTIVAL_UNSEEN = ("ked_diphone",)

ENGINE_ORDER = ("espeak-ng", "flite", "festival")
ENGINE_WEIGHTS = {"espeak-ng": 0.6, "flite": 0.25, "festival": 0.15}


@dataclass(frozen=True)
class Voice:
    engine: str  # one of ENGINE_ORDER
    name: str  # engine-level voice: "en-us+klatt3", "kal16", "kal_diphone"
    weight: float = 1.0

    @property
    def speaker(self) -> str:
        return f"{self.engine}_{self.name}"


def _espeak_voice(accent: str, variant: str) -> Voice:
    return Voice("espeak-ng", f"{accent}+{variant}", 3.0 if variant.startswith("klatt") else 1.0)


def extra_voice_pools() -> Tuple[List[Voice], List[Voice]]:
    """(train-only extra voices, dev-unseen voices): variants with the training accents.
    The extra voices weigh half an original non-klatt voice each, so that together they
    add variety without crowding out the more natural klatt voices."""
    extra = [Voice("espeak-ng", f"{a}+{v}", 0.5) for a in ESPEAK_SEEN_ACCENTS for v in ESPEAK_TRAIN_EXTRA]
    dev = [Voice("espeak-ng", f"{a}+{v}") for a in ESPEAK_SEEN_ACCENTS for v in ESPEAK_DEV_UNSEEN]
    return extra, dev


def voice_inventory() -> Tuple[List[Voice], List[Voice]]:
    """(seen, unseen) voice pools.  Unseen = every voice whose accent or
    variant is held out, plus the held-out flite and festival voices."""
    seen = [_espeak_voice(a, v) for a in ESPEAK_SEEN_ACCENTS for v in ESPEAK_SEEN_VARIANTS]
    unseen = [
        _espeak_voice(a, v)
        for a in ESPEAK_SEEN_ACCENTS + ESPEAK_UNSEEN_ACCENTS
        for v in ESPEAK_SEEN_VARIANTS + ESPEAK_UNSEEN_VARIANTS
        if a in ESPEAK_UNSEEN_ACCENTS or v in ESPEAK_UNSEEN_VARIANTS
    ]
    seen += [Voice("flite", v) for v in FLITE_SEEN] + [Voice("festival", v) for v in FESTIVAL_SEEN]
    unseen += [Voice("flite", v) for v in FLITE_UNSEEN] + [Voice("festival", v) for v in FESTIVAL_UNSEEN]
    return seen, unseen


def choose_voice(rng: np.random.Generator, pool: Sequence[Voice]) -> Voice:
    """Pick an engine by ENGINE_WEIGHTS (among engines in ``pool``), then a voice by weight."""
    engines = [e for e in ENGINE_ORDER if any(v.engine == e for v in pool)]
    p = np.array([ENGINE_WEIGHTS[e] for e in engines])
    engine = engines[rng.choice(len(engines), p=p / p.sum())]
    voices = [v for v in pool if v.engine == engine]
    w = np.array([v.weight for v in voices])
    return voices[rng.choice(len(voices), p=w / w.sum())]


# --------------------------------------------------------------------------- planning


def utterance_rng(seed: int, split: str, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_CODES[split], index, stream])


def draw_words(rng: np.random.Generator, single_word_share: Optional[float] = None) -> List[str]:
    """1-7 words, uniformly many; with ``single_word_share``, that share are one word and
    the rest 2-7 (one more draw)."""
    if single_word_share is None:
        n = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
    else:
        n = 1 if rng.random() < single_word_share else int(rng.integers(MIN_WORDS + 1, MAX_WORDS + 1))
    return [WORDS[i] for i in rng.integers(0, len(WORDS), size=n)]


def tts_text(rng: np.random.Generator, words: Sequence[str]) -> str:
    """Lower-case text for the TTS engine; sometimes a comma forces a phrase break."""
    parts = [w.lower() for w in words]
    if len(parts) > 2 and rng.random() < 0.3:
        k = int(rng.integers(1, len(parts)))
        parts[k - 1] += ","
    return " ".join(parts)


def draw_tts_params(rng: np.random.Generator, voice: Voice) -> Dict:
    if voice.engine == "espeak-ng":
        return {
            "rate_wpm": int(rng.integers(135, 186)),
            "pitch": int(rng.integers(30, 71)),
            "word_gap_10ms": int(rng.integers(0, 7)),
        }
    return {"duration_stretch": round(float(rng.uniform(0.9, 1.15)), 3)}


NOISE_TYPES = ("white", "pink", "brown", "babble")
NOISE_PROBS = (0.25, 0.3, 0.15, 0.3)


def draw_augment_params(rng: np.random.Generator) -> Dict:
    reverb = None
    if rng.random() < 0.3:
        reverb = {
            "reverberance": int(rng.integers(20, 81)),
            "hf_damping": int(rng.integers(20, 81)),
            "room_scale": int(rng.integers(20, 101)),
            "pre_delay_ms": int(rng.integers(0, 21)),
        }
    return {
        "speed": round(float(rng.uniform(0.85, 1.15)), 3),
        "pitch_cents": int(rng.integers(-300, 301)),
        "reverb": reverb,
        "noise_type": NOISE_TYPES[rng.choice(len(NOISE_TYPES), p=NOISE_PROBS)],
        "snr_db": round(float(rng.uniform(10.0, 30.0)), 2),
        "lead_silence_s": round(float(rng.uniform(0.05, 0.5)), 3),
        "trail_silence_s": round(float(rng.uniform(0.05, 0.5)), 3),
        "level_dbfs": round(float(rng.uniform(-32.0, -18.0)), 1),
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
    }


@dataclass(frozen=True)
class SplitStyle:
    """How a split's utterances differ from the plain ones: the share of single words and
    the channel probabilities (``allinone.data.channel.draw_channel``)."""

    single_word_share: Optional[float] = None
    p_telephone: float = 0.0
    p_microphone: float = 0.0


PLAIN = SplitStyle()
STYLES = {
    "dev-unseen": SplitStyle(p_telephone=0.4, p_microphone=0.3),
    "test-unseen-8k": SplitStyle(p_telephone=1.0),
}
# --train-variety: the training set's style (with the extra voices of ESPEAK_TRAIN_EXTRA)
TRAIN_VARIETY = SplitStyle(single_word_share=0.25, p_telephone=0.25, p_microphone=0.35)


def plan_utterance(
    seed: int,
    split: str,
    index: int,
    pool: Sequence[Voice],
    forbidden: Optional[set] = None,
    style: Optional[SplitStyle] = None,
) -> Dict:
    """Everything needed to synthesise one utterance, drawn from its own RNG (the channel
    from a second stream of it); ``style`` defaults to the split's (``STYLES``)."""
    style = style or STYLES.get(split, PLAIN)
    rng = utterance_rng(seed, split, index)
    for _ in range(10_000):
        words = draw_words(rng, style.single_word_share)
        if not forbidden or " ".join(words) not in forbidden:
            break
    else:
        raise RuntimeError(f"could not draw a digit string for {split} #{index} outside the forbidden set")
    voice = choose_voice(rng, pool)
    return {
        "id": f"{split}-{index:05d}",
        "split": split,
        "text": " ".join(words),
        "tts_text": tts_text(rng, words),
        "engine": voice.engine,
        "voice": voice.name,
        "speaker": voice.speaker,
        "tts": draw_tts_params(rng, voice),
        "augment": draw_augment_params(rng),
        "channel": (
            draw_channel(utterance_rng(seed, split, index, stream=1), style.p_telephone, style.p_microphone)
            if style != PLAIN
            else None
        ),
    }


def plan_corpus(seed: int, counts: Dict[str, int], train_variety: bool = False) -> Dict[str, List[Dict]]:
    """Plans for all splits.  ``counts`` maps split name -> number of utterances;
    ``train_variety``: train with the extra voices and ``TRAIN_VARIETY``'s style."""
    seen, unseen = voice_inventory()
    extra, dev_unseen = extra_voice_pools()
    plans: Dict[str, List[Dict]] = {}
    train_pool, train_style = (seen + extra, TRAIN_VARIETY) if train_variety else (seen, None)
    plans["train"] = [
        plan_utterance(seed, "train", i, train_pool, style=train_style) for i in range(counts["train"])
    ]
    plans["dev"] = [plan_utterance(seed, "dev", i, seen) for i in range(counts["dev"])]
    train_strings = {u["text"] for u in plans["train"]}
    train_speakers = {u["speaker"] for u in plans["train"]}
    # test-seen: voices that really occur in train, strings that never do (drawn from the
    # original training pool, so that the extra voices left this split as it was).
    seen_in_train = [v for v in seen if v.speaker in train_speakers] or seen
    plans["test-seen"] = [
        plan_utterance(seed, "test-seen", i, seen_in_train, forbidden=train_strings)
        for i in range(counts["test-seen"])
    ]
    plans["test-unseen"] = [
        plan_utterance(seed, "test-unseen", i, unseen) for i in range(counts["test-unseen"])
    ]
    plans["dev-unseen"] = [
        plan_utterance(seed, "dev-unseen", i, dev_unseen) for i in range(counts.get("dev-unseen", 0))
    ]
    plans["test-unseen-8k"] = [
        plan_utterance(seed, "test-unseen-8k", i, unseen) for i in range(counts.get("test-unseen-8k", 0))
    ]
    return plans


# --------------------------------------------------------------------------- synthesis


def _run(cmd: Sequence[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{err}")
    return proc


def tts_command(utt: Dict, out_wav: str) -> List[str]:
    """Command synthesising one utterance with espeak-ng or flite."""
    p = utt["tts"]
    if utt["engine"] == "espeak-ng":
        return [
            "espeak-ng", "-v", utt["voice"], "-s", str(p["rate_wpm"]), "-p", str(p["pitch"]),
            "-g", str(p["word_gap_10ms"]), "-w", out_wav, utt["tts_text"],
        ]  # fmt: skip
    if utt["engine"] == "flite":
        return [
            "flite", "-voice", utt["voice"], "--setf", f"duration_stretch={p['duration_stretch']}",
            "-t", utt["tts_text"], "-o", out_wav,
        ]  # fmt: skip
    raise ValueError(f"no single-utterance command for engine {utt['engine']}")


def festival_script(utts: Sequence[Dict], out_wavs: Sequence[str]) -> str:
    """Scheme program synthesising every utterance of ``utts`` in one festival run."""
    lines = []
    current = None
    for utt, wav in zip(utts, out_wavs):
        if utt["voice"] != current:
            current = utt["voice"]
            lines.append(f"(voice_{current})")
        text = utt["tts_text"].replace("\\", " ").replace('"', " ")
        lines.append(f"(Parameter.set 'Duration_Stretch {utt['tts']['duration_stretch']})")
        lines.append(f'(utt.save.wave (SynthText "{text}") "{wav}" \'riff)')
    return "\n".join(lines) + "\n"


def sox_effects(aug: Dict) -> List[str]:
    # Halve the level first: sox works in fixed point and reverb/pitch can
    # overshoot full scale; the final level is set in numpy anyway.
    effects = ["vol", "0.5", "speed", f"{aug['speed']}", "pitch", f"{aug['pitch_cents']}"]
    r = aug["reverb"]
    if r is not None:
        effects += [
            "pad", "0", "0.3", "reverb", str(r["reverberance"]), str(r["hf_damping"]),
            str(r["room_scale"]), "100", str(r["pre_delay_ms"]),
        ]  # fmt: skip
    return effects + ["rate", "-h", str(SAMPLE_RATE)]


def apply_sox(raw_wav: str, aug: Dict) -> np.ndarray:
    """Speed, pitch, reverb and resampling to 16 kHz; float32 mono samples."""
    cmd = ["sox", "-V1", "-D", raw_wav, "-t", "raw", "-e", "floating-point", "-b", "32",
           "-c", "1", "-r", str(SAMPLE_RATE), "-"] + sox_effects(aug)  # fmt: skip
    out = _run(cmd, "sox").stdout
    return np.frombuffer(out, dtype="<f4").astype(np.float64)


def _spectrally_shaped(rng: np.random.Generator, n: int, gain_fn, count: int = 1) -> np.ndarray:
    """``count`` x ``n`` Gaussian noise coloured by the amplitude response ``gain_fn(freq_hz)``.

    The FFT runs on the next power of two (arbitrary lengths can be very slow)
    and the result is cut to ``n`` samples.
    """
    nfft = 1 << max(int(n) - 1, 1).bit_length()
    spec = np.fft.rfft(rng.standard_normal((count, nfft)), axis=-1)
    freqs = np.fft.rfftfreq(nfft, 1.0 / SAMPLE_RATE)
    freqs[0] = freqs[1]
    return np.fft.irfft(spec * gain_fn(freqs), nfft, axis=-1)[:, :n]


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of white, pink (1/f), brown (1/f^2) or babble-like noise.

    Babble-like: 4-8 "talkers", each noise with a long-term speech-like
    spectrum (high-passed at ~120 Hz, falling ~6 dB/octave above ~600 Hz,
    randomly warped per talker) and a syllable-rate (3-6 Hz) on/off envelope.
    """
    if n <= 0:
        return np.zeros(0)
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return _spectrally_shaped(rng, n, lambda f: 1.0 / np.sqrt(np.maximum(f, 20.0)))[0]
    if kind == "brown":
        return _spectrally_shaped(rng, n, lambda f: 1.0 / np.maximum(f, 20.0))[0]
    if kind == "babble":
        talkers = int(rng.integers(4, 9))
        warp = rng.uniform(0.8, 1.25, size=(talkers, 1))

        def ltass(f):
            g = f[None, :] * warp
            return (g / 120.0) ** 2 / (1.0 + (g / 120.0) ** 2) / np.sqrt(1.0 + (g / 600.0) ** 2)

        voices = _spectrally_shaped(rng, n, ltass, count=talkers)
        voices /= voices.std(axis=1, keepdims=True) + 1e-12
        t = np.arange(n)
        out = np.zeros(n)
        for k in range(talkers):
            syll_rate = rng.uniform(3.0, 6.0)
            knots = int(n / SAMPLE_RATE * syll_rate * 2) + 2
            heights = np.where(rng.random(knots) < 0.75, rng.random(knots), 0.0)
            out += voices[k] * np.interp(t, np.linspace(0, n - 1, knots), heights)
        return out
    raise ValueError(f"unknown noise type {kind!r}")


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, lead: int) -> np.ndarray:
    """Add ``noise`` (length >= lead + len(speech)) so that the SNR is exactly ``snr_db``.

    SNR = 10 log10(mean(speech^2) / mean(scaled_noise^2)), where the speech
    power is taken over the speech signal alone (before the padding silence)
    and the noise power over the whole padded clip.
    """
    p_speech = float(np.mean(speech**2))
    p_noise = float(np.mean(noise**2))
    if p_speech <= 0.0:
        raise ValueError("speech signal is silent")
    if p_noise <= 0.0:
        raise ValueError("noise signal is silent")
    scale = np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    mixed = scale * noise
    mixed[lead : lead + len(speech)] += speech
    return mixed


def augment(speech: np.ndarray, aug: Dict, channel: Optional[Dict] = None) -> np.ndarray:
    """Pad with silence, add noise at the exact SNR, pass the ``channel``, set the output level."""
    lead = int(round(aug["lead_silence_s"] * SAMPLE_RATE))
    trail = int(round(aug["trail_silence_s"] * SAMPLE_RATE))
    n = lead + len(speech) + trail
    noise = make_noise(aug["noise_type"], n, np.random.default_rng(aug["noise_seed"]))
    y = apply_channel(mix_at_snr(speech, noise, aug["snr_db"], lead), SAMPLE_RATE, channel)
    y *= 10.0 ** (aug["level_dbfs"] / 20.0) / np.sqrt(np.mean(y**2))
    peak = np.max(np.abs(y))
    if peak > 0.97:  # never clip: lower the level instead
        y *= 0.97 / peak
    return y


def to_int16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def _write_wav_atomic(path: Path, samples: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def audio_stats(samples: np.ndarray) -> Dict:
    x = samples.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    return {
        "num_samples": int(len(samples)),
        "rms_dbfs": 20.0 * np.log10(max(rms, 1e-10)),
        "peak": float(np.max(np.abs(x))) if len(x) else 0.0,
        "clipped": int(np.sum(np.abs(samples.astype(np.int32)) >= 32767)),
    }


def wav_path(out_dir: Path, utt: Dict) -> Path:
    return out_dir / utt["split"] / f"{utt['id']}.wav"


def synthesise_chunk(task: Tuple[List[Dict], str]) -> List[Tuple[str, Dict]]:
    """Worker: synthesise and augment a chunk of utterances (one engine per chunk).

    Returns (utterance id, audio statistics) for every utterance of the chunk.
    """
    utts, out_dir_str = task
    out_dir = Path(out_dir_str)
    results = []
    todo = [u for u in utts if not wav_path(out_dir, u).is_file()]
    for u in utts:
        if wav_path(out_dir, u).is_file():
            data, _ = sf.read(str(wav_path(out_dir, u)), dtype="int16")
            results.append((u["id"], audio_stats(data)))
    if not todo:
        return results
    with tempfile.TemporaryDirectory(prefix="synth_digits_") as tmp:
        raw = [os.path.join(tmp, f"{u['id']}.wav") for u in todo]
        if todo[0]["engine"] == "festival":
            script = os.path.join(tmp, "batch.scm")
            Path(script).write_text(festival_script(todo, raw))
            _run(["festival", "-b", script], "festival batch", cwd=tmp)
        else:
            for u, r in zip(todo, raw):
                _run(tts_command(u, r), u["engine"])
        for u, r in zip(todo, raw):
            if not os.path.isfile(r) or os.path.getsize(r) <= 44:
                raise RuntimeError(f"{u['engine']} produced no audio for {u['id']} ({u['speaker']})")
            speech = apply_sox(r, u["augment"])
            samples = to_int16(augment(speech, u["augment"], u.get("channel")))
            target = wav_path(out_dir, u)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_wav_atomic(target, samples)
            results.append((u["id"], audio_stats(samples)))
    return results


def make_tasks(plans: Dict[str, List[Dict]], out_dir: Path, chunk: int = 24, festival_chunk: int = 48):
    """Chunks of same-engine utterances; festival chunks are larger (one process each)."""
    utts = [u for split in SPLITS for u in plans.get(split, [])]
    tasks = []
    for engine in ENGINE_ORDER:
        sel = [u for u in utts if u["engine"] == engine]
        size = festival_chunk if engine == "festival" else chunk
        tasks += [(sel[i : i + size], str(out_dir)) for i in range(0, len(sel), size)]
    # Festival tasks are the longest: start them first so the pool ends evenly.
    tasks.sort(key=lambda t: t[0][0]["engine"] != "festival")
    return tasks


def synthesise_all(plans: Dict[str, List[Dict]], out_dir: Path, num_jobs: int) -> Dict[str, Dict]:
    from tqdm import tqdm

    tasks = make_tasks(plans, out_dir)
    total = sum(len(t[0]) for t in tasks)
    stats: Dict[str, Dict] = {}
    with tqdm(total=total, desc="synthesising", unit="utt", dynamic_ncols=True) as bar:
        if num_jobs <= 1:
            results: Iterable = map(synthesise_chunk, tasks)
            pool = None
        else:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            pool = ctx.Pool(num_jobs)
            results = pool.imap_unordered(synthesise_chunk, tasks)
        try:
            for chunk_result in results:
                for uid, st in chunk_result:
                    stats[uid] = st
                bar.update(len(chunk_result))
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    return stats


# --------------------------------------------------------------------------- manifests


def _write_jsonl_gz(items: Iterable, path: Path) -> None:
    """lhotse-compatible JSONL manifest, gzip header without a timestamp so
    that identical content gives identical bytes."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for item in items:
            gz.write((json.dumps(item.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
    os.replace(tmp, path)


def write_manifests(plans: Dict[str, List[Dict]], out_dir: Path, manifest_dir: Path) -> None:
    from lhotse import Recording, SupervisionSegment

    manifest_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        recordings, supervisions = [], []
        for u in plans[split]:
            rec = Recording.from_file(wav_path(out_dir, u), recording_id=u["id"])
            recordings.append(rec)
            supervisions.append(
                SupervisionSegment(
                    id=u["id"],
                    recording_id=u["id"],
                    start=0.0,
                    duration=rec.duration,
                    channel=0,
                    text=u["text"],
                    language="English",
                    speaker=u["speaker"],
                    custom={
                        "engine": u["engine"],
                        "voice": u["voice"],
                        "tts_text": u["tts_text"],
                        "tts": u["tts"],
                        "augment": u["augment"],
                        "channel": u.get("channel"),
                    },
                )
            )
        _write_jsonl_gz(recordings, manifest_dir / f"{PREFIX}_recordings_{split}.jsonl.gz")
        _write_jsonl_gz(supervisions, manifest_dir / f"{PREFIX}_supervisions_{split}.jsonl.gz")


# --------------------------------------------------------------------------- driver


def missing_tools() -> List[str]:
    return [t for t in REQUIRED_TOOLS if shutil.which(t) is None]


def check_flite_voices() -> None:
    out = _run(["flite", "-lv"], "flite -lv").stdout.decode(errors="replace")
    listed = set(out.replace("Voices available:", " ").split())
    missing = [v for v in FLITE_SEEN + FLITE_UNSEEN if v not in listed]
    if missing:
        raise SystemExit(f"flite lacks voice(s) {missing}; `flite -lv` lists: {sorted(listed)}")


def check_config(out_dir: Path, config: Dict) -> None:
    """Refuse to mix audio generated with different settings in one directory."""
    path = out_dir / "generation_config.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != config:
            raise SystemExit(
                f"{out_dir} holds audio generated with {old}, but this run asks for {config}; "
                "remove the directory or pick another --out-dir"
            )
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def summarise(plans: Dict[str, List[Dict]], stats: Dict[str, Dict]) -> None:
    for split in SPLITS:
        st = [stats[u["id"]] for u in plans[split]]
        if not st:
            continue
        dur = np.array([s["num_samples"] for s in st]) / SAMPLE_RATE
        rms = np.array([s["rms_dbfs"] for s in st])
        peak = np.array([s["peak"] for s in st])
        clipped = sum(s["clipped"] for s in st)
        speakers = {u["speaker"] for u in plans[split]}
        logging.info(
            f"{split:12s} {len(st):5d} utts, {dur.sum() / 3600:.3f} h, mean {dur.mean():.2f} s "
            f"(min {dur.min():.2f}, max {dur.max():.2f}); {len(speakers)} voices; "
            f"RMS dBFS mean {rms.mean():.1f} min {rms.min():.1f} max {rms.max():.1f}; "
            f"peak max {peak.max():.3f}; clipped samples {clipped}"
        )
        quiet = int(np.sum(rms < -45.0))
        if quiet or clipped:
            logging.warning(f"{split}: {quiet} near-silent clips, {clipped} clipped samples")


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=Path, default=Path("download/synth_digits"), help="audio directory")
    p.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"), help="manifest directory")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--num-train", type=int, default=4000)
    p.add_argument("--num-dev", type=int, default=300)
    p.add_argument(
        "--num-test",
        type=int,
        default=300,
        help="size of test-seen, test-unseen, test-unseen-8k and dev-unseen",
    )
    p.add_argument("--num-jobs", type=int, default=2, help="worker processes")
    p.add_argument(
        "--train-variety",
        type=lambda v: v.lower() in ("1", "true", "yes"),
        default=False,
        help="train with ESPEAK_TRAIN_EXTRA's voices, a quarter single words, 25%% telephone and "
        "35%% microphone channels (RESULTS.md: not the default)",
    )
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = get_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    missing = missing_tools()
    if missing:
        raise SystemExit(f"missing TTS/audio tools: {missing}; install them with: {APT_INSTALL}")
    check_flite_voices()
    counts = {
        "train": args.num_train,
        "dev": args.num_dev,
        "test-seen": args.num_test,
        "test-unseen": args.num_test,
        "dev-unseen": args.num_test,
        "test-unseen-8k": args.num_test,
    }
    if any(c < 0 for c in counts.values()):
        raise SystemExit(f"utterance counts must be >= 0, got {counts}")
    config = {"seed": args.seed, "counts": counts, "version": GENERATOR_VERSION}
    if args.train_variety:
        config["train_variety"] = True
    check_config(args.out_dir, config)

    t0 = time.time()
    plans = plan_corpus(args.seed, counts, args.train_variety)
    stats = synthesise_all(plans, args.out_dir, args.num_jobs)
    write_manifests(plans, args.out_dir, args.manifest_dir)
    summarise(plans, stats)
    logging.info(
        f"corpus ready in {time.time() - t0:.1f} s: audio {args.out_dir}, manifests {args.manifest_dir}"
    )


if __name__ == "__main__":
    sys.exit(main())
