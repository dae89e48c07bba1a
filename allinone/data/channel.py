"""Transmission channels imposed on clean recordings: a telephone line and a microphone.

Speech that a recogniser meets in use has passed through a channel its training audio
has not: a telephone line (8 kHz sampling, a 300-3400 Hz band, 8-bit mu-law coding) or a
microphone and room with their own frequency response. These functions put such a
channel on mono samples, in numpy only (FFT filtering on a power-of-two length), and are
deterministic given their parameters, so a corpus generator can draw the parameters from
an utterance's own random generator and store them beside the audio.

A channel is a dict: ``{"kind": "telephone", "low_hz", "high_hz", "mu_law_peak"}``,
``{"kind": "microphone", "highpass_hz", "lowpass_hz", "lowpass_order", "bumps": [[centre_hz,
width_octaves, gain_db], ...]}`` or None (no channel).
"""

from typing import Dict, Optional

import numpy as np

TELEPHONE_RATE = 8000
MU = 255


def _spectrum(x: np.ndarray, sample_rate: int):
    """(rfft of ``x`` zero-padded to a power of two, its frequencies in Hz, that length)."""
    nfft = 1 << max(len(x) - 1, 1).bit_length()
    return np.fft.rfft(x, nfft), np.fft.rfftfreq(nfft, 1.0 / sample_rate), nfft


def _raised_cosine(f: np.ndarray, start: float, stop: float) -> np.ndarray:
    """0 below ``start``, 1 above ``stop``, a half cosine between (``start < stop``)."""
    t = np.clip((f - start) / (stop - start), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def mu_law_round_trip(x: np.ndarray, peak: float) -> np.ndarray:
    """8-bit mu-law coding and decoding (G.711's curve) with full scale at ``1 / peak`` of
    the signal's peak: ``peak`` < 1 leaves headroom, as a quieter line does."""
    full_scale = np.max(np.abs(x)) / peak if np.any(x) else 1.0
    u = np.clip(x / full_scale, -1.0, 1.0)
    coded = np.sign(u) * np.log1p(MU * np.abs(u)) / np.log1p(MU)
    q = np.round(coded * 127.0) / 127.0
    return np.sign(q) * np.expm1(np.abs(q) * np.log1p(MU)) / MU * full_scale


def telephone(
    x: np.ndarray, sample_rate: int, low_hz: float, high_hz: float, mu_law_peak: float
) -> np.ndarray:
    """A telephone line: band-pass ``low_hz``-``high_hz``, sampling at 8 kHz, mu-law, and
    back to ``sample_rate`` (an integer multiple of 8 kHz).

    Args:
        x: (T,) samples at ``sample_rate``.
    Returns:
        (T,) samples at ``sample_rate`` with nothing above 4 kHz.
    """
    factor = sample_rate // TELEPHONE_RATE
    if factor * TELEPHONE_RATE != sample_rate or factor < 1:
        raise ValueError(f"telephone(): {sample_rate} Hz is not a multiple of {TELEPHONE_RATE} Hz")
    spec, f, nfft = _spectrum(x, sample_rate)
    nyquist = TELEPHONE_RATE / 2
    band = _raised_cosine(f, 0.6 * low_hz, low_hz) * (
        1.0 - _raised_cosine(f, high_hz, min(1.15 * high_hz, nyquist))
    )
    band[f >= nyquist] = 0.0
    narrow = np.fft.irfft(spec * band, nfft)[::factor]  # band-limited below 4 kHz: no aliasing
    coded = mu_law_round_trip(narrow, mu_law_peak)
    wide = np.zeros(nfft // 2 + 1, dtype=complex)
    low = np.fft.rfft(coded)
    wide[: len(low)] = low
    return np.fft.irfft(wide, nfft)[: len(x)] * factor


def microphone(
    x: np.ndarray,
    sample_rate: int,
    highpass_hz: float,
    lowpass_hz: float,
    lowpass_order: int,
    bumps,
) -> np.ndarray:
    """A microphone's (and small room's) colour: a 2nd-order-like high-pass roll-off, a
    low-pass of ``lowpass_order``, and Gaussian bumps in log frequency.

    Args:
        x: (T,) samples.
        bumps: ``[centre_hz, width_octaves, gain_db]`` triples.
    Returns:
        (T,) filtered samples.
    """
    spec, f, nfft = _spectrum(x, sample_rate)
    f = np.maximum(f, 1.0)
    gain_db = np.zeros_like(f)
    for centre, width, db in bumps:
        gain_db += db * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
    gain = 10.0 ** (gain_db / 20.0)
    gain /= np.sqrt(1.0 + (highpass_hz / f) ** 4)
    gain /= np.sqrt(1.0 + (f / lowpass_hz) ** (2 * lowpass_order))
    return np.fft.irfft(spec * gain, nfft)[: len(x)]


def draw_channel(rng: np.random.Generator, p_telephone: float, p_microphone: float) -> Optional[Dict]:
    """A random channel: telephone with ``p_telephone``, microphone with ``p_microphone``,
    else None. Every draw is made whatever the outcome, so the stream stays aligned."""
    kind = rng.random()
    tel = {
        "kind": "telephone",
        "low_hz": round(float(rng.uniform(200.0, 400.0)), 1),
        "high_hz": round(float(rng.uniform(3000.0, 3600.0)), 1),
        "mu_law_peak": round(float(rng.uniform(0.3, 1.0)), 3),
    }
    mic = {
        "kind": "microphone",
        "highpass_hz": round(float(rng.uniform(50.0, 300.0)), 1),
        "lowpass_hz": round(float(rng.uniform(3500.0, 7500.0)), 1),
        "lowpass_order": int(rng.integers(1, 5)),
        "bumps": [
            [round(float(c), 1), round(float(w), 2), round(float(g), 2)]
            for c, w, g in zip(
                np.exp(rng.uniform(np.log(200.0), np.log(6000.0), 3)),
                rng.uniform(0.3, 1.5, 3),
                rng.uniform(-8.0, 8.0, 3),
            )
        ],
    }
    if kind < p_telephone:
        return tel
    if kind < p_telephone + p_microphone:
        return mic
    return None


def apply_channel(x: np.ndarray, sample_rate: int, channel: Optional[Dict]) -> np.ndarray:
    """``x`` through ``channel`` (see the module doc); ``x`` itself when it is None."""
    if channel is None:
        return x
    params = {k: v for k, v in channel.items() if k != "kind"}
    if channel["kind"] == "telephone":
        return telephone(x, sample_rate, **params)
    if channel["kind"] == "microphone":
        return microphone(x, sample_rate, **params)
    raise ValueError(f"unknown channel kind {channel['kind']!r}")
