import torch

from allinone.utils.memory import measure_peak, peak_rss_mb, rss_mb


def test_peak_covers_a_transient_allocation():
    def run():
        x = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched, then freed
        assert float(x[-1]) == 1.0
        del x

    m = measure_peak(run)
    assert m["peak_mb"] >= m["rss_before_mb"]
    if m["reset"]:
        assert m["step_peak_increase_mb"] >= 60
    assert peak_rss_mb() >= rss_mb() > 0
