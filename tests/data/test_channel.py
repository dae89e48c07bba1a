"""Channel simulation: the telephone line's band, rate and mu-law, the microphone's response."""

import numpy as np
import pytest

from allinone.data.channel import apply_channel, draw_channel, microphone, mu_law_round_trip, telephone

SR = 16000


def _tones(*freqs, seconds=1.0):
    t = np.arange(int(SR * seconds)) / SR
    return sum(np.sin(2 * np.pi * f * t) for f in freqs)


def _amplitude(y, f):
    spec = np.abs(np.fft.rfft(y)) / (len(y) / 2)
    return spec[int(round(f * len(y) / SR))]


def test_telephone_keeps_the_voice_band_and_drops_the_rest():
    y = telephone(_tones(100, 1000, 2500, 6000), SR, 300.0, 3400.0, 1.0)
    assert _amplitude(y, 1000) == pytest.approx(1.0, abs=0.02)
    assert _amplitude(y, 2500) == pytest.approx(1.0, abs=0.02)
    assert _amplitude(y, 100) < 1e-3 and _amplitude(y, 6000) < 1e-3
    spec = np.abs(np.fft.rfft(y)) ** 2
    assert spec[np.fft.rfftfreq(len(y), 1 / SR) > 4000].sum() < 1e-5 * spec.sum()


def test_mu_law_takes_256_levels_and_its_error_grows_with_the_level():
    x = np.linspace(-1, 1, 10001)
    y = mu_law_round_trip(x, 1.0)
    assert len(np.unique(np.round(y, 12))) <= 255  # 2 x 127 steps and zero
    err = np.abs(y - x)
    assert err[np.abs(x) < 0.01].max() < 1e-3 < err[np.abs(x) > 0.9].max() < 0.03


def test_a_flat_microphone_is_the_identity_and_a_bump_boosts_its_band():
    x = _tones(500, 1000, 3000)
    flat = microphone(x, SR, highpass_hz=1.0, lowpass_hz=1e6, lowpass_order=4, bumps=[])
    assert np.abs(flat - x).max() < 1e-3
    boosted = microphone(x, SR, 1.0, 1e6, 4, [[1000.0, 0.3, 6.0]])
    assert _amplitude(boosted, 1000) == pytest.approx(10 ** (6 / 20), rel=0.01)
    assert _amplitude(boosted, 3000) == pytest.approx(1.0, abs=0.02)


def test_draws_follow_their_probabilities_and_none_is_the_identity():
    rng = np.random.default_rng(0)
    kinds = [(draw_channel(rng, 0.3, 0.5) or {"kind": None})["kind"] for _ in range(2000)]
    assert kinds.count("telephone") / 2000 == pytest.approx(0.3, abs=0.04)
    assert kinds.count("microphone") / 2000 == pytest.approx(0.5, abs=0.04)
    x = _tones(700)
    assert apply_channel(x, SR, None) is x
    tel = draw_channel(np.random.default_rng(1), 1.0, 0.0)
    assert np.array_equal(
        apply_channel(x, SR, tel), telephone(x, SR, **{k: v for k, v in tel.items() if k != "kind"})
    )
    with pytest.raises(ValueError, match="not a multiple"):
        telephone(x, 22050, 300.0, 3400.0, 1.0)
