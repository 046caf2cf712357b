"""
The collector's minute of breaker counters, as a property of any history.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from recovery.dashboard.collect import _RateHistory

steps = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=40.0),  # seconds since the last sample
        st.integers(min_value=0, max_value=50),  # successes since then
        st.integers(min_value=0, max_value=50),  # failures since then
    ),
    min_size=1,
    max_size=40,
)


@given(steps=steps, window=st.sampled_from([1.0, 10.0, 60.0]))
def test_recent_counts_run_from_the_newest_sample_a_window_old(
    steps: list[tuple[float, int, int]], window: float
) -> None:
    """
    The calls counted are those since the newest sample at least a window
    old, or since the first sample while none is that old.
    """
    history = _RateHistory()
    seen: list[tuple[float, int, int]] = []
    now, ok, failed = 0.0, 0, 0

    for delay, new_ok, new_failed in steps:
        now, ok, failed = now + delay, ok + new_ok, failed + new_failed
        recent = history.add(now, ok, failed, window)
        seen.append((now, ok, failed))

        old = [sample for sample in seen if now - sample[0] >= window]
        base = old[-1] if old else seen[0]
        assert recent == (ok - base[1], failed - base[2])


def test_counters_that_go_down_start_afresh() -> None:
    history = _RateHistory()
    history.add(0.0, 10, 5, 60.0)

    assert history.add(1.0, 2, 1, 60.0) == (0, 0)
    assert history.add(2.0, 3, 3, 60.0) == (1, 2)
